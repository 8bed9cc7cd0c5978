"""The ``ketadose`` command line: thin commands over the core, one error-to-exit-code mapping.

(No ``from __future__ import annotations`` here: Typer would then ``eval`` every option's
annotation string on each run, ~5 ms of start-up for ours.)

Start-up is kept small on purpose: this module imports only typer and ``ketadose.errors``.
Each command imports the core (pydantic models, the protocol library) and a renderer (rich,
or json) when it runs, so ``ketadose --help`` loads neither pint nor the protocol library.
"""

import contextlib
import dataclasses
import errno
import functools
import gc
import io
import itertools
import os
import sys
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, BinaryIO, ParamSpec, TextIO, TypeVar

import typer

from ketadose.errors import ExitCode, KetadoseError

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from datetime import datetime, tzinfo

    from rich.console import Console

    from ketadose.dosing import DoseRequest
    from ketadose.limits import LimitLibrary
    from ketadose.models import Finding, Patient, Status
    from ketadose.protocols import Protocol, ProtocolLibrary
    from ketadose.records import AuditEntry, Reading, SessionRecord
    from ketadose.store import Store

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
patient_app = typer.Typer(
    help="Add and show pseudonymous patients in the record store.", no_args_is_help=True
)
session_app = typer.Typer(help="Record sessions given, in the record store.", no_args_is_help=True)
protocols_app = typer.Typer(
    help="List and show the protocol library, with sources and evidence.",
    no_args_is_help=True,
)
app.add_typer(protocols_app, name="protocols")
app.add_typer(patient_app, name="patient")
app.add_typer(session_app, name="session")
score_app = typer.Typer(
    help="Record and show questionnaires scored item by item (PHQ-9, GAD-7, PCL-5, MADRS).",
    no_args_is_help=True,
)
app.add_typer(score_app, name="score")
limits_app = typer.Typer(
    help="Show, validate and start a limit library (soft and hard limits, screening).",
    no_args_is_help=True,
)
app.add_typer(limits_app, name="limits")

_debug = False
#: Tables are laid out for at least this many columns, so no number is ever truncated.
MIN_WIDTH = 100


def _fail(message: str, code: ExitCode) -> typer.Exit:
    r"""Print one line on stderr and return the Exit to raise.

    Input echoed in a message cannot break the line or drive the terminal: line breaks become
    spaces and any other control character its escape (``\x1b``), so the line shows exactly
    what was typed.
    """
    line = "".join(
        c if c.isprintable() else f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"
        for c in " ".join(message.splitlines())  # one line, spaces (in paths, too) kept
    )
    typer.echo(f"ketadose: {line}", err=True)
    return typer.Exit(int(code))


