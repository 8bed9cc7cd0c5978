"""ketadose simulate: the plasma concentration a PK model predicts."""

from typing import Annotated

import typer

from ketadose.choices import PkModel
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
from ketadose.errors import InputField

#: Choices for --model: the core's PK model ids (``ketadose.choices``, light: no PK code).
ModelOption = PkModel


@command
def simulate(
    protocol: ProtocolId,
    weight: WeightOpt = None,
    height: HeightOpt = None,
    sex: SexOpt = None,
    age: AgeOpt = None,
    dosing_weight: PolicyOpt = PolicyOption.ACTUAL,
    dose_: DoseOpt = None,
    rate: RateOpt = None,
    duration: DurationOpt = None,
    model: Annotated[
        ModelOption,
        typer.Option(help="PK model (default: the one closest to measured levels; README)."),
    ] = ModelOption.CLEMENTS250,
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
    from ketadose import inputs
    from ketadose.simulation import simulate_session
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
    day = None if start is None else inputs.day(start, field=InputField.START)
    outcome = simulate_session(
        library.get_protocol(protocol),
        request,
        env.limits(limits, library),
        model=model.value,
        series=series,
        start=day,
        zone=None if day is None else env.zone(),
        step_min=parse_as(step, Kind.DURATION, field=InputField.STEP),
        until_min=None if until is None else parse_as(until, Kind.DURATION, field=InputField.UNTIL),
        threshold_ng_per_ml=None if threshold is None else parse_as(threshold, Kind.PLASMA),
    )
    if chosen is OutputFormat.table:
        from ketadose.render.simulation import text
        from ketadose.render.wrap import Prose

        # Wrapped to the terminal's width (80 at least) as the tables are: never "80 k|g".
        shown = Prose(text(outcome).removesuffix("\n"))
        emit("simulate", chosen, output, force, (), lambda console: console.print(shown))
    else:
        emit("simulate", chosen, output, force, (outcome.result,), "")
    finish(outcome.status, outcome.ready, "a hard limit is exceeded (see ketadose dose or plan)")
