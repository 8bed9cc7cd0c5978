"""Output: the format asked for, the renderers, writing to stdout or a file, the console.

Renderers (``ketadose.render``, rich or json) are imported only when a command emits.
"""

import os
import sys
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from rich.console import Console

    from ketadose.limits import LimitLibrary


#: Tables are laid out for the terminal's width, and for at least this many columns: the width
#: every table is tested at (nothing a nurse reads wraps mid-number or mid-word there). A table
#: written to a file (-o) is laid out at exactly this width, the classic text width, so the file
#: is the same whatever terminal wrote it, and prints, mails and diffs without re-wrapping.
MIN_WIDTH = 80


class OutputFormat(StrEnum):
    """Choices for --format."""

    table = "table"
    json = "json"
    csv = "csv"
    markdown = "markdown"
    html = "html"
    fhir = "fhir"


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
    "simulate": {OutputFormat.json: "json.document", OutputFormat.csv: "csv.simulation"},
    "audit": {OutputFormat.json: "records.audit_json", OutputFormat.csv: "records.audit_csv"},
    "protocols list": {
        OutputFormat.json: "json.protocols_document",
        OutputFormat.csv: "csv.protocols",
    },
    "protocols show": {OutputFormat.json: "json.protocol_document"},
    "limits show": {OutputFormat.json: "json.limits_document"},
    "limits verify": {OutputFormat.json: "json.document"},
    "session show": {OutputFormat.json: "records.session_report_json"},
    "config show": {
        OutputFormat.json: "config_doc.config_document",
        OutputFormat.csv: "csv.config",
    },
    "score show": {OutputFormat.json: "scores.scores_json"},
    "store check": {OutputFormat.json: "json.document"},
    "audit verify": {OutputFormat.json: "json.document"},
    "clinician list": {OutputFormat.json: "json.document"},
}
#: ``patient show`` is a patient's history (its scores apart): the same document and formats.
RENDERERS["patient show"] = RENDERERS["history"]


def choose_format(
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
    check_output(output, force)
    return result


def check_output(output: Path | None, force: bool) -> Path | None:
    """Refuse a bad ``--output`` before any work is done, and without opening it.

    Refused: ``--force`` alone (or with ``-o -``), an existing file without it, anything but
    a regular file with it (a FIFO, a device, a socket, a directory, a symbolic link: see
    :func:`ketadose.atomic.check_target`), a missing directory.

    Returns:
        The file to write, or None for stdout (no ``-o``, or ``-o -``).
    """
    from ketadose.cli.sources import is_dash
    from ketadose.errors import InputError

    if force and (output is None or is_dash(output)):
        raise InputError("--force replaces an --output file: give -o FILE too")
    if output is None or is_dash(output):
        return None
    if not force and os.path.lexists(output):
        raise InputError(f"{output} exists: use --force to replace it")
    from ketadose.atomic import check_target

    check_target(output, replace=force)
    return output


def emit(
    command_name: str,
    chosen: OutputFormat,
    output: Path | None,
    force: bool,
    subject: "Sequence[Any]",
    table: "Callable[[Console], None] | str",
    limits: "LimitLibrary | None" = None,
    chain_head: tuple[int, str] | None = None,
) -> None:
    """Write the result: to stdout (no ``-o``, or ``-o -``), or whole to ``output`` (atomically).

    ``subject`` are the renderer's arguments; a FHIR renderer also gets the limit library
    (its ``maxDosePerAdministration``), a printable sheet the audit log's ``chain_head``.
    ``table`` prints the table on a console, or is the command's plain text.
    """
    from ketadose.cli.sources import is_dash

    if is_dash(output):
        output = None
    if chosen is OutputFormat.table:
        if isinstance(table, str):
            text = table
        elif output is None:
            table(terminal())
            return
        else:
            import io

            from rich.console import Console

            buffer = io.StringIO()
            table(
                Console(
                    file=buffer, width=MIN_WIDTH, color_system=None, highlight=False, emoji=False
                )
            )
            text = buffer.getvalue()
    else:
        import importlib

        module, function = RENDERERS[command_name][chosen].split(".")
        render = getattr(importlib.import_module(f"ketadose.render.{module}"), function)
        options: dict[str, Any] = {}
        if module == "html":  # the printable sheets: A4, or Letter from KETADOSE_PAPER/config
            from ketadose.cli import env

            options["paper"] = env.paper()
            if chain_head is not None:
                options["chain_head"] = chain_head
        text = render(*subject, *([limits] if chosen is OutputFormat.fhir else []), **options)
    if output is None:
        write(text)
        return
    from ketadose.atomic import write_new

    write_new(output, text.encode(), replace=force)
    typer.echo(f"ketadose: wrote {output}", err=True)


def emit_chunks(output: Path | None, force: bool, chunks: "Iterable[str]") -> None:
    """Write a streamed result whole or not at all, in memory that does not grow with it.

    The pieces are rendered as the store's cursor gives the rows. With ``-o FILE`` they go
    to a temporary file beside it, moved into place only when the last piece is written
    (:func:`ketadose.atomic.atomic_file`). On stdout they go to an unnamed temporary file
    first and are copied out once complete: a row refused midway (a tampered entry, exit 6)
    then leaves stdout empty, as it did when the whole text was built before writing;
    streaming straight to stdout could not take back what was written.
    """
    from ketadose.cli.sources import is_dash

    if is_dash(output):
        output = None
    if output is None:
        import shutil
        import tempfile

        encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
        with tempfile.TemporaryFile() as spool:
            for chunk in chunks:
                spool.write(chunk.encode(encoding))
            spool.seek(0)
            sys.stdout.flush()
            shutil.copyfileobj(spool, sys.stdout.buffer)
            sys.stdout.buffer.flush()
        return
    from ketadose.atomic import atomic_file

    with atomic_file(output, replace=force) as stream:
        for chunk in chunks:
            stream.write(chunk.encode())
    typer.echo(f"ketadose: wrote {output}", err=True)


def write(text: str) -> None:
    """Write a command's whole text output to stdout."""
    sys.stdout.write(text)
    sys.stdout.flush()


def terminal() -> "Console":
    """The console a table is printed on: stdout, at its real width, at least :data:`MIN_WIDTH`.

    Below :data:`MIN_WIDTH` the terminal wraps what rich laid out at 80, rather than rich
    cutting numbers short ("15…").
    """
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            # rich would exit 1 without a word; let the command's error mapping say it.
            raise BrokenPipeError

    # emoji=False: a name or note with ":warning:" in it is printed as written, and rich does
    # not load its table of emoji codes (about 1 % of a table's start-up).
    console = _Console(highlight=False, soft_wrap=False, emoji=False)
    if console.width < MIN_WIDTH:
        console = _Console(highlight=False, soft_wrap=False, emoji=False, width=MIN_WIDTH)
    return console