def command(function: Callable[P, R]) -> Callable[P, R]:
    """Map every error a command raises to one stderr line and its documented exit code.

    The single place where exceptions become exit codes: ``KetadoseError`` carries its own
    code; output that cannot be delivered (a closed or full stdout, a reader gone away) is 2;
    Ctrl-C is 130; anything else is a bug (exit 1), shown with its traceback only under
    ``--debug``.

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
        except KeyboardInterrupt:
            raise _fail("interrupted", ExitCode.INTERRUPTED) from None
        except BrokenPipeError:
            # The reader stopped reading: send the rest nowhere, and say so on stderr.
            _discard_stdout()
            raise _fail("output closed before it was all written", ExitCode.USAGE) from None
        except OSError as error:
            if _debug:
                raise
            _discard_stdout()
            raise _fail(f"error: cannot write output: {error.strerror}", ExitCode.USAGE) from None
        except Exception as error:
            if _debug:
                raise
            raise _fail(
                f"internal error ({type(error).__name__}: {error}); this is a bug: "
                "rerun with --debug for the traceback and report it",
                ExitCode.INTERNAL,
            ) from None

    return wrapper


_TZ_HELP = (
    "The clinic's time zone, an IANA name (Europe/Berlin): every time given or shown is in it "
    "(default: KETADOSE_TZ, else the system's)."
)
#: --tz before the command (on the app) and after it (on the command); the command's wins.
_tz: dict[str, str | None] = {"app": None, "command": None}


def _command_tz(value: str | None) -> str | None:
    _tz["command"] = value
    return value


#: The per-command --tz (the app's --tz works before any command too).
TzOpt = Annotated[
    str | None,
    typer.Option("--tz", metavar="ZONE", help=_TZ_HELP, callback=_command_tz, expose_value=False),
]


@app.callback()
def _main(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks of internal errors.")
    ] = False,
    tz: Annotated[str | None, typer.Option("--tz", metavar="ZONE", help=_TZ_HELP)] = None,
) -> None:
    global _debug
    _debug = debug
    _tz.update(app=tz, command=None)


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


class OutputFormat(StrEnum):
    """Choices for --format."""

    table = "table"
    json = "json"
    csv = "csv"
    markdown = "markdown"
    html = "html"
    fhir = "fhir"


FormatOpt = Annotated[
    OutputFormat | None,
    typer.Option(
        "--format",
        help="table (default), json, csv, markdown, html (a printable sheet) or fhir (an R4 "
        "Bundle); --json is short for --format json.",
    ),
]
OutputFile = Annotated[
    Path | None,
    typer.Option(
        "--output", "-o", dir_okay=False, help="Write to FILE (atomically) instead of stdout."
    ),
]
ForceFlag = Annotated[bool, typer.Option("--force", help="Replace an existing --output file.")]
_SESSION = {
    OutputFormat.json: "json.document",
    OutputFormat.csv: "csv.session",
    OutputFormat.markdown: "markdown.session",
    OutputFormat.html: "html.session_sheet",
    OutputFormat.fhir: "fhir.session_bundle",
}
#: Each command's renderers (``module.function`` in ketadose.render, imported only when used)
#: beside its table; a format not named here is refused, never ignored.
RENDERERS: dict[str, dict[OutputFormat, str]] = {
    "dose": _SESSION,
    "check": _SESSION,
    "plan": {
        OutputFormat.json: "json.document",
        OutputFormat.csv: "csv.plan",
        OutputFormat.markdown: "markdown.plan",
        OutputFormat.html: "html.plan_sheet",
        OutputFormat.fhir: "fhir.plan_bundle",
    },
    "next": {
        OutputFormat.json: "json.document",
        OutputFormat.csv: "csv.next_session",
        OutputFormat.markdown: "markdown.next_session",
    },
    "history": {
        OutputFormat.json: "records.history_json",
        OutputFormat.csv: "records.history_csv",
        OutputFormat.markdown: "markdown.history",
        OutputFormat.html: "records.history_html",
    },
}


def _format(
    command_name: str,
    chosen: OutputFormat | None,
    output: Path | None,
    force: bool,
    *,
    json: bool = False,
    csv: bool = False,
) -> OutputFormat:
    """The one output format asked for, checked before any work is done."""
    from ketadose.errors import InputError

    asked = {
        f"--{f}": f for f, flag in ((OutputFormat.json, json), (OutputFormat.csv, csv)) if flag
    }
    if chosen is not None:
        asked[f"--format {chosen}"] = chosen
    if len(set(asked.values())) > 1:
        raise InputError(f"{' and '.join(asked)}: choose one")
    result = next(iter(asked.values()), OutputFormat.table)
    allowed = [OutputFormat.table, *RENDERERS[command_name]]
    if result not in allowed:
        raise InputError(
            f"--format {result} does not fit ketadose {command_name}: use " + ", ".join(allowed)
        )
    _check_output(output, force)
    return result


def _check_output(output: Path | None, force: bool) -> None:
    """Refuse a bad ``--output`` before any work is done, and without opening it.

    Refused: ``--force`` alone, an existing file without it, anything but a regular file with
    it (a FIFO, a device, a socket, a directory, a symbolic link: see
    :func:`ketadose.atomic.check_target`), a missing directory.
    """
    from ketadose.errors import InputError

    if force and output is None:
        raise InputError("--force replaces an --output file: give -o FILE too")
    if output is None:
        return
    if not force and os.path.lexists(output):
        raise InputError(f"{output} exists: use --force to replace it")
    from ketadose.atomic import check_target

    check_target(output, replace=force)


def _emit(
    command_name: str,
    chosen: OutputFormat,
    output: Path | None,
    force: bool,
    subject: "Sequence[Any]",
    table: "Callable[[Console], None]",
    limits: "LimitLibrary | None" = None,
) -> None:
    """Write the result: to stdout, or whole to ``output`` (atomically); nothing else there.

    ``subject`` are the renderer's arguments; a FHIR renderer also gets the limit library
    (its ``maxDosePerAdministration``).
    """
    if chosen is OutputFormat.table and output is None:
        table(_console())
        return
    if chosen is OutputFormat.table:
        import io

        from rich.console import Console

        buffer = io.StringIO()
        table(Console(file=buffer, width=MIN_WIDTH, color_system=None, highlight=False))
        text = buffer.getvalue()
    else:
        import importlib

        module, function = RENDERERS[command_name][chosen].split(".")
        render = getattr(importlib.import_module(f"ketadose.render.{module}"), function)
        text = render(*subject, *([limits] if chosen is OutputFormat.fhir else []))
    if output is None:
        _write(text)
        return
    from ketadose.atomic import write_new

    write_new(output, text.encode(), replace=force)
    typer.echo(f"ketadose: wrote {output}", err=True)


def _library(path: Path | None) -> "ProtocolLibrary":
    from ketadose.protocols import load_library

    return load_library(path)


def _finish(
    status: "Status",
    ready: bool,
    refused: str,
    *,
    soft: str = 'soft limit exceeded: to go ahead, rerun with --override-reason "why"',
) -> None:
    """End a checked command with its documented exit code and one line saying why."""
    from ketadose.gate import exit_code

    code = exit_code(status, ready)
    if code is ExitCode.HARD_LIMIT:
        raise _fail(f"refused: {refused}", code)
    if code is ExitCode.SOFT_LIMIT:
        raise _fail(soft, code)


def _write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _console() -> "Console":
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            # rich would exit 1 without a word; let the command's error mapping say it.
            raise BrokenPipeError

    console = _Console(highlight=False, soft_wrap=False)
    if console.width < MIN_WIDTH:
        # Narrower, rich would cut numbers short ("15…"); a wrapped line hides nothing.
        console = _Console(highlight=False, soft_wrap=False, width=MIN_WIDTH)
    return console


LimitsFile = Annotated[
    Path | None,
    typer.Option(
        "--limits",
        envvar="KETADOSE_LIMITS",
        help="The clinic's limit library (TOML); default: the shipped unapproved example.",
        dir_okay=False,
    ),
]


StoreFile = Annotated[
    Path | None,
    typer.Option(
        "--store",
        envvar="KETADOSE_STORE",
        help="The record store (SQLite); default: ketadose/store.sqlite3 in the user data dir.",
        dir_okay=False,
    ),
]
ClinicianOpt = Annotated[
    str | None, typer.Option("--clinician", help="Who is acting (default: the OS user).")
]


ProtocolId = Annotated[str, typer.Option("--protocol", "-p", help="Protocol id, e.g. depression.")]
WeightOpt = Annotated[str | None, typer.Option(help="Actual body weight with unit: 80kg, 176lb.")]
HeightOpt = Annotated[str | None, typer.Option(help="Height with unit: 178cm, 1.78m, 70in.")]
SexOpt = Annotated[SexOption | None, typer.Option(help="For ideal/adjusted/lean weight.")]
AgeOpt = Annotated[str | None, typer.Option(help="Age with unit: 45y.")]
PolicyOpt = Annotated[
    PolicyOption, typer.Option("--dosing-weight", help="Weight the mg/kg dose is based on.")
]
DoseOpt = Annotated[
    str | None, typer.Option("--dose", help="Replace the protocol's dose: 0.75mg/kg or 60mg.")
]
RateOpt = Annotated[
    str | None, typer.Option(help="Replace the protocol's rate: 0.5mg/kg/h or 25mg/h.")
]
DurationOpt = Annotated[str | None, typer.Option(help="Replace the phase duration: 40min, 4h.")]
VialOpt = Annotated[
    str | None,
    typer.Option(help="Vial strength: 10mg/mL (default; sc: 100mg/mL), 50mg/mL, 100mg/mL."),
]
BagOpt = Annotated[str | None, typer.Option(help="Final volume the drug is made up to: 100mL.")]
StrengthOpt = Annotated[
    str | None,
    typer.Option(
        help="Sublingual or oral: the strength the dose is measured from, one the protocol "
        "lists: 100mg/mL (a solution) or 25mg (a tablet)."
    ),
]
DropFactorOpt = Annotated[
    int | None, typer.Option("--drop-factor", help="Gravity set drops/mL: 10, 15, 20, 60.")
]
PumpStepOpt = Annotated[str, typer.Option("--pump-step", help="Pump rate display increment.")]
DrawStepOpt = Annotated[str, typer.Option("--draw-step", help="Draw volume display increment.")]
OverrideOpt = Annotated[
    str | None,
    typer.Option(
        "--override-reason", help="Acknowledge the soft findings of this run, saying why."
    ),
]


def _dose_request(
    weight: str | None,
    height: str | None,
    sex: SexOption | None,
    age: str | None,
    dosing_weight: PolicyOption,
    dose: str | None,
    rate: str | None,
    duration: str | None,
    vial: str | None,
    bag: str | None,
    drop_factor: int | None,
    pump_step: str,
    draw_step: str,
    *,
    strength: str | None = None,
) -> "DoseRequest":
    """Parse the patient and dose options every dosing command shares."""
    from ketadose.dosing import DoseRequest
    from ketadose.inputs import amount, quantity
    from ketadose.models import Patient, Sex, WeightPolicy
    from ketadose.preparation import rounding
    from ketadose.units import Kind, parse_as

    return DoseRequest(
        patient=Patient(
            weight_kg=amount(weight, Kind.WEIGHT),
            height_cm=amount(height, Kind.HEIGHT),
            sex=None if sex is None else Sex(sex.value),
            age_years=amount(age, Kind.AGE),
        ),
        policy=WeightPolicy(dosing_weight.value),
        dose=quantity(dose, Kind.DOSE_PER_KG, Kind.DOSE),
        rate=quantity(rate, Kind.RATE_PER_KG, Kind.RATE),
        duration_min=amount(duration, Kind.DURATION),
        vial_mg_per_ml=amount(vial, Kind.CONCENTRATION),
        strength=quantity(strength, Kind.CONCENTRATION, Kind.DOSE, field="--strength"),
        final_volume_ml=amount(bag, Kind.VOLUME),
        drop_factor=drop_factor,
        rounding=rounding(
            parse_as(pump_step, Kind.PUMP_RATE, field="pump step"),
            parse_as(draw_step, Kind.VOLUME, field="draw step"),
        ),
    )


def session_command(
    ctx: typer.Context,
    protocol: ProtocolId,
    weight: WeightOpt = None,
    height: HeightOpt = None,
    sex: SexOpt = None,
    age: AgeOpt = None,
    dosing_weight: PolicyOpt = PolicyOption.actual,
    dose_: DoseOpt = None,
    rate: RateOpt = None,
    duration: DurationOpt = None,
    vial: VialOpt = None,
    strength: StrengthOpt = None,
    bag: BagOpt = None,
    drop_factor: DropFactorOpt = None,
    pump_step: PumpStepOpt = "0.1mL/h",
    draw_step: DrawStepOpt = "0.01mL",
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
    chosen = _format(name, output_format, output, force, json=json)

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
    request = _dose_request(
        weight,
        height,
        sex,
        age,
        dosing_weight,
        dose_,
        rate,
        duration,
        vial,
        bag,
        drop_factor,
        pump_step,
        draw_step,
        strength=strength,
    )
    # --last-session is a previous session like any other (with or without =DOSE).
    given = [*(previous or []), *([] if last_session is None else [last_session])]
    zone = _zone()
    history = [inputs.previous(text, zone) for text in given]
    # The clock is read here, at the edge, and handed to the pure checker.
    session_at = inputs.moment(at, field="--at", zone=zone) if at else _now()
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
    library = _library(protocols)
    entry = library.get_protocol(protocol)
    limit_library = _limits(limits, library)
    result = gate.session(entry, request, limit_library, context, override_reason)
    _audit(
        store,
        clinician,
        name,
        ctx.params,
        result.findings,
        result.status,
        result.override_reason,
        limit_library.ref.sha256,
    )

    def table(console: "Console") -> None:
        from ketadose.render import table

        table.checked_session(result, console, findings_first=name == "check")

    _emit(name, chosen, output, force, (result,), table, limit_library)
    if result.during is not None:
        _finish(
            result.status,
            result.ready,
            "stop: the reading during the session is past a hard limit (see the findings)",
            soft="pause: the reading during the session is past a soft limit; to continue, "
            'rerun with --override-reason "why"',
        )
    _finish(result.status, result.ready, "a hard limit is exceeded; no pump programme is given")


app.command(
    "dose",
    help="Compute one session's dose and pump programme for a patient, checked against the "
    "limit library.",
)(command(session_command))
app.command(
    "check",
    help="Check a session (dose, patient, vitals, medications, conditions, previous sessions) "
    "against the limit library; prints the findings first.",
)(command(session_command))


@app.command()
@command
def plan(
    protocol: ProtocolId,
    start: Annotated[str, typer.Option(help="First day a session may take place: 2026-11-30.")],
    weight: WeightOpt = None,
    height: HeightOpt = None,
    sex: SexOpt = None,
    age: AgeOpt = None,
    dosing_weight: PolicyOpt = PolicyOption.actual,
    dose_: DoseOpt = None,
    rate: RateOpt = None,
    duration: DurationOpt = None,
    vial: VialOpt = None,
    strength: StrengthOpt = None,
    bag: BagOpt = None,
    drop_factor: DropFactorOpt = None,
    pump_step: PumpStepOpt = "0.1mL/h",
    draw_step: DrawStepOpt = "0.01mL",
    time_of_day: Annotated[
        str, typer.Option("--time", help="Time of day of the sessions: 09:00.")
    ] = "09:00",
    sessions: Annotated[
        int | None, typer.Option(help="Number of sessions (default: the protocol's series).")
    ] = None,
    per_week: Annotated[
        int | None, typer.Option("--per-week", help="Most sessions in any 7 days.")
    ] = None,
    days: Annotated[
        str | None, typer.Option(help="Clinic days: mon,wed,fri (default: Mon-Fri, or daily).")
    ] = None,
    holidays: Annotated[
        str | None, typer.Option(help="Skip the public holidays of a country: US, GB, DE...")
    ] = None,
    closed: Annotated[
        list[str] | None, typer.Option("--closed", help="A day the clinic is closed: 2026-12-24.")
    ] = None,
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

    chosen = _format("plan", output_format, output, force, json=json)
    from ketadose.planning import PlanRequest, parse_days
    from ketadose.planning import plan as make_plan

    request = PlanRequest(
        dose=_dose_request(
            weight,
            height,
            sex,
            age,
            dosing_weight,
            dose_,
            rate,
            duration,
            vial,
            bag,
            drop_factor,
            pump_step,
            draw_step,
            strength=strength,
        ),
        start=inputs.day(start, field="--start"),
        zone=_zone(),
        session_time=inputs.clock(time_of_day),
        sessions=sessions,
        per_week=per_week,
        days=None if days is None else parse_days(days),
        closed=inputs.closed_days(closed or [], holidays, inputs.day(start, field="--start")),
        intake_min=inputs.chair_time(intake, "--intake"),
        recovery_min=inputs.chair_time(recovery, "--recovery"),
        price=None if price is None else inputs.price(price),
        currency=currency,
        override_reason=override_reason,
        patient_id=None if patient_id is None else inputs.patient_id(patient_id),
    )
    library = _library(protocols)
    entry = library.get_protocol(protocol)
    limit_library = _limits(limits, library)
    result = make_plan(entry, request, limit_library)
    _audit(
        store,
        clinician,
        "plan",
        {"protocol": protocol, "start": start, "weight": weight, "dose": dose_, "rate": rate},
        [f for session in result.sessions for f in session.findings],
        result.status,
        result.override_reason,
        limit_library.ref.sha256,
    )

    def table(console: "Console") -> None:
        from ketadose.render import table

        table.plan(result, console)

    _emit("plan", chosen, output, force, (result,), table, limit_library)
    _finish(result.status, result.ready, "a session exceeds a hard limit (see its findings)")


class ModelOption(StrEnum):
    """Choices for --model."""

    clements250 = "clements250"
    domino = "domino"
    hijazi = "hijazi"
    kamp = "kamp"


@app.command()
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
    tz: TzOpt = None,
) -> None:
    """Predict the plasma concentration of a session (or a planned series) from a PK model."""
    from ketadose import gate, inputs
    from ketadose.clock import elapsed
    from ketadose.errors import InputError
    from ketadose.planning import RECOVERY_MIN
    from ketadose.simulation import Given, infusion_end
    from ketadose.simulation import simulate as run
    from ketadose.units import Kind, parse_as

    request = _dose_request(
        weight, height, sex, age, dosing_weight, dose_, rate, duration,
        None, None, None, "0.1mL/h", "0.01mL",
    )  # fmt: skip
    library = _library(protocols)
    entry = library.get_protocol(protocol)
    if entry.protocol.route != "iv":
        raise InputError(
            f"the models are of IV racemic ketamine; {protocol} is given {entry.protocol.route}"
        )
    limit_library = _limits(limits, library)
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
            PlanRequest(dose=request, start=day, zone=UTC if start is None else _zone()),
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
    if json:
        from ketadose.render.json import document

        _write(document(result))
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
        _write("\n".join(lines) + "\n")
    _finish(status, ready, "a hard limit is exceeded (see ketadose dose or plan)")


class SchemaName(StrEnum):
    """Choices for schema."""

    dose = "dose"
    check = "check"
    plan = "plan"
    next = "next"
    history = "history"
    batch = "batch"
    verify = "verify"
    simulate = "simulate"


@app.command()
@command
def schema(
    name: Annotated[
        SchemaName,
        typer.Argument(metavar="COMMAND", help="dose, check, plan, next, history or batch."),
    ],
) -> None:
    """Print the JSON Schema (2020-12) of a command's JSON output, made from its models."""
    from ketadose.render.schema import text

    _write(text(name.value))


