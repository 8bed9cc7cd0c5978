"""ketadose plan: a treatment series, each session checked."""

from typing import TYPE_CHECKING, Annotated

import typer

from ketadose.cli import audit_log, env
from ketadose.cli.exits import command, finish
from ketadose.cli.options import (
    SESSION_TIME,
    AgeOpt,
    BagOpt,
    ClinicianOpt,
    ClosedOpt,
    DaysOpt,
    DoseOpt,
    DrawStepOpt,
    DropFactorOpt,
    DurationOpt,
    ForceFlag,
    FormatOpt,
    HeightOpt,
    HolidaysOpt,
    JsonFlag,
    LimitsFile,
    OutputFile,
    OverrideOpt,
    PerWeekOpt,
    PolicyOpt,
    PolicyOption,
    ProtocolId,
    ProtocolsFile,
    PumpStepOpt,
    RateOpt,
    SexOpt,
    StoreFile,
    StrengthOpt,
    TimeOfDayOpt,
    TzOpt,
    VialOpt,
    WeightOpt,
    dose_request,
)
from ketadose.cli.output import OutputFormat, choose_format, emit
from ketadose.errors import InputField

if TYPE_CHECKING:
    from rich.console import Console


@command
def plan(
    protocol: ProtocolId,
    start: Annotated[str, typer.Option(help="First day a session may take place: 2026-11-30.")],
    weight: WeightOpt = None,
    height: HeightOpt = None,
    sex: SexOpt = None,
    age: AgeOpt = None,
    dosing_weight: PolicyOpt = PolicyOption.ACTUAL,
    dose_: DoseOpt = None,
    rate: RateOpt = None,
    duration: DurationOpt = None,
    vial: VialOpt = None,
    strength: StrengthOpt = None,
    bag: BagOpt = None,
    drop_factor: DropFactorOpt = None,
    pump_step: PumpStepOpt = None,
    draw_step: DrawStepOpt = None,
    time_of_day: TimeOfDayOpt = SESSION_TIME,
    sessions: Annotated[
        int | None, typer.Option(help="Number of sessions (default: the protocol's series).")
    ] = None,
    per_week: PerWeekOpt = None,
    days: DaysOpt = None,
    holidays: HolidaysOpt = None,
    closed: ClosedOpt = None,
    intake: Annotated[str, typer.Option(help="Chair time before the infusion.")] = "20min",
    recovery: Annotated[
        str, typer.Option(help="Chair time after it (at least the protocol's observation).")
    ] = "20min",
    price: Annotated[
        str | None, typer.Option(help="Price per session, LOW-HIGH or one figure: 400-800.")
    ] = None,
    currency: Annotated[str, typer.Option(help="Currency of --price.")] = "USD",
    override_reason: OverrideOpt = None,
    clinician: ClinicianOpt = None,
    store: StoreFile = None,
    protocols: ProtocolsFile = None,
    patient_id: Annotated[
        str | None, typer.Option("--patient-id", help="The patient's pseudonymous id (no names).")
    ] = None,
    limits: LimitsFile = None,
    json: JsonFlag = False,
    output_format: FormatOpt = None,
    output: OutputFile = None,
    force: ForceFlag = False,
    tz: TzOpt = None,
) -> None:
    """Plan a treatment series: dates, checked doses, timeline, escalation, cost."""
    from ketadose import inputs

    chosen = choose_format("plan", output_format, output, force, json=json)
    from ketadose.planning import PlanRequest, parse_days
    from ketadose.planning import plan as make_plan

    request = PlanRequest(
        dose=dose_request(
            weight=weight,
            height=height,
            sex=sex,
            age=age,
            dosing_weight=dosing_weight,
            dose=dose_,
            rate=rate,
            duration=duration,
            vial=vial,
            strength=strength,
            bag=bag,
            drop_factor=drop_factor,
            pump_step=pump_step,
            draw_step=draw_step,
        ),
        start=inputs.day(start, field=InputField.START),
        zone=env.zone(),
        session_time=inputs.clock(time_of_day),
        sessions=sessions,
        per_week=per_week,
        days=None if days is None else parse_days(days),
        closed=inputs.closed_days(
            closed or [], holidays, inputs.day(start, field=InputField.START)
        ),
        intake_min=inputs.chair_time(intake, InputField.INTAKE),
        recovery_min=inputs.chair_time(recovery, InputField.RECOVERY),
        price=None if price is None else inputs.price(price),
        currency=currency,
        override_reason=override_reason,
        patient_id=None if patient_id is None else inputs.patient_id(patient_id),
    )
    library = env.library(protocols)
    entry = library.get_protocol(protocol)
    limit_library = env.limits(limits, library)
    result = make_plan(entry, request, limit_library)
    logged = audit_log.write(
        store,
        clinician,
        "plan",
        {"protocol": protocol, "start": start, "weight": weight, "dose": dose_, "rate": rate},
        [f for session in result.sessions for f in session.findings],
        result.status,
        result.override_reason,
        limit_library.ref.sha256,
        limit_library,
    )

    def table(console: "Console") -> None:
        from ketadose.render import table

        table.plan(result, console)

    # A printed sheet names the audit log's head, so the paper can be matched to the log.
    sheet = chosen is OutputFormat.html
    head = (logged or audit_log.head(store)) if sheet else None
    emit("plan", chosen, output, force, (result,), table, limit_library, head)
    finish(result.status, result.ready, "a session exceeds a hard limit (see its findings)")
