"""ketadose simulate: the plasma concentration a PK model predicts."""

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from ketadose.cli import env
from ketadose.cli.exits import command, finish
from ketadose.cli.options import (
    AgeOpt,
    DoseOpt,
    DurationOpt,
    ForceFlag,
    FormatOpt,
    HeightOpt,
    JsonFlag,
    LimitsFile,
    OutputFile,
    PolicyOpt,
    PolicyOption,
    ProtocolId,
    ProtocolsFile,
    RateOpt,
    SexOpt,
    TzOpt,
    WeightOpt,
    dose_request,
)
from ketadose.cli.output import OutputFormat, choose_format, emit

if TYPE_CHECKING:
    pass


class ModelOption(StrEnum):
    """Choices for --model."""

    clements250 = "clements250"
    domino = "domino"
    hijazi = "hijazi"
    kamp = "kamp"


@command
def simulate(
    protocol: ProtocolId,
    weight: WeightOpt = None,
    height: HeightOpt = None,
    sex: SexOpt = None,
    age: AgeOpt = None,
    dosing_weight: PolicyOpt = PolicyOption.actual,
    dose_: DoseOpt = None,
    rate: RateOpt = None,
    duration: DurationOpt = None,
    model: Annotated[
        ModelOption,
        typer.Option(help="PK model (default: the one closest to measured levels; README)."),
    ] = ModelOption.clements250,
    until: Annotated[
        str | None, typer.Option(help="Simulate up to: 6h (default: 4 h after the last infusion).")
    ] = None,
    step: Annotated[str, typer.Option(help="Time between points.")] = "1min",
    threshold: Annotated[
        str | None, typer.Option(help="Report the time above this level: 100ng/mL.")
    ] = None,
    series: Annotated[
        bool,
        typer.Option(
            "--plan", help="Simulate the whole planned series (with --start), superposed."
        ),
    ] = False,
    start: Annotated[
        str | None, typer.Option(help="With --plan: first day a session may take place.")
    ] = None,
    protocols: ProtocolsFile = None,
    limits: LimitsFile = None,
    json: JsonFlag = False,
    output_format: FormatOpt = None,
    output: OutputFile = None,
    force: ForceFlag = False,
    tz: TzOpt = None,
) -> None:
    """Predict the plasma concentration of a session (or a planned series) from a PK model."""
    chosen = choose_format("simulate", output_format, output, force, json=json)
    from ketadose import gate, inputs
    from ketadose.clock import elapsed
    from ketadose.errors import InputError
    from ketadose.planning import RECOVERY_MIN
    from ketadose.simulation import Given, infusion_end, simulation_refusal
    from ketadose.simulation import simulate as run
    from ketadose.units import Kind, parse_as

    request = dose_request(
        weight=weight,
        height=height,
        sex=sex,
        age=age,
        dosing_weight=dosing_weight,
        dose=dose_,
        rate=rate,
        duration=duration,
    )
    library = env.library(protocols)
    entry = library.get_protocol(protocol)
    if entry.protocol.route != "iv":
        raise InputError(simulation_refusal(entry.protocol))
    limit_library = env.limits(limits, library)
    observation = entry.protocol.observation
    after = max(RECOVERY_MIN, 0.0 if observation is None else observation.minimum.value)
    stay = entry.protocol.titration is not None  # one continuous infusion, stepped
    if series or stay:
        from datetime import UTC, date

        from ketadose.planning import PlanRequest
        from ketadose.planning import plan as make_plan

        if start is None and not stay:
            raise InputError("--plan needs --start: the first day a session may take place")
        # A stay's rungs are elapsed time from its start: without --start, any day in UTC.
        day = date(2026, 1, 5) if start is None else inputs.day(start, field="--start")
        planned = make_plan(
            entry,
            PlanRequest(dose=request, start=day, zone=UTC if start is None else env.zone()),
            limit_library,
        )
        zero = planned.sessions[0].timeline.infusion_start
        given = [
            Given(elapsed(s.timeline.infusion_start, zero).total_seconds() / 60, s.phases)
            for s in planned.sessions
        ]
        last = planned.sessions[-1].timeline
        # A stay ends at its end point, as the inpatient team decides: no planned discharge.
        discharge = None if stay else elapsed(last.discharge_earliest, zero).total_seconds() / 60
        status, ready, kg = planned.status, planned.ready, planned.dosing_weight
        simulated = planned.protocol
    else:
        if start is not None:
            raise InputError("--start is for --plan")
        session = gate.session(entry, request, limit_library)
        given = [Given(0.0, session.phases)]
        discharge = infusion_end(session.phases) + after
        status, ready, kg = session.status, session.ready, session.dosing_weight
        simulated = session.protocol
    body = request.patient.weight_kg
    if kg is None or body is None:
        raise InputError("the models need the patient's weight: --weight")
    result = run(
        model.value,
        simulated,
        body,  # the models scale with total body weight, whatever the dose was based on
        given,
        step_min=parse_as(step, Kind.DURATION, field="--step"),
        until_min=None if until is None else parse_as(until, Kind.DURATION, field="--until"),
        discharge_min=discharge,
        threshold_ng_per_ml=None if threshold is None else parse_as(threshold, Kind.PLASMA),
        titration=stay,
    )
    if chosen is not OutputFormat.table:
        emit("simulate", chosen, output, force, (result,), "")
    else:
        from ketadose.render.plot import chart
        from ketadose.units import format_number

        def ng(value: float | None) -> str:
            return "-" if value is None else f"{format_number(value, 0.1)} ng/mL"

        def at(minutes: float) -> str:
            return f"{format_number(minutes, 0.1)} min"

        given_as = (
            f"one stay, {result.sessions} rung(s) of one continuous infusion"
            if stay
            else f"{result.sessions} session(s)"
        )
        lines = [
            f"{entry.protocol.name}: {given_as}; dosed on "
            f"{format_number(kg.kg, 0.01)} kg ({kg.basis.value} weight); the model uses the "
            f"body weight, {format_number(body, 0.01)} kg",
            f"Model: {result.model.name} [{result.model.evidence}]; {result.model.scaling}",
            f"Peak {ng(result.peak_ng_per_ml)} at {at(result.peak_time_min)}; end of infusion "
            f"{ng(result.end_of_infusion_ng_per_ml)} at {at(result.end_of_infusion_min)}; "
            f"at discharge {ng(result.discharge_ng_per_ml)}"
            + ("" if result.discharge_min is None else f" at {at(result.discharge_min)}"),
        ]
        if result.time_above_threshold_min is not None:
            lines.append(
                f"Above {ng(result.threshold_ng_per_ml)} for {at(result.time_above_threshold_min)}"
            )
        if result.schedule:
            lines.append("Infusion schedule (the titration's rungs, each at the earliest time):")
        for rung in result.schedule or ():
            per_kg = rung.rate_mg_per_kg_per_h
            lines.append(
                f"  {at(rung.start_min)} to {at(rung.end_min)}: "
                f"{format_number(rung.rate_mg_per_h, 0.01)} mg/h"
                + ("" if per_kg is None else f" ({format_number(per_kg, 0.001)} mg/kg/h)")
            )
        every = 10.0 if result.until_min <= 360 else 60.0
        rows = [
            p for p in result.series if abs(p.time_min / every - round(p.time_min / every)) < 1e-9
        ]
        lines += ["", "  time      ng/mL"]
        lines += [
            f"{format_number(p.time_min, 0.1):>6} {ng(p.concentration_ng_per_ml):>16}" for p in rows
        ]
        lines += ["", chart([(p.time_min, p.concentration_ng_per_ml) for p in result.series])]
        lines.append(result.note)
        emit("simulate", chosen, output, force, (), "\n".join(lines) + "\n")
    finish(status, ready, "a hard limit is exceeded (see ketadose dose or plan)")
