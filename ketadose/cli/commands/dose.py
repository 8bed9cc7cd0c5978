"""ketadose dose and ketadose check: one session computed and checked."""

from typing import TYPE_CHECKING, Annotated

import typer

from ketadose.cli import audit_log, env
from ketadose.cli.exits import command, finish
from ketadose.cli.options import (
    AgeOpt,
    BagOpt,
    ClinicianOpt,
    DoseOpt,
    DrawStepOpt,
    DropFactorOpt,
    DurationOpt,
    ForceFlag,
    FormatOpt,
    HeightOpt,
    JsonFlag,
    LimitsFile,
    OutputFile,
    OverrideOpt,
    PolicyOpt,
    PolicyOption,
    ProtocolId,
    ProtocolsFile,
    PumpStepOpt,
    RateOpt,
    SexOpt,
    StoreFile,
    StrengthOpt,
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
def session_command(
    ctx: typer.Context,
    protocol: ProtocolId,
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
    bp: Annotated[
        str | None, typer.Option("--bp", help="Blood pressure, systolic/diastolic mmHg: 150/95.")
    ] = None,
    hr: Annotated[str | None, typer.Option("--hr", help="Heart rate: 80 or 80bpm.")] = None,
    spo2: Annotated[str | None, typer.Option("--spo2", help="SpO2: 97 or 97%.")] = None,
    during: Annotated[
        bool,
        typer.Option("--during", help="Vitals taken during the infusion (pause/stop limits)."),
    ] = False,
    med: Annotated[
        list[str] | None,
        typer.Option(
            "--med",
            help="Medication taken, NAME[:TIME SINCE LAST DOSE] (bare time: hours) or "
            "NAME@LAST DOSE TIME (2026-11-26T08:00); a hold is measured from the last dose.",
        ),
    ] = None,
    condition: Annotated[
        list[str] | None, typer.Option("--condition", help="A condition the patient has.")
    ] = None,
    last_session: Annotated[
        str | None,
        typer.Option("--last-session", help="When the last session was: 2026-11-25T09:00."),
    ] = None,
    previous: Annotated[
        list[str] | None,
        typer.Option("--previous", help="A previous session and its dose: 2026-11-25T09:00=40mg."),
    ] = None,
    at: Annotated[
        str | None,
        typer.Option("--at", help="When this session is (default: now), local time."),
    ] = None,
    override_reason: OverrideOpt = None,
    clinician: ClinicianOpt = None,
    store: StoreFile = None,
    protocols: ProtocolsFile = None,
    limits: LimitsFile = None,
    json: JsonFlag = False,
    output_format: FormatOpt = None,
    output: OutputFile = None,
    force: ForceFlag = False,
    tz: TzOpt = None,
) -> None:
    """Compute a session and check it against the limit library (dose and check share this)."""
    name = ctx.info_name or "dose"
    chosen = choose_format(name, output_format, output, force, json=json)

    from ketadose import gate, inputs
    from ketadose.clock import instant
    from ketadose.errors import InputError
    from ketadose.models import CheckContext

    if during and name != "check":
        # dose computes a programme to start; a reading during a session is another question.
        raise InputError(
            "--during answers continue, pause or stop for a reading taken during a session: "
            "use ketadose check --during"
        )
    if during and bp is None and hr is None and spo2 is None:
        # "continue" must come from a reading, never from the absence of one.
        raise InputError("--during checks a reading: give --bp, --hr or --spo2")
    request = dose_request(
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
    )
    # --last-session is a previous session like any other (with or without =DOSE).
    given = [*(previous or []), *([] if last_session is None else [last_session])]
    zone = env.zone()
    history = [inputs.previous(text, zone) for text in given]
    # The clock is read here, at the edge, and handed to the pure checker.
    session_at = inputs.moment(at, field=InputField.SESSION_TIME, zone=zone) if at else env.now()
    if any(instant(p.at) > instant(session_at) for p in history):
        raise InputError("a previous session is later than this session")
    context = CheckContext(
        at=session_at,
        vitals=inputs.vitals(bp, hr, spo2),
        during=during,
        # A hold is measured from the last dose: NAME:TIME-SINCE or NAME@LAST-DOSE-TIME.
        medications=tuple(inputs.medication(text, at=session_at, zone=zone) for text in med or []),
        conditions=tuple(inputs.condition(text) for text in condition or []),
        history=tuple(history),
    )
    library = env.library(protocols)
    entry = library.get_protocol(protocol)
    limit_library = env.limits(limits, library)
    result = gate.session(entry, request, limit_library, context, override_reason)
    logged = audit_log.write(
        store,
        clinician,
        name,
        ctx.params,
        result.findings,
        result.status,
        result.override_reason,
        limit_library.ref.sha256,
        limit_library,
    )

    def table(console: "Console") -> None:
        from ketadose.render import table

        table.checked_session(result, console, findings_first=name == "check")

    # A printed sheet names the audit log's head, so the paper can be matched to the log.
    sheet = chosen is OutputFormat.html
    head = (logged or audit_log.head(store)) if sheet else None
    emit(name, chosen, output, force, (result,), table, limit_library, head)
    if result.during is not None:
        finish(
            result.status,
            result.ready,
            "stop: the reading during the session is past a hard limit (see the findings)",
            soft="pause: the reading during the session is past a soft limit; to continue, "
            'rerun with --override-reason "why"',
        )
    finish(result.status, result.ready, "a hard limit is exceeded; no pump programme is given")