class BatchFormat(StrEnum):
    """Choices for batch --format."""

    jsonl = "jsonl"
    csv = "csv"


@app.command()
@command
def batch(
    file: Annotated[
        Path,
        typer.Argument(
            metavar="FILE.csv",
            dir_okay=False,
            help="Patients, one per row: id, weight, height, sex, age, protocol, dose, rate, "
            "duration, dosing_weight (only id is required); - reads stdin.",
        ),
    ],
    protocol: Annotated[
        str | None,
        typer.Option("--protocol", "-p", help="Protocol of rows without a protocol cell."),
    ] = None,
    start: Annotated[
        str | None, typer.Option(help="First day a session may take place (default: today).")
    ] = None,
    dosing_weight: PolicyOpt = PolicyOption.actual,
    vial: VialOpt = None,
    strength: StrengthOpt = None,
    bag: BagOpt = None,
    drop_factor: DropFactorOpt = None,
    pump_step: PumpStepOpt = "0.1mL/h",
    draw_step: DrawStepOpt = "0.01mL",
    time_of_day: Annotated[
        str, typer.Option("--time", help="Time of day of the sessions: 09:00.")
    ] = "09:00",
    sessions: Annotated[
        int | None, typer.Option(help="Number of sessions (default: each protocol's series).")
    ] = None,
    per_week: Annotated[
        int | None, typer.Option("--per-week", help="Most sessions in any 7 days.")
    ] = None,
    days: Annotated[
        str | None, typer.Option(help="Clinic days: mon,wed,fri (default: Mon-Fri, or daily).")
    ] = None,
    holidays: Annotated[
        str | None, typer.Option(help="Skip the public holidays of a country: US, GB, DE...")
    ] = None,
    closed: Annotated[
        list[str] | None, typer.Option("--closed", help="A day the clinic is closed: 2026-12-24.")
    ] = None,
    protocols: ProtocolsFile = None,
    limits: LimitsFile = None,
    output_format: Annotated[
        BatchFormat,
        typer.Option(
            "--format", help="jsonl: one plan document per row; csv: one row per session."
        ),
    ] = BatchFormat.jsonl,
    output: OutputFile = None,
    force: ForceFlag = False,
    jobs: Annotated[
        int | None,
        typer.Option("--jobs", min=1, max=64, help="Worker processes (default: one per CPU core)."),
    ] = None,
    tz: TzOpt = None,
) -> None:
    """Plan many patients from a CSV file: each row a checked plan (or an error), streamed.

    Exit 4 if any plan crosses a hard limit, else 2 if any row was refused, else 3 if any
    plan has a soft finding (a batch takes no override reason), else 0.
    """
    from ketadose import inputs
    from ketadose.batch import record, rows
    from ketadose.planning import PlanRequest, parse_days
    from ketadose.render import csv
    from ketadose.render.json import document

    _check_output(output, force)
    zone = _zone()
    first = inputs.day(start, field="--start") if start else _now().date()
    template = PlanRequest(
        dose=_dose_request(
            None,
            None,
            None,
            None,
            dosing_weight,
            None,
            None,
            None,
            vial,
            bag,
            drop_factor,
            pump_step,
            draw_step,
            strength=strength,
        ),
        start=first,
        zone=zone,
        session_time=inputs.clock(time_of_day),
        sessions=sessions,
        per_week=per_week,
        days=None if days is None else parse_days(days),
        closed=inputs.closed_days(closed or [], holidays, first),
    )
    library = _library(protocols)
    if protocol is not None:
        library.get_protocol(protocol)
    limit_library = _limits(limits, library)
    # Predicted peaks cost ~10% of a plan: a batch gives them only where the library limits them.
    limited = any(
        p.session.predicted_peak is not None for p in limit_library.content.profiles.values()
    )
    template = dataclasses.replace(template, predict_peaks=limited)

    encode = (
        functools.partial(document, indent=None)
        if output_format is BatchFormat.jsonl
        else csv.batch
    )

    def work(items: "list[tuple[int, dict[str, str] | str]]") -> tuple[list[str], bytes]:
        # Runs in the worker processes: plan, check and encode a chunk of rows.
        results = [record(item, template, protocol, library, limit_library) for item in items]
        return [r.status for r in results], "".join(map(encode, results)).encode()

    header = csv.write(csv.BATCH_COLUMNS, []) if output_format is BatchFormat.csv else ""
    # Plans make many short-lived objects and no cycles: collecting every 700 allocations costs
    # ~5% of a batch. Freezing what is loaded also keeps the forked workers' pages shared.
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
    with _open_batch(file) as stream:
        source = _BatchInput(file, stream)
        workers = jobs or len(os.sched_getaffinity(0))
        counts = _batch_write(
            work, rows(source, source.name), header.encode(), output, force, source, workers
        )
    summary = ", ".join(f"{n} {status}" for status, n in counts.items() if n)
    typer.echo(f"ketadose: {sum(counts.values())} rows: {summary or 'none'}", err=True)
    if counts["hard"]:
        raise _fail("refused: a plan crosses a hard limit (see its record)", ExitCode.HARD_LIMIT)
    if counts["error"]:
        raise _fail("some rows were refused (see their error records)", ExitCode.USAGE)
    if counts["soft"]:
        raise _fail("soft limit exceeded in some plans: review them", ExitCode.SOFT_LIMIT)


