"""ketadose batch: many patients planned from a CSV file, streamed."""

import contextlib
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from ketadose.cli import audit_log, env
from ketadose.cli.exits import batch_outcome, command, flag
from ketadose.cli.options import (
    BagOpt,
    ClinicianOpt,
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
    StoreFile,
    StrengthOpt,
    TimeOfDayOpt,
    TzOpt,
    VialOpt,
    dose_request,
)
from ketadose.cli.output import check_output
from ketadose.cli.progress import progress_bar
from ketadose.cli.sources import stdin_option
from ketadose.errors import InputField


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
            callback=stdin_option,
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
        typer.Option(
            "--jobs",
            min=1,
            max=64,
            help="Worker processes (default: one per CPU this process may use).",
        ),
    ] = None,
    store: StoreFile = None,
    clinician: ClinicianOpt = None,
    tz: TzOpt = None,
) -> None:
    """Plan many patients from a CSV file: each row a checked plan (or an error), streamed.

    Exit 4 if any plan crosses a hard limit, else 2 if any row was refused, else 3 if any
    plan has a soft finding (a batch takes no override reason), else 0. The run writes one
    audit entry: the rows' SHA-256, how many had each status, the library's digest.
    """
    from ketadose import inputs
    from ketadose.batch import open_input, work, write
    from ketadose.parallel import cpus
    from ketadose.planning import PlanRequest, parse_days
    from ketadose.render.batch import encoding

    output = check_output(output, force)  # None: stdout (no -o, or -o -)
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
    limit_library = env.limits(limits, library)
    with env.open_store(store):
        pass  # a store that cannot take the run's entry is refused before any row is planned
    header, encode = encoding(output_format.value)
    chunk_work = work(template, protocol, library, limit_library, encode, flag)
    with open_input(file, sys.stdin) as source, contextlib.ExitStack() as stack:
        counts = write(
            chunk_work,
            source,
            sys.stdout.buffer,
            output=output,
            overwrite=force,
            header=header,
            jobs=jobs or cpus(),
            progress=progress_bar(stack, f"planning {source.name}", source.size),
        )
    asked = {
        "file": source.name,
        "rows": sum(counts.values()),
        "rows_sha256": source.digest(),
        "counts": counts,
        "protocol": protocol,
        "start": first.isoformat(),
        "format": output_format.value,
        "output": None if output is None else str(output),
    }
    worst = next((s for s in ("hard", "soft") if counts.get(s)), "ok")
    found = audit_log.entry(
        clinician, "batch", None, asked, (), worst, None, limit_library.ref.sha256
    )
    with env.open_store(store) as db:
        db.append_audit(found)
    if output is not None:
        typer.echo(f"ketadose: wrote {output}", err=True)
    summary = ", ".join(f"{n} {status}" for status, n in counts.items() if n)
    typer.echo(f"ketadose: {sum(counts.values())} rows: {summary or 'none'}", err=True)
    batch_outcome(counts)
