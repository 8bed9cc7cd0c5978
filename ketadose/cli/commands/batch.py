"""ketadose batch: many patients planned from a CSV file, streamed."""

import contextlib
import dataclasses
import functools
import gc
import itertools
import os
import sys
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, BinaryIO, TextIO

import typer

from ketadose.cli import env
from ketadose.cli.exits import batch_outcome, command, flag
from ketadose.cli.options import (
    BagOpt,
    ClosedOpt,
    DaysOpt,
    DrawStepOpt,
    DropFactorOpt,
    ForceFlag,
    HolidaysOpt,
    LimitsFile,
    OutputFile,
    PerWeekOpt,
    PolicyOpt,
    PolicyOption,
    ProtocolsFile,
    PumpStepOpt,
    StrengthOpt,
    TimeOfDayOpt,
    TzOpt,
    VialOpt,
    dose_request,
)
from ketadose.cli.output import check_output
from ketadose.errors import InputField

if TYPE_CHECKING:
    from collections.abc import Iterator


class BatchFormat(StrEnum):
    """Choices for batch --format."""

    jsonl = "jsonl"
    csv = "csv"


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
    dosing_weight: PolicyOpt = PolicyOption.ACTUAL,
    vial: VialOpt = None,
    strength: StrengthOpt = None,
    bag: BagOpt = None,
    drop_factor: DropFactorOpt = None,
    pump_step: PumpStepOpt = None,
    draw_step: DrawStepOpt = None,
    time_of_day: TimeOfDayOpt = "09:00",
    sessions: Annotated[
        int | None, typer.Option(help="Number of sessions (default: each protocol's series).")
    ] = None,
    per_week: PerWeekOpt = None,
    days: DaysOpt = None,
    holidays: HolidaysOpt = None,
    closed: ClosedOpt = None,
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

    check_output(output, force)
    zone = env.zone()
    first = inputs.day(start, field=InputField.START) if start else env.now().date()
    template = PlanRequest(
        dose=dose_request(
            dosing_weight=dosing_weight,
            vial=vial,
            strength=strength,
            bag=bag,
            drop_factor=drop_factor,
            pump_step=pump_step,
            draw_step=draw_step,
        ),
        start=first,
        zone=zone,
        session_time=inputs.clock(time_of_day),
        sessions=sessions,
        per_week=per_week,
        days=None if days is None else parse_days(days),
        closed=inputs.closed_days(closed or [], holidays, first),
    )
    library = env.library(protocols)
    if protocol is not None:
        library.get_protocol(protocol)
    limit_library = env.limits(limits, library)
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
        results = [
            record(item, template, protocol, library, limit_library, option=flag) for item in items
        ]
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
    batch_outcome(counts)


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