class _BatchInput:
    """The batch file's lines (UTF-8, a BOM allowed), how far they have been read, its size."""

    def __init__(self, file: Path, stream: "TextIO") -> None:
        self.name = "stdin" if str(file) == "-" else str(file)
        self.stream = stream
        self.size = os.fstat(stream.fileno()).st_size if os.path.isfile(file) else None
        self.read = 0

    def __iter__(self) -> "Iterator[str]":
        from ketadose.errors import InputError

        number = 0
        try:
            for number, line in enumerate(self.stream, 1):  # noqa: B007 (used after the loop)
                self.read += len(line)
                yield line
        except UnicodeDecodeError:
            raise InputError(f"{self.name}: not UTF-8 text (after line {number})") from None


def _open_batch(file: Path) -> "TextIO":
    from ketadose.errors import InputError

    try:
        if str(file) == "-":
            import io

            return io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8-sig", newline="")
        return open(file, encoding="utf-8-sig", newline="")
    except OSError as error:
        raise InputError(f"cannot read {file}: {error.strerror}") from None


def _batch_write(
    work: "Callable[[list[tuple[int, dict[str, str] | str]]], tuple[list[str], bytes]]",
    items: "Iterator[tuple[int, dict[str, str] | str]]",
    header: bytes,
    output: Path | None,
    force: bool,
    source: _BatchInput,
    jobs: int,
) -> dict[str, int]:
    """Plan and write the rows (to stdout, or a file put in place whole at the end).

    A progress bar goes to stderr only when stderr is a terminal.

    Returns:
        How many records had each status.
    """
    from ketadose.atomic import atomic_file
    from ketadose.parallel import ordered_write

    counts = dict.fromkeys(("ok", "soft", "hard", "error"), 0)
    with contextlib.ExitStack() as stack:
        sink: BinaryIO = (
            sys.stdout.buffer
            if output is None
            else stack.enter_context(atomic_file(output, replace=force))
        )
        sink.write(header)
        results = ordered_write(work, items, sink, jobs=jobs)
        # The first result starts the worker processes: fork them before the progress bar
        # starts its refresh thread.
        first = next(results, None)
        progress = _progress(stack, source)
        for statuses in itertools.chain([] if first is None else [first], results):
            for status in statuses:
                counts[status] += 1
            progress()
        sink.flush()
    if output is not None:
        typer.echo(f"ketadose: wrote {output}", err=True)
    return counts


def _progress(stack: contextlib.ExitStack, source: _BatchInput) -> "Callable[[], None]":
    """A progress bar on stderr (by bytes read) if it is a terminal, else nothing."""
    if not sys.stderr.isatty():
        return lambda: None
    from rich.console import Console
    from rich.progress import Progress

    bar = stack.enter_context(Progress(console=Console(stderr=True), transient=True))
    task = bar.add_task(f"planning {source.name}", total=source.size)
    return lambda: bar.update(task, completed=source.read)


def _audit_entry(
    clinician: str | None,
    command_name: str,
    patient_id: str | None,
    inputs: dict[str, Any],
    findings: "Sequence[Finding]",
    status: str,
    override_reason: str | None,
    library_sha256: str,
) -> "AuditEntry":
    """One audit-log line: who, when, which command, its inputs, findings and library."""
    import json as jsonlib

    from ketadose.records import AuditEntry

    return AuditEntry(
        at=_now(),
        user=_user(clinician),
        command=command_name,
        patient_id=patient_id,
        inputs_json=jsonlib.dumps({k: str(v) for k, v in inputs.items() if v is not None}),
        findings_json=jsonlib.dumps([f.model_dump(mode="json") for f in findings]),
        status=status,
        override_reason=override_reason,
        library_sha256=library_sha256,
    )


def _audit(
    store: Path | None,
    clinician: str | None,
    command_name: str,
    inputs: dict[str, Any],
    findings: "Sequence[Finding]",
    status: str,
    override_reason: str | None,
    library_sha256: str,
) -> None:
    """Append to the audit log when a computation produced findings or an override.

    Nothing is written for a clean result (and the store is not even opened). When the log
    cannot be written the command fails (exit 6): an override must never go unrecorded.
    """
    flagged = [f for f in findings if f.severity.value != "info"]
    if not flagged and override_reason is None:
        return  # before any import: a clean run does not load the store at all

    entry = _audit_entry(
        clinician, command_name, None, inputs, flagged, status, override_reason, library_sha256
    )
    with _open_store(store) as db:
        db.append_audit(entry)


def _store_path(path: Path | None) -> Path:
    """--store, else KETADOSE_STORE (via typer), else the per-user data directory."""
    if path is not None:
        return path
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "ketadose" / "store.sqlite3"


def _user(clinician: str | None) -> str:
    import getpass

    if clinician is not None:
        if not clinician.strip() or not clinician.isprintable():
            from ketadose.errors import InputError

            raise InputError("--clinician must be a name on one line")
        return clinician.strip()
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


def _now() -> "datetime":
    """Now, to the second, in the clinic's zone (the one place the clock is read)."""
    from datetime import datetime

    return datetime.now(_zone()).replace(microsecond=0)


def _zone() -> "tzinfo":
    """The clinic's zone: --tz (the command's, then the app's), else KETADOSE_TZ, else the system's.

    Raises:
        InputError: An unknown zone, or KETADOSE_TZ set but blank (exit 2).
    """
    from ketadose import clock

    name = _tz["command"] or _tz["app"]
    if name is not None:
        return clock.zone(name)
    env = os.environ.get("KETADOSE_TZ")
    if env is not None:
        if not env.strip():
            from ketadose.errors import InputError

            raise InputError("KETADOSE_TZ is set but empty; unset it to use the system's zone")
        return clock.zone(env)
    return _system_zone()


def _system_zone() -> "tzinfo":
    """The system's zone by its IANA name (TZ, /etc/localtime, /etc/timezone).

    When the system's zone cannot be named, the local UTC offset of now: right today, but it
    does not follow daylight-saving changes (name the zone with --tz for that).
    """
    from datetime import datetime
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    candidates: list[str] = []
    env = os.environ.get("TZ")
    if env is not None:
        candidates.append(env.removeprefix(":") or "UTC")  # TZ="" is UTC to the C library
    else:
        with contextlib.suppress(OSError):
            target = os.path.realpath("/etc/localtime")
            if "/zoneinfo/" in target:
                candidates.append(target.split("/zoneinfo/", 1)[1])
        with contextlib.suppress(OSError, UnicodeDecodeError):
            candidates.append(Path("/etc/timezone").read_text(encoding="utf-8").strip())
    for candidate in candidates:
        key = candidate.split("/zoneinfo/", 1)[1] if "/zoneinfo/" in candidate else candidate
        with contextlib.suppress(ZoneInfoNotFoundError, ValueError, OSError):
            return ZoneInfo(key)
    local = datetime.now().astimezone().tzinfo
    assert local is not None  # astimezone() always gives a fixed-offset zone
    return local


def _open_store(path: Path | None) -> "Store":
    """Open the record store in the clinic's zone; say on stderr what a migration did."""
    from ketadose.store import Store

    db = Store.open(_store_path(path), zone=_zone())
    for notice in db.notices:
        typer.echo(f"ketadose: {notice}", err=True)
    return db


@patient_app.command("add")
@command
def patient_add(
    patient_id: Annotated[str, typer.Argument(metavar="ID", help="The clinic's pseudonymous id.")],
    protocol: ProtocolId,
    weight: Annotated[str, typer.Option(help="Body weight with unit: 80kg.")],
    baseline: Annotated[
        float, typer.Option(help="Baseline score on the protocol's response scale.")
    ],
    height: HeightOpt = None,
    sex: SexOpt = None,
    store: StoreFile = None,
    protocols: ProtocolsFile = None,
    tz: TzOpt = None,
) -> None:
    """Add a pseudonymous patient: protocol, weight, baseline score."""
    from ketadose import inputs
    from ketadose.errors import InputError
    from ketadose.records import PatientRecord
    from ketadose.units import Kind, parse_as

    patient_id = inputs.patient_id(patient_id)
    if not 0 <= baseline <= 1000:
        raise InputError("--baseline must be a score from 0 to 1000")
    _library(protocols).get_protocol(protocol)
    record = PatientRecord(
        id=patient_id,
        protocol=protocol,
        baseline=baseline,
        weight_kg=parse_as(weight, Kind.WEIGHT),
        height_cm=None if height is None else parse_as(height, Kind.HEIGHT),
        sex=None if sex is None else sex.value,
    )
    with _open_store(store) as db:
        db.add_patient(record, at=_now())
    typer.echo(f"ketadose: added patient {record.id}", err=True)


@patient_app.command("show")
@command
def patient_show(
    patient_id: Annotated[str, typer.Argument(metavar="ID", help="The patient's id.")],
    store: StoreFile = None,
    json: JsonFlag = False,
    tz: TzOpt = None,
) -> None:
    """Show a patient and the sessions recorded."""
    with _open_store(store) as db:
        record = db.patient(patient_id)
        sessions = db.sessions(patient_id)
    from ketadose.render import records

    if json:
        _write(records.history_json(record, sessions))
    else:
        records.history_table(record, sessions, _console())


