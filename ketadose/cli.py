"""The ``ketadose`` command line: thin commands over the core, one error-to-exit-code mapping.

Start-up is kept small on purpose: this module imports only typer and ``ketadose.errors``.
Each command imports the core (pydantic models, the protocol library) and a renderer (rich,
or json) when it runs, so ``ketadose --help`` loads neither pint nor the protocol library.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, ParamSpec, TypeVar

import typer

from ketadose.errors import ExitCode, KetadoseError

if TYPE_CHECKING:
    from rich.console import Console

    from ketadose.protocols import ProtocolLibrary

P = ParamSpec("P")
R = TypeVar("R")

app = typer.Typer(
    name="ketadose",
    help="Weight-based ketamine session doses and pump programmes from a protocol library.\n\n"
    "Decision support for licensed clinicians; the shipped library is an unapproved example.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
protocols_app = typer.Typer(
    help="List and show the protocol library, with sources and evidence.",
    no_args_is_help=True,
)
app.add_typer(protocols_app, name="protocols")

_debug = False


def _fail(message: str, code: ExitCode) -> typer.Exit:
    """Print one line on stderr and return the Exit to raise."""
    line = " ".join(message.split())
    typer.echo(f"ketadose: {line}", err=True)
    return typer.Exit(int(code))


def command(function: Callable[P, R]) -> Callable[P, R]:
    """Map every error a command raises to one stderr line and its documented exit code.

    The single place where exceptions become exit codes: ``KetadoseError`` carries its own
    code; anything else is a bug (exit 1), shown with its traceback only under ``--debug``.

    Args:
        function: The command body.

    Returns:
        The wrapped command.

    """

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except KetadoseError as error:
            if _debug:
                raise
            raise _fail(f"error: {error}", error.exit_code) from None
        except Exception as error:
            if _debug:
                raise
            raise _fail(
                f"internal error ({type(error).__name__}: {error}); this is a bug: "
                "rerun with --debug for the traceback and report it",
                ExitCode.INTERNAL,
            ) from None

    return wrapper


@app.callback()
def _main(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks of internal errors.")
    ] = False,
) -> None:
    global _debug
    _debug = debug


class SexOption(StrEnum):
    """Choices for --sex."""

    male = "male"
    female = "female"


class PolicyOption(StrEnum):
    """Choices for --dosing-weight."""

    actual = "actual"
    ideal = "ideal"
    adjusted = "adjusted"
    lean = "lean"


ProtocolsFile = Annotated[
    Path | None,
    typer.Option(
        "--protocols",
        help="A clinic's protocol file (TOML); its protocols add to or replace the shipped ones.",
        dir_okay=False,
    ),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")]


def _library(path: Path | None) -> ProtocolLibrary:
    from ketadose.protocols import load_library

    return load_library(path)


def _write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _console() -> Console:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=False)


@app.command()
@command
def dose(
    protocol: Annotated[
        str, typer.Option("--protocol", "-p", help="Protocol id, e.g. depression.")
    ],
    weight: Annotated[
        str | None, typer.Option(help="Actual body weight with unit: 80kg, 176lb.")
    ] = None,
    height: Annotated[
        str | None, typer.Option(help="Height with unit: 178cm, 1.78m, 70in.")
    ] = None,
    sex: Annotated[SexOption | None, typer.Option(help="For ideal/adjusted/lean weight.")] = None,
    age: Annotated[str | None, typer.Option(help="Age with unit: 45y.")] = None,
    dosing_weight: Annotated[
        PolicyOption, typer.Option("--dosing-weight", help="Weight the mg/kg dose is based on.")
    ] = PolicyOption.actual,
    dose_: Annotated[
        str | None,
        typer.Option("--dose", help="Replace the protocol's dose: 0.75mg/kg or 60mg."),
    ] = None,
    rate: Annotated[
        str | None, typer.Option(help="Replace the protocol's rate: 0.5mg/kg/h or 25mg/h.")
    ] = None,
    duration: Annotated[
        str | None, typer.Option(help="Replace the phase duration: 40min, 4h.")
    ] = None,
    vial: Annotated[
        str | None, typer.Option(help="Vial strength: 10mg/mL (default), 50mg/mL, 100mg/mL.")
    ] = None,
    bag: Annotated[
        str | None, typer.Option(help="Final volume the drug is made up to: 100mL.")
    ] = None,
    drop_factor: Annotated[
        int | None, typer.Option("--drop-factor", help="Gravity set drops/mL: 10, 15, 20, 60.")
    ] = None,
    pump_step: Annotated[
        str, typer.Option("--pump-step", help="Pump rate display increment.")
    ] = "0.1mL/h",
    draw_step: Annotated[
        str, typer.Option("--draw-step", help="Draw volume display increment.")
    ] = "0.01mL",
    protocols: ProtocolsFile = None,
    json: JsonFlag = False,
) -> None:
    """Compute one session's dose programme and pump programme for a patient."""
    from ketadose.dosing import DoseRequest, session_dose
    from ketadose.libfile import Quantity
    from ketadose.models import Patient, Rounding, Sex, WeightPolicy
    from ketadose.units import Kind, parse, parse_as

    def optional(text: str | None, kind: Kind) -> float | None:
        return None if text is None else parse_as(text, kind)

    def quantity(text: str | None, *kinds: Kind) -> Quantity | None:
        if text is None:
            return None
        kind, value = parse(text, *kinds)
        return Quantity(kind, value, text)

    patient = Patient(
        weight_kg=optional(weight, Kind.WEIGHT),
        height_cm=optional(height, Kind.HEIGHT),
        sex=None if sex is None else Sex(sex.value),
        age_years=optional(age, Kind.AGE),
    )
    request = DoseRequest(
        patient=patient,
        policy=WeightPolicy(dosing_weight.value),
        dose=quantity(dose_, Kind.DOSE_PER_KG, Kind.DOSE),
        rate=quantity(rate, Kind.RATE_PER_KG, Kind.RATE),
        duration_min=optional(duration, Kind.DURATION),
        vial_mg_per_ml=optional(vial, Kind.CONCENTRATION),
        final_volume_ml=optional(bag, Kind.VOLUME),
        drop_factor=drop_factor,
        rounding=Rounding(
            pump_rate_ml_per_h=parse_as(pump_step, Kind.PUMP_RATE, field="pump step"),
            draw_ml=parse_as(draw_step, Kind.VOLUME, field="draw step"),
        ),
    )
    entry = _library(protocols).get_protocol(protocol)
    result = session_dose(entry, request)
    if json:
        from ketadose.render.json import document

        _write(document(result))
    else:
        from ketadose.render import table

        table.session_dose(result, _console())


@protocols_app.command("list")
@command
def protocols_list(protocols: ProtocolsFile = None, json: JsonFlag = False) -> None:
    """List the protocols in effect: id, programme, series and library."""
    library = _library(protocols)
    if json:
        from ketadose.render.json import protocols_document

        _write(protocols_document(list(library.values())))
    else:
        from ketadose.render import table

        table.protocol_list(library.values(), _console())


@protocols_app.command("show")
@command
def protocols_show(
    protocol_id: Annotated[str, typer.Argument(metavar="ID", help="Protocol id.")],
    protocols: ProtocolsFile = None,
    json: JsonFlag = False,
) -> None:
    """Show one protocol with the source and evidence level of every number."""
    entry = _library(protocols).get_protocol(protocol_id)
    if json:
        from ketadose.render.json import protocols_document

        _write(protocols_document([entry], single=True))
    else:
        from ketadose.render import table

        table.protocol_detail(entry, _console())


def main() -> None:
    """Console-script entry point (``ketadose``, ``python -m ketadose``)."""
    app()
