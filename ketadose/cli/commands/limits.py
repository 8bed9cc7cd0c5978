"""ketadose limits show, validate, verify and init: the limit library."""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ketadose.cli import env
from ketadose.cli.exits import command, fail
from ketadose.cli.options import (
    ForceFlag,
    FormatOpt,
    JsonFlag,
    LimitsFile,
    OutputFile,
    ProtocolsFile,
)
from ketadose.cli.output import OutputFormat, choose_format, emit, write
from ketadose.cli.sources import stdin_option
from ketadose.errors import ExitCode

if TYPE_CHECKING:
    from rich.console import Console

    from ketadose.limits import LimitLibrary, Profile
    from ketadose.models import Patient


@command
def limits_show(
    protocol: Annotated[
        str | None,
        typer.Option("--protocol", "-p", help="Show the limits in effect for this protocol."),
    ] = None,
    protocols: ProtocolsFile = None,
    limits: LimitsFile = None,
    json: JsonFlag = False,
    output_format: FormatOpt = None,
    output: OutputFile = None,
    force: ForceFlag = False,
) -> None:
    """Show the limit library: every limit with its source, medications and conditions."""
    chosen = choose_format("limits show", output_format, output, force, json=json)
    protocol_library = env.library(protocols)
    library = env.limits(limits, protocol_library)
    profile = None
    if protocol is not None:
        entry = protocol_library.get_protocol(protocol)  # an unknown id is an input error
        profile = library.profile(protocol, entry.protocol.route)
    emit(
        "limits show",
        chosen,
        output,
        force,
        (library, protocol, profile),
        lambda console: _limits_table(library, protocol, profile, console),
    )


def _limits_table(
    library: "LimitLibrary", protocol: str | None, profile: "Profile | None", console: "Console"
) -> None:
    from ketadose.render import table  # with rich, only when a table is printed

    table.limit_library(library, protocol, profile, console)


@command
def limits_validate(
    path: Annotated[
        Path,
        typer.Argument(
            help="The limit library file; - reads stdin.", dir_okay=False, callback=stdin_option
        ),
    ],
    protocols: ProtocolsFile = None,
) -> None:
    """Validate a limit library file; exit 0 when valid, 5 naming the file and field if not."""
    library = env.limits(path, env.library(protocols))
    content, ref = library.content, library.ref
    approval = "approved" if ref.approved else "UNAPPROVED (no approved_by/approved_on)"
    write(
        f"valid: {ref.name} {ref.version} sha256 {ref.sha256} {approval}; "
        f"{len(content.profiles)} profiles, {len(content.medications)} medications, "
        f"{len(content.conditions)} conditions\n"
    )


@command
def limits_verify(
    path: Annotated[
        Path | None,
        typer.Argument(
            help="The limit library (default: --limits, KETADOSE_LIMITS, else the shipped one); "
            "- reads stdin.",
            dir_okay=False,
            callback=stdin_option,
        ),
    ] = None,
    examples: Annotated[
        int, typer.Option("--examples", help="Random patients tried per protocol.")
    ] = 200,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the patient generator.")] = 0,
    protocols: ProtocolsFile = None,
    limits: LimitsFile = None,
    json: JsonFlag = False,
    output_format: FormatOpt = None,
    output: OutputFile = None,
    force: ForceFlag = False,
) -> None:
    """Fuzz a limit library against the protocols: reachable hard limits, contradictions.

    Exit 0 when no problem is found; else 5, with each problem and a minimal patient.
    """
    from ketadose.verify import verify

    chosen = choose_format("limits verify", output_format, output, force, json=json)
    library = env.library(protocols)
    limit_library = env.limits(path or limits, library)
    result = verify(library, limit_library, examples=examples, seed=seed)
    lines = []
    if chosen is OutputFormat.table:
        lines = [
            f"{result.library.name} {result.library.version}: {result.protocols} protocols, "
            f"{result.examples} patients each (seed {result.seed}), "
            f"{len(result.problems)} problem(s)"
        ]
        for problem in result.problems:
            patient = problem.patient
            who = "" if patient is None else f"\n    patient: {_patient_text(patient)}"
            lines.append(f"  {problem.code}: {problem.message}{who}")
    emit("limits verify", chosen, output, force, (result,), "\n".join(lines) + "\n")
    if result.problems:
        first = result.problems[0]
        raise fail(
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


@command
def limits_init(
    path: Annotated[
        Path, typer.Argument(help="Where to write the copy; - writes it to stdout.", dir_okay=False)
    ],
) -> None:
    """Write an annotated copy of the example limit library to edit; never overwrites."""
    from ketadose.atomic import write_new
    from ketadose.cli.sources import is_dash
    from ketadose.limits import shipped_bytes

    header = (
        "# A copy of ketadose's EXAMPLE limit library. Review every number with your\n"
        "# pharmacy and medical leads, set library.name and library.version, and add\n"
        '# approved_by = "..." and approved_on = YYYY-MM-DD only once it is approved.\n'
        "# Check it with: ketadose limits validate THIS_FILE\n\n"
    )
    text = header.encode() + shipped_bytes()
    if is_dash(path):
        write(text.decode())
        return
    write_new(path, text)
    typer.echo(f"ketadose: wrote {path}", err=True)