@session_app.command("record")
@command
def session_record(
    patient_id: Annotated[str, typer.Argument(metavar="ID", help="The patient's id.")],
    date: Annotated[str, typer.Option("--date", help="When it started: 2026-11-30T09:00.")],
    dose_: Annotated[
        str | None,
        typer.Option("--dose", help="Dose given, if not the protocol's: 40mg or 0.5mg/kg."),
    ] = None,
    rate: Annotated[
        str | None, typer.Option(help="Rate given, if not the protocol's: 0.3mg/kg/h.")
    ] = None,
    duration: Annotated[str | None, typer.Option(help="Infusion time: 40min.")] = None,
    dosing_weight: PolicyOpt = PolicyOption.actual,
    stop: Annotated[
        str | None,
        typer.Option("--stop", help="Stopped early at: 2026-11-30T09:25 (mg given to then)."),
    ] = None,
    stop_reason: Annotated[str | None, typer.Option("--stop-reason", help="Why.")] = None,
    bp_before: Annotated[str | None, typer.Option("--bp-before", help="150/95.")] = None,
    bp_peak: Annotated[str | None, typer.Option("--bp-peak", help="Highest: 150/95.")] = None,
    bp_after: Annotated[str | None, typer.Option("--bp-after", help="At discharge.")] = None,
    hr: Annotated[str | None, typer.Option("--hr", help="Highest heart rate: 95.")] = None,
    spo2: Annotated[str | None, typer.Option("--spo2", help="Lowest SpO2: 96.")] = None,
    score: Annotated[
        float | None, typer.Option(help="Response score on the protocol's scale.")
    ] = None,
    ae: Annotated[
        list[str] | None,
        typer.Option("--ae", help="Adverse event TERM:GRADE: nausea:mild, dissociation:severe."),
    ] = None,
    notes: Annotated[str | None, typer.Option(help="Free notes.")] = None,
    weight: Annotated[str | None, typer.Option(help="Weight today, if it changed: 79kg.")] = None,
    clinician: ClinicianOpt = None,
    override_reason: OverrideOpt = None,
    store: StoreFile = None,
    protocols: ProtocolsFile = None,
    limits: LimitsFile = None,
    tz: TzOpt = None,
) -> None:
    """Record a session given, check it and log it; one past a hard limit is kept, flagged."""
    import json as jsonlib
    from dataclasses import replace
    from datetime import timedelta

    from ketadose import events as ae_vocabulary
    from ketadose import gate, inputs
    from ketadose.clock import elapsed, instant
    from ketadose.dosing import DoseRequest
    from ketadose.errors import InputError
    from ketadose.models import CheckContext, PreviousSession, WeightPolicy
    from ketadose.monitoring import delivered_mg
    from ketadose.records import BloodPressure, SessionRecord
    from ketadose.units import Kind

    zone = _zone()
    at = inputs.moment(date, field="--date", zone=zone)
    stopped = None if stop is None else inputs.moment(stop, field="--stop", zone=zone)
    if stopped is not None and instant(stopped) <= instant(at):
        raise InputError("--stop must be after --date (the start)")
    if stop_reason is not None and stopped is None:
        raise InputError("--stop-reason goes with --stop (when the infusion was stopped)")
    events = tuple(ae_vocabulary.parse(event) for event in ae or [])
    if score is not None and not 0 <= score <= 1000:
        raise InputError("--score must be from 0 to 1000")

    def pressure(text: str | None) -> BloodPressure | None:
        return None if text is None else BloodPressure(*inputs.blood_pressure(text))

    library = _library(protocols)
    limit_library = _limits(limits, library)
    with _open_store(store) as db:
        record = db.patient(patient_id)
        new_weight = inputs.amount(weight, Kind.WEIGHT)
        entry = library.get_protocol(record.protocol)
        titration = entry.protocol.titration
        if score is not None and titration is not None and score > titration.target.scale_max:
            raise InputError(
                f"--score must be on the {titration.scale} scale, 0 to "
                f"{titration.target.scale_max:g}"
            )
        # Every other session counts, on both sides of this one: a session recorded at the
        # same time as another, or back-filled between two, is checked with its neighbours.
        history = db.sessions(patient_id)
        request = DoseRequest(
            patient=(
                record if new_weight is None else replace(record, weight_kg=new_weight)
            ).as_patient(),
            policy=WeightPolicy(dosing_weight.value),
            dose=inputs.quantity(dose_, Kind.DOSE_PER_KG, Kind.DOSE),
            rate=inputs.quantity(rate, Kind.RATE_PER_KG, Kind.RATE),
            duration_min=inputs.amount(duration, Kind.DURATION),
        )
        peak = inputs.vitals(bp_peak, hr, spo2)
        context = CheckContext(
            at=at,
            vitals=inputs.vitals(bp_before, None, None),
            peak=peak,
            history=tuple(
                PreviousSession(at=s.at, dose_mg=s.dose_mg, dose_mg_per_kg=s.dose_mg_per_kg)
                for s in history
            ),
        )
        checked = gate.session(entry, request, limit_library, context, override_reason)
        kg = None if checked.dosing_weight is None else checked.dosing_weight.kg
        given_mg = checked.delivered_total_mg or checked.total_dose_mg
        given_min = checked.total_duration_min
        if (
            stopped is not None
            and given_min is not None
            and elapsed(stopped, at) >= timedelta(minutes=given_min)
        ):
            raise InputError(
                f"--stop {stopped:%H:%M} is not early: the programme of {given_min:g} min ended "
                "by then (record the session without --stop)"
            )
        if stopped is not None:
            given_min = elapsed(stopped, at).total_seconds() / 60
            given_mg = delivered_mg(checked.phases, given_min)
        session = SessionRecord(
            patient_id=patient_id,
            at=at,
            protocol=entry.protocol.id,
            dose_mg=given_mg,
            dose_mg_per_kg=None if not kg else given_mg / kg,
            duration_min=given_min,
            phases_json=jsonlib.dumps([p.model_dump(mode="json") for p in checked.phases]),
            bp_before=pressure(bp_before),
            bp_peak=pressure(bp_peak),
            bp_after=pressure(bp_after),
            heart_rate=None if peak is None else peak.heart_rate,
            spo2=None if peak is None else peak.spo2,
            score=score,
            adverse_events=events,
            notes=notes,
            weight_policy=None if kg is None else dosing_weight.value,
            dosing_weight_kg=kg,
            planned_dose_mg=checked.total_dose_mg,
            planned_dose_mg_per_kg=checked.total_dose_mg_per_kg,
            stopped_at=stopped,
            stop_reason=stop_reason,
        )
        audit = _audit_entry(
            clinician,
            "session record",
            patient_id,
            {
                "date": date,
                "dose": dose_,
                "rate": rate,
                "duration": duration,
                "weight": weight,
                "dosing_weight": dosing_weight.value,
                "stop": stop,
                "adverse_events": ";".join(str(e) for e in events) or None,
            },
            checked.findings,
            checked.status,
            checked.override_reason,
            limit_library.ref.sha256,
        )
        number = db.record_session_with_audit(session, audit, weight_kg=new_weight)
    flagged = [f for f in checked.findings if f.severity.value != "info"]
    typer.echo(
        f"ketadose: recorded session {number} for {patient_id} ({checked.status}"
        f"{', ' + str(len(flagged)) + ' finding(s) in the audit log' if flagged else ''})",
        err=True,
    )


def _session_of(
    db: "Store", patient_id: str, number: int | None, at: "datetime | None"
) -> "SessionRecord":
    """``--session N``, else the latest session started by ``at`` or starting soon after it.

    A reading up to :data:`READING_LEAD_H` hours before a session's start belongs to that
    session (the reading before the dose).
    """
    from datetime import timedelta

    from ketadose.clock import instant
    from ketadose.errors import InputError

    sessions = db.sessions(patient_id)
    if number is not None:
        found = [s for s in sessions if s.id == number]
        if not found:
            raise InputError(f"patient {patient_id} has no session {number}")
        return found[0]
    lead = timedelta(hours=READING_LEAD_H)
    started = [s for s in sessions if at is None or instant(s.at) - lead <= instant(at)]
    if not started:
        raise InputError(f"patient {patient_id} has no session started by then: give --session N")
    return started[-1]


#: Hours before its start that a reading still belongs to a session (the reading before dosing),
#: and after the end of its observation (when no discharge is recorded).
READING_LEAD_H = 2


def _within_session(
    protocol: "Protocol", session: "SessionRecord", readings: "Sequence[Reading]"
) -> None:
    """Refuse a reading that falls outside a session: it is never filed under another one."""
    from datetime import timedelta

    from ketadose.clock import instant, shift
    from ketadose.errors import InputError
    from ketadose.monitoring import observation_end

    lead = timedelta(hours=READING_LEAD_H)
    first = shift(session.at, -lead)
    last = session.discharged_at or shift(observation_end(protocol, session), lead)
    for reading in readings:
        if not instant(first) <= instant(reading.at) <= instant(last):
            raise InputError(
                f"the reading at {reading.at:%Y-%m-%d %H:%M} is not during session {session.id} "
                f"({first:%Y-%m-%d %H:%M} to {last:%H:%M}): record its session first, or give "
                "--session N"
            )


SessionNumber = Annotated[
    int | None,
    typer.Option("--session", help="The session's number (default: the latest started)."),
]


