"""ketadose score record, acknowledge and show: questionnaires scored item by item."""

from typing import TYPE_CHECKING, Annotated

import typer

from ketadose.cli import audit_log, env
from ketadose.cli.exits import command, fail
from ketadose.cli.options import (
    ClinicianOpt,
    ForceFlag,
    FormatOpt,
    JsonFlag,
    OutputFile,
    PatientArg,
    StoreFile,
    TzOpt,
)
from ketadose.cli.output import choose_format, emit
from ketadose.errors import ExitCode, InputField

if TYPE_CHECKING:
    pass


def _one_line_text(text: str, option: str) -> str:
    from ketadose.errors import InputError

    if not text.strip() or not text.isprintable():
        raise InputError(f"{option} must be text on one line, saying what was done")
    return text.strip()


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
    at = inputs.moment(date, field=InputField.DATE, zone=env.zone())
    if acknowledge is not None:
        acknowledge = _one_line_text(acknowledge, "--acknowledge")
        if not result.safety:
            raise InputError("--acknowledge: this score raises no safety finding to acknowledge")
    findings = [flag.finding(instrument, acknowledge) for flag in result.safety]
    audit = audit_log.entry(
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
    with env.open_store(store) as db:
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
        raise fail(
            f"safety finding not acknowledged (score {number} is stored and flagged): "
            f'acknowledge it with: ketadose score acknowledge {patient_id} {number} --text "..."',
            ExitCode.SOFT_LIMIT,
        )


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
    with env.open_store(store) as db:
        record = next((s for s in db.scores(patient_id) if s.id == score_id), None)
        if record is None:
            raise InputError(f"patient {patient_id!r} has no score {score_id}")
        instrument = library.get_stored(record)
        result = rescore(instrument, record)
        if not result.safety:
            raise InputError(f"score {score_id} raises no safety finding to acknowledge")
        audit = audit_log.entry(
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


@command
def score_show(
    patient_id: PatientArg,
    store: StoreFile = None,
    json: JsonFlag = False,
    output_format: FormatOpt = None,
    output: OutputFile = None,
    force: ForceFlag = False,
    tz: TzOpt = None,
) -> None:
    """Show a patient's scores: items, totals, bands, safety findings, each instrument's trend."""
    from ketadose.instruments import load_instruments
    from ketadose.render import scores as render

    chosen = choose_format("score show", output_format, output, force, json=json)
    with env.open_store(store, read_only=True) as db:
        found = db.scores(patient_id)
    library = load_instruments()
    emit(
        "score show",
        chosen,
        output,
        force,
        (patient_id, library, found),
        lambda console: render.scores_table(patient_id, library, found, console),
    )