@session_app.command("vitals")
@command
def session_vitals(
    patient_id: Annotated[str, typer.Argument(metavar="ID", help="The patient's id.")],
    at: Annotated[
        str | None, typer.Option("--at", help="When it was taken: 2026-12-07T09:10.")
    ] = None,
    bp: Annotated[str | None, typer.Option("--bp", help="Blood pressure: 150/92.")] = None,
    hr: Annotated[str | None, typer.Option("--hr", help="Heart rate: 88.")] = None,
    spo2: Annotated[str | None, typer.Option("--spo2", help="SpO2: 97.")] = None,
    sedation: Annotated[
        int | None, typer.Option("--sedation", help="Sedation on the protocol's scale (MOAA/S).")
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option(
            "--file", help="Several readings: CSV with at,bp,hr,spo2,sedation.", dir_okay=False
        ),
    ] = None,
    number: SessionNumber = None,
    clinician: ClinicianOpt = None,
    store: StoreFile = None,
    protocols: ProtocolsFile = None,
    limits: LimitsFile = None,
    tz: TzOpt = None,
) -> None:
    """Add timed readings to a session; each is checked and answered continue, pause or stop."""
    from ketadose import inputs
    from ketadose.errors import InputError
    from ketadose.monitoring import check_reading, period
    from ketadose.records import Reading

    zone = _zone()
    if file is not None:
        if at or bp or hr or spo2 or sedation is not None:
            raise InputError("--file holds the readings: give no --at, --bp, --hr, --spo2")
        rows = inputs.reading_rows(file, zone)
    else:
        if at is None:
            raise InputError("give --at (when the reading was taken), or --file")
        if bp is None and hr is None and spo2 is None:
            raise InputError("a reading needs --bp, --hr or --spo2")
        rows = [inputs.reading(at, bp, hr, spo2, sedation, zone=zone, where="")]
    library = _library(protocols)
    limit_library = _limits(limits, library)
    answers = []
    with _open_store(store) as db:
        record = db.patient(patient_id)
        protocol = library.get_protocol(record.protocol).protocol
        session = _session_of(db, patient_id, number, rows[0].at)
        assert session.id is not None
        _within_session(protocol, session, rows)
        readings = []
        for row in rows:
            answer, found = check_reading(
                limit_library, protocol, row.vitals, period(session, row.at)
            )
            flagged = tuple(f for f in found if f.severity.value != "info")
            readings.append(
                Reading(
                    at=row.at,
                    systolic=row.systolic,
                    diastolic=row.diastolic,
                    heart_rate=row.heart_rate,
                    spo2=row.spo2,
                    sedation=row.sedation,
                    answer=answer,
                    findings=tuple(f.code for f in flagged),
                )
            )
            answers.append((row.at, answer, flagged))
        worst = max((a for _, a, _ in answers), key=("continue", "pause", "stop").index)
        entry = _audit_entry(
            clinician,
            "session vitals",
            patient_id,
            {"session": session.id, "readings": len(readings), "answer": worst},
            [f for _, _, flagged in answers for f in flagged],
            {"continue": "ok", "pause": "soft", "stop": "hard"}[worst],
            None,
            limit_library.ref.sha256,
        )
        db.add_readings(session.id, tuple(readings), entry)
    for when, answer, flagged in answers:
        why = "" if not flagged else ": " + "; ".join(f.message for f in flagged)
        typer.echo(f"{when:%Y-%m-%d %H:%M} {answer.upper()}{why}")
    if worst == "stop":
        raise _fail("stop: a reading is past a hard during-session limit", ExitCode.HARD_LIMIT)
    if worst == "pause":
        raise _fail("pause: a reading is past a soft limit; recheck", ExitCode.SOFT_LIMIT)


@session_app.command("show")
@command
def session_show(
    patient_id: Annotated[str, typer.Argument(metavar="ID", help="The patient's id.")],
    number: SessionNumber = None,
    at: Annotated[
        str | None, typer.Option("--at", help="As of (default: now), for discharge readiness.")
    ] = None,
    store: StoreFile = None,
    protocols: ProtocolsFile = None,
    limits: LimitsFile = None,
    json: JsonFlag = False,
    tz: TzOpt = None,
) -> None:
    """Show a session: dose planned and given with its basis, readings, what is missing."""
    from ketadose import inputs
    from ketadose.render import records

    moment = inputs.moment(at, field="--at", zone=_zone()) if at else _now()
    library = _library(protocols)
    limit_library = _limits(limits, library)
    with _open_store(store) as db:
        record = db.patient(patient_id)
        session = _session_of(db, patient_id, number, None)
    protocol = library.get_protocol(record.protocol).protocol
    report = records.session_report(protocol, limit_library, session, moment)
    if json:
        _write(records.session_report_json(report))
    else:
        records.session_report_table(report, _console())


@session_app.command("discharge")
@command
def session_discharge(
    patient_id: Annotated[str, typer.Argument(metavar="ID", help="The patient's id.")],
    at: Annotated[str | None, typer.Option("--at", help="When (default: now).")] = None,
    confirm: Annotated[
        bool, typer.Option("--confirm", help="The protocol's discharge criteria are met.")
    ] = False,
    number: SessionNumber = None,
    clinician: ClinicianOpt = None,
    store: StoreFile = None,
    protocols: ProtocolsFile = None,
    limits: LimitsFile = None,
    tz: TzOpt = None,
) -> None:
    """Discharge after a session, once the patient is ready (vitals, observation, criteria)."""
    from ketadose import inputs
    from ketadose.errors import InputError
    from ketadose.monitoring import readiness

    moment = inputs.moment(at, field="--at", zone=_zone()) if at else _now()
    library = _library(protocols)
    limit_library = _limits(limits, library)
    with _open_store(store) as db:
        record = db.patient(patient_id)
        session = _session_of(db, patient_id, number, moment)
        assert session.id is not None
        protocol = library.get_protocol(record.protocol).protocol
        if session.discharged_at is not None:
            raise InputError(f"session {session.id} is discharged already")
        ready = readiness(protocol, limit_library, session, moment, confirmed=confirm)
        if not ready.ready:
            raise _fail("not ready for discharge: " + "; ".join(ready.reasons), ExitCode.SOFT_LIMIT)
        entry = _audit_entry(
            clinician,
            "session discharge",
            patient_id,
            {
                "session": session.id,
                "at": moment.isoformat(),
                "criteria": " | ".join(ready.criteria),
            },
            [],
            "ok",
            None,
            limit_library.ref.sha256,
        )
        db.discharge(session.id, moment, entry)
    typer.echo(f"ketadose: discharged {patient_id} after session {session.id}", err=True)


@app.command()
@command
def history(
    patient_id: Annotated[str, typer.Argument(metavar="ID", help="The patient's id.")],
    store: StoreFile = None,
    protocols: ProtocolsFile = None,
    json: JsonFlag = False,
    csv: Annotated[
        bool, typer.Option("--csv", help="One CSV row per session (--format csv).")
    ] = False,
    output_format: FormatOpt = None,
    output: OutputFile = None,
    force: ForceFlag = False,
    tz: TzOpt = None,
) -> None:
    """Show a patient's sessions: doses, scores, improvement from baseline, trends."""
    from ketadose.clock import instant
    from ketadose.escalation import with_scores
    from ketadose.render import records

    chosen = _format("history", output_format, output, force, json=json, csv=csv)
    with _open_store(store) as db:
        record = db.patient(patient_id)
        sessions = db.sessions(patient_id)
        scores = db.scores(patient_id)
    # Each session shows the score `next` decides on: its own, or its protocol's questionnaire.
    protocol = _library(protocols).get(record.protocol)
    response = None if protocol is None else protocol.protocol.response
    instrument = None if response is None else response.instrument
    sessions = with_scores(
        sorted(sessions, key=lambda s: instant(s.at)),
        [(s.at, float(s.total)) for s in scores if s.instrument == instrument],
    )
    _emit(
        "history",
        chosen,
        output,
        force,
        (record, sessions, scores),
        lambda console: records.history_table(record, sessions, console, scores),
    )


@app.command("next")
@command
def next_session(
    patient_id: Annotated[str, typer.Argument(metavar="ID", help="The patient's id.")],
    date: Annotated[
        str | None, typer.Option("--date", help="From when (default: now): 2026-12-01T09:00.")
    ] = None,
    history_file: Annotated[
        Path | None,
        typer.Option(
            "--history",
            help="Patient and sessions from a JSON file, not the store.",
            dir_okay=False,
        ),
    ] = None,
    rebase: Annotated[
        PolicyOption | None,
        typer.Option(
            "--dosing-weight",
            help="Change the dosing basis to this weight (default: keep the sessions' basis).",
        ),
    ] = None,
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
    """Recommend the next session (start, escalate, titrate, hold, reduce, stop, reassess)."""
    from ketadose import inputs
    from ketadose.escalation import decide
    from ketadose.instruments import unacknowledged
    from ketadose.models import WeightPolicy
    from ketadose.render import records

    chosen = _format("next", output_format, output, force, json=json)

    at = inputs.moment(date, field="--date", zone=_zone()) if date else _now()
    library = _library(protocols)
    limit_library = _limits(limits, library)
    if history_file is not None:
        record, sessions, scores = records.read_history_file(history_file, patient_id, _zone())
    else:
        with _open_store(store) as db:
            record = db.patient(patient_id)
            sessions = db.sessions(patient_id)
            scores = db.scores(patient_id)
    entry = library.get_protocol(record.protocol)
    response = entry.protocol.response
    # The protocol's instrument drives the decision, beside the sessions' own scores.
    instrument = None if response is None else response.instrument
    result = decide(
        entry,
        record,
        sessions,
        limit_library,
        at=at,
        rebase=None if rebase is None else WeightPolicy(rebase.value),
        scores=[(s.at, float(s.total)) for s in scores if s.instrument == instrument],
        safety=unacknowledged(scores),
    )
    # Every recommendation is logged, from the store or from a history file alike.
    with _open_store(store) as db:
        db.append_audit(
            _audit_entry(
                clinician,
                "next",
                patient_id,
                {
                    "date": date,
                    "history": history_file,
                    "dosing_weight": None if rebase is None else rebase.value,
                    "decision": result.decision,
                    "rule": result.rule,
                    "total_dose_mg": result.total_dose_mg,
                },
                result.findings,
                result.status,
                None,
                limit_library.ref.sha256,
            )
        )
    _emit(
        "next",
        chosen,
        output,
        force,
        (result,),
        lambda console: records.next_table(result, console),
    )
    refused = (
        f"{result.decision}: no dose to start (see the reasons)"
        if result.decision == "stop"
        else "the recommended dose exceeds a hard limit"
    )
    soft = (
        f"{result.decision}: review before the next session (see the reasons); no programme "
        "is ready to start"
        if result.decision in ("reduce", "reassess")
        else "soft limit exceeded by the recommended dose: review it (see the findings)"
    )
    _finish(result.status, result.ready, refused, soft=soft)


@app.command()
@command
def audit(
    patient: Annotated[str | None, typer.Option(help="Only this patient's entries.")] = None,
    store: StoreFile = None,
    json: JsonFlag = False,
    tz: TzOpt = None,
) -> None:
    """Read the audit log (append-only): findings, overrides and reasons, who and when."""
    from ketadose.render import records

    with _open_store(store) as db:
        entries = db.audit(patient)
    if json:
        _write(records.audit_json(entries))
    else:
        records.audit_table(entries, _console())


PatientArg = Annotated[str, typer.Argument(metavar="ID", help="The patient's id.")]


def _one_line_text(text: str, option: str) -> str:
    from ketadose.errors import InputError

    if not text.strip() or not text.isprintable():
        raise InputError(f"{option} must be text on one line, saying what was done")
    return text.strip()


@score_app.command("record")
@command
def score_record(
    patient_id: PatientArg,
    instrument_id: Annotated[
        str, typer.Option("--instrument", "-i", help="phq9, gad7, pcl5 or madrs.")
    ],
    date: Annotated[str, typer.Option("--date", help="When it was answered: 2026-12-07T08:50.")],
    items: Annotated[
        str | None,
        typer.Option("--items", help="Every item's answer, in order: 2,2,2,2,1,1,2,1,1."),
    ] = None,
    total: Annotated[
        str | None, typer.Option("--total", help="A clinician-rated total alone (MADRS): 28.")
    ] = None,
    acknowledge: Annotated[
        str | None,
        typer.Option(
            "--acknowledge", help="Acknowledge a safety finding (PHQ-9 item 9): what was done."
        ),
    ] = None,
    clinician: ClinicianOpt = None,
    store: StoreFile = None,
    tz: TzOpt = None,
) -> None:
    """Score a questionnaire, store it and log it.

    A safety finding (PHQ-9 item 9 at 1 or more) must be acknowledged: without --acknowledge
    the answers are still stored (never lost) and flagged, and the command exits 3 saying how
    to acknowledge them.
    """
    from ketadose import inputs
    from ketadose.errors import InputError
    from ketadose.instruments import load_instruments, parse_items, parse_total, score, score_total
    from ketadose.scores import ScoreRecord

    library = load_instruments()
    instrument = library.get(instrument_id)
    if (items is None) == (total is None):
        raise InputError("give --items (every answer) or, for a clinician's total, --total")
    result = (
        score(instrument, parse_items(items, instrument))
        if items is not None
        else score_total(instrument, parse_total(total or "", instrument))
    )
    at = inputs.moment(date, field="--date", zone=_zone())
    if acknowledge is not None:
        acknowledge = _one_line_text(acknowledge, "--acknowledge")
        if not result.safety:
            raise InputError("--acknowledge: this score raises no safety finding to acknowledge")
    findings = [flag.finding(instrument, acknowledge) for flag in result.safety]
    audit = _audit_entry(
        clinician,
        "score record",
        patient_id,
        {"instrument": instrument.id, "items": items, "total": total, "date": date},
        findings,
        "soft" if findings else "ok",
        acknowledge,
        library.ref.sha256,
    )
    record = ScoreRecord(
        patient_id=patient_id,
        at=at,
        instrument=instrument.id,
        items=result.items,
        total=result.total,
        acknowledged_by=None if acknowledge is None else audit.user,
        acknowledged_at=None if acknowledge is None else audit.at,
        acknowledgement=acknowledge,
    )
    with _open_store(store) as db:
        number = db.record_score_with_audit(record, audit)
    band = f" ({result.band})" if result.band else ""
    typer.echo(
        f"ketadose: recorded score {number} for {patient_id}: {instrument.label} "
        f"{result.total}{band}",
        err=True,
    )
    for finding in findings:
        typer.echo(
            f"ketadose: {finding.message}"
            + (f"; acknowledged: {acknowledge}" if acknowledge else ""),
            err=True,
        )
    if findings and acknowledge is None:
        raise _fail(
            f"safety finding not acknowledged (score {number} is stored and flagged): "
            f'acknowledge it with: ketadose score acknowledge {patient_id} {number} --text "..."',
            ExitCode.SOFT_LIMIT,
        )


@score_app.command("acknowledge")
@command
def score_acknowledge(
    patient_id: PatientArg,
    score_id: Annotated[int, typer.Argument(metavar="SCORE", help="The score's number.")],
    text: Annotated[str, typer.Option("--text", help="What was done about the finding.")],
    clinician: ClinicianOpt = None,
    store: StoreFile = None,
    tz: TzOpt = None,
) -> None:
    """Acknowledge a stored score's safety finding, once, saying what was done."""
    from ketadose.errors import InputError
    from ketadose.instruments import load_instruments, rescore

    text = _one_line_text(text, "--text")
    library = load_instruments()
    with _open_store(store) as db:
        record = next((s for s in db.scores(patient_id) if s.id == score_id), None)
        if record is None:
            raise InputError(f"patient {patient_id!r} has no score {score_id}")
        instrument = library.get_stored(record)
        result = rescore(instrument, record)
        if not result.safety:
            raise InputError(f"score {score_id} raises no safety finding to acknowledge")
        audit = _audit_entry(
            clinician,
            "score acknowledge",
            patient_id,
            {"score": score_id},
            [flag.finding(instrument, text) for flag in result.safety],
            "soft",
            text,
            library.ref.sha256,
        )
        db.acknowledge_score_with_audit(
            patient_id, score_id, by=audit.user, at=audit.at, text=text, entry=audit
        )
    typer.echo(f"ketadose: acknowledged score {score_id} of {patient_id}", err=True)


@score_app.command("show")
@command
def score_show(
    patient_id: PatientArg, store: StoreFile = None, json: JsonFlag = False, tz: TzOpt = None
) -> None:
    """Show a patient's scores: items, totals, bands, safety findings, each instrument's trend."""
    from ketadose.instruments import load_instruments
    from ketadose.render import scores as render

    with _open_store(store) as db:
        found = db.scores(patient_id)
    library = load_instruments()
    if json:
        _write(render.scores_json(patient_id, library, found))
    else:
        render.scores_table(patient_id, library, found, _console())


def _limits(path: Path | None, protocols: "ProtocolLibrary") -> "LimitLibrary":
    from ketadose.errors import ConfigError
    from ketadose.limits import load_library

    if path is None and os.environ.get("KETADOSE_LIMITS") is not None:
        # Set but blank: a script meant to name a file; never fall back silently.
        raise ConfigError(
            "is set but empty; unset it to use the shipped example", path="KETADOSE_LIMITS"
        )

    library = load_library(path)
    library.check_protocols({pid: entry.protocol.route for pid, entry in protocols.items()})
    return library


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


@limits_app.command("show")
@command
def limits_show(
    protocol: Annotated[
        str | None,
        typer.Option("--protocol", "-p", help="Show the limits in effect for this protocol."),
    ] = None,
    protocols: ProtocolsFile = None,
    limits: LimitsFile = None,
    json: JsonFlag = False,
) -> None:
    """Show the limit library: every limit with its source, medications and conditions."""
    protocol_library = _library(protocols)
    library = _limits(limits, protocol_library)
    profile = None
    if protocol is not None:
        entry = protocol_library.get_protocol(protocol)  # an unknown id is an input error
        profile = library.profile(protocol, entry.protocol.route)
    if json:
        from ketadose.render.json import limits_document

        _write(limits_document(library, protocol, profile))
    else:
        from ketadose.render import table

        table.limit_library(library, protocol, profile, _console())


@limits_app.command("validate")
@command
def limits_validate(
    path: Annotated[Path, typer.Argument(help="The limit library file.", dir_okay=False)],
    protocols: ProtocolsFile = None,
) -> None:
    """Validate a limit library file; exit 0 when valid, 5 naming the file and field if not."""
    library = _limits(path, _library(protocols))
    content, ref = library.content, library.ref
    approval = "approved" if ref.approved else "UNAPPROVED (no approved_by/approved_on)"
    _write(
        f"valid: {ref.name} {ref.version} sha256 {ref.sha256} {approval}; "
        f"{len(content.profiles)} profiles, {len(content.medications)} medications, "
        f"{len(content.conditions)} conditions\n"
    )


@limits_app.command("verify")
@command
def limits_verify(
    path: Annotated[
        Path | None,
        typer.Argument(
            help="The limit library (default: --limits, KETADOSE_LIMITS, else the shipped one).",
            dir_okay=False,
        ),
    ] = None,
    examples: Annotated[
        int, typer.Option("--examples", help="Random patients tried per protocol.")
    ] = 200,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the patient generator.")] = 0,
    protocols: ProtocolsFile = None,
    limits: LimitsFile = None,
    json: JsonFlag = False,
) -> None:
    """Fuzz a limit library against the protocols: reachable hard limits, contradictions.

    Exit 0 when no problem is found; else 5, with each problem and a minimal patient.
    """
    from ketadose.verify import verify

    library = _library(protocols)
    limit_library = _limits(path or limits, library)
    result = verify(library, limit_library, examples=examples, seed=seed)
    if json:
        from ketadose.render.json import document

        _write(document(result))
    else:
        lines = [
            f"{result.library.name} {result.library.version}: {result.protocols} protocols, "
            f"{result.examples} patients each (seed {result.seed}), "
            f"{len(result.problems)} problem(s)"
        ]
        for problem in result.problems:
            patient = problem.patient
            who = "" if patient is None else f"\n    patient: {_patient_text(patient)}"
            lines.append(f"  {problem.code}: {problem.message}{who}")
        _write("\n".join(lines) + "\n")
    if result.problems:
        first = result.problems[0]
        raise _fail(
            f"{limit_library.ref.path}: {len(result.problems)} problem(s), first: "
            f"{first.protocol} {first.parameter} ({first.code})",
            ExitCode.CONFIG,
        )


def _patient_text(patient: "Patient") -> str:
    """A counterexample patient in one line: only what it has."""
    parts = [f"{patient.weight_kg:g} kg"]
    if patient.height_cm is not None:
        parts.append(f"{patient.height_cm:g} cm")
    if patient.sex is not None:
        parts.append(patient.sex.value)
    if patient.age_years is not None:
        parts.append(f"{patient.age_years:g} y")
    return ", ".join(parts)


@limits_app.command("init")
@command
def limits_init(
    path: Annotated[Path, typer.Argument(help="Where to write the copy.", dir_okay=False)],
) -> None:
    """Write an annotated copy of the example limit library to edit; never overwrites."""
    from ketadose.atomic import write_new
    from ketadose.limits import shipped_bytes

    header = (
        "# A copy of ketadose's EXAMPLE limit library. Review every number with your\n"
        "# pharmacy and medical leads, set library.name and library.version, and add\n"
        '# approved_by = "..." and approved_on = YYYY-MM-DD only once it is approved.\n'
        "# Check it with: ketadose limits validate THIS_FILE\n\n"
    )
    write_new(path, header.encode() + shipped_bytes())
    typer.echo(f"ketadose: wrote {path}", err=True)


def _repeated_option(command: Any, args: list[str]) -> str | None:
    """Name an option that takes one value but was given twice (``--weight 80kg --weight 40kg``).

    Click would silently keep the last one; for a dose that is an ambiguous input.
    """
    rest = list(args)
    while rest and isinstance(getattr(command, "commands", None), dict):
        names = [a for a in rest if not a.startswith("-")]
        if not names or names[0] not in command.commands:
            break
        command = command.commands[names[0]]
        rest = rest[rest.index(names[0]) + 1 :]
    for param in command.params:
        if getattr(param, "multiple", False) or getattr(param, "is_flag", False):
            continue
        opts = [o for o in param.opts if o.startswith("-")]
        count = sum(1 for a in rest if a in opts or any(a.startswith(f"{o}=") for o in opts))
        if count > 1:
            return f"{max(opts, key=len)} is given {count} times; give it once"
    return None


def main() -> None:
    """Console-script entry point (``ketadose``, ``python -m ketadose``).

    Typer reports a usage error (unknown option, bad choice, missing value) in four lines;
    here it becomes the one ``ketadose: error:`` line every other error is, with exit 2.
    Ctrl-C anywhere is one ``ketadose: interrupted`` line and exit 130.
    """
    try:
        _standard_streams()
        _main_command()
    except KeyboardInterrupt:
        raise SystemExit(_fail("interrupted", ExitCode.INTERRUPTED).exit_code) from None
    except OSError as error:  # help or a usage message that could not be written
        _discard_stdout()
        raise SystemExit(
            _fail(f"error: cannot write output: {error.strerror}", ExitCode.USAGE).exit_code
        ) from None


def _main_command() -> None:
    from typer.main import get_command

    command = get_command(app)  # built once: checked for repeats, then run
    repeated = _repeated_option(command, sys.argv[1:])
    if repeated is not None:
        raise SystemExit(_fail(f"error: {repeated}", ExitCode.USAGE).exit_code)
    try:
        code = command.main(args=sys.argv[1:], prog_name="ketadose", standalone_mode=False)
    except typer.TyperException as error:
        if type(error).__name__ == "NoArgsIsHelpError":
            error.show()  # type: ignore[attr-defined]
            sys.exit(int(ExitCode.USAGE))
        message = error.format_message()
        context = getattr(error, "ctx", None)
        where = f" (see: {context.command_path} --help)" if context is not None else ""
        raise SystemExit(_fail(f"error: {message}{where}", ExitCode.USAGE).exit_code) from None
    except typer.Abort:  # Click's word for Ctrl-C outside a command's body
        raise SystemExit(_fail("interrupted", ExitCode.INTERRUPTED).exit_code) from None
    sys.exit(int(code or 0))


class _Closed(io.TextIOBase):
    """Stands in for a standard stream whose descriptor was closed when ketadose started.

    Writing (or reading) raises ``OSError(EBADF)``, which the error mapping turns into its
    documented exit code: data that cannot be delivered is never reported as done.
    """

    def __init__(self, name: str) -> None:
        self._name = name

    def _closed(self) -> OSError:
        return OSError(errno.EBADF, f"{self._name} is closed")

    def write(self, text: str) -> int:
        raise self._closed()

    def read(self, size: int | None = -1) -> str:
        raise self._closed()

    def fileno(self) -> int:
        raise self._closed()

    @property
    def buffer(self) -> BinaryIO:
        """The binary stream: refused, as the text one is."""
        raise self._closed()

    @property
    def encoding(self) -> str:  # type: ignore[override]  # read-only, as on a real stream
        """What a stream would be written in."""
        return "utf-8"


class _Messages(io.TextIOBase):
    """stderr for messages that must never fail the command they report on.

    When stderr is closed, full (``/dev/full``) or gone, a message is lost but the exit code
    stays the documented one: a write error is swallowed, and the descriptor is pointed at
    ``/dev/null`` so that nothing left in a buffer fails again when Python exits (which would
    turn any exit code into 120).
    """

    def __init__(self, stream: "TextIO | None") -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        if self._stream is not None:
            try:
                self._stream.write(text)
                self._stream.flush()
            except (OSError, ValueError):
                self._lost()
        return len(text)

    def flush(self) -> None:
        if self._stream is not None:
            try:
                self._stream.flush()
            except (OSError, ValueError):
                self._lost()

    def _lost(self) -> None:
        self._stream = None
        with contextlib.suppress(OSError):
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 2)
            os.close(null)

    def isatty(self) -> bool:
        try:
            return self._stream is not None and self._stream.isatty()
        except (OSError, ValueError):
            return False

    def fileno(self) -> int:
        return 2

    @property
    def encoding(self) -> str:  # type: ignore[override]  # read-only, as on a real stream
        """The encoding of the stderr it writes to."""
        return getattr(self._stream, "encoding", None) or "utf-8"


def _standard_streams() -> None:
    """Make stdin, stdout and stderr safe before any work.

    - A closed descriptor 0, 1 or 2 is held open on ``/dev/null``, so that no file opened later
      (the store, an output's temporary file) takes its number and receives stray output; the
      Python stream becomes a :class:`_Closed` that refuses to be used (exit 2).
    - stdout carries UTF-8 whatever ``PYTHONIOENCODING`` or the locale say: the output is a
      contract, the same bytes as ``--output FILE`` writes, and an ASCII or Latin-1 stream
      could not carry "µ", "≥" or "—" (and UTF-16 would break every reader of JSON or CSV).
    - stderr keeps the environment's encoding for the person reading it, with characters it
      cannot carry written as escapes, and never fails a command (:class:`_Messages`).
    """
    closed = set()
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            closed.add(fd)
            with contextlib.suppress(OSError):
                null = os.open(os.devnull, os.O_RDONLY if fd == 0 else os.O_WRONLY)
                if null != fd:
                    os.dup2(null, fd)
                    os.close(null)
    if 0 in closed or sys.stdin is None:
        sys.stdin = _Closed("stdin")
    if 1 in closed or sys.stdout is None:
        sys.stdout = _Closed("stdout")
    elif isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(encoding="utf-8", errors="strict")
    stderr = None if 2 in closed else sys.stderr
    if isinstance(stderr, io.TextIOWrapper):
        stderr.reconfigure(errors="backslashreplace")
    sys.stderr = _Messages(stderr)


def _discard_stdout() -> None:
    """Point stdout's descriptor at ``/dev/null`` after a write to it failed.

    What is still in its buffer then goes nowhere instead of failing again when Python exits
    (which would make the exit code 120).
    """
    with contextlib.suppress(OSError, ValueError):
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)
