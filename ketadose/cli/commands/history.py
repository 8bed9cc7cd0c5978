"""ketadose history and next: a patient's sessions, and the next one recommended."""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ketadose.cli import audit_log, env
from ketadose.cli.exits import command, finish
from ketadose.cli.options import (
    ClinicianOpt,
    ForceFlag,
    FormatOpt,
    JsonFlag,
    LimitsFile,
    OutputFile,
    PatientArg,
    PolicyOption,
    ProtocolsFile,
    StoreFile,
    TzOpt,
)
from ketadose.cli.output import OutputFormat, choose_format, emit, emit_chunks
from ketadose.cli.sources import read, stdin_option
from ketadose.errors import InputField

if TYPE_CHECKING:
    from datetime import datetime

    from ketadose.protocols import ProtocolEntry
    from ketadose.scores import ScoreRecord


def _instrument_scores(
    entry: "ProtocolEntry", scores: "list[ScoreRecord]"
) -> "list[tuple[datetime, float]]":
    """The scores of the protocol's instrument: they drive the decision beside the sessions'."""
    response = entry.protocol.response
    instrument = None if response is None else response.instrument
    return [(s.at, float(s.total)) for s in scores if s.instrument == instrument]


@command
def history(
    patient_id: PatientArg,
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
    from ketadose.escalation import iter_with_scores, with_scores
    from ketadose.render import records

    chosen = choose_format("history", output_format, output, force, json=json, csv=csv)
    library = env.library(protocols)
    with env.open_store(store, read_only=True) as db:
        record = db.patient(patient_id)
        scores = db.scores(patient_id)
        # Each session shows the score `next` decides on: its own, or its protocol's
        # questionnaire.
        protocol = library.get(record.protocol)
        response = None if protocol is None else protocol.protocol.response
        instrument = None if response is None else response.instrument
        if chosen is OutputFormat.json:
            # Streamed from the store's cursor (in time order): flat memory for any history.
            emit_chunks(
                output,
                force,
                records.history_json_chunks(
                    record,
                    iter_with_scores(
                        db.iter_sessions(patient_id),
                        [(s.at, float(s.total)) for s in scores if s.instrument == instrument],
                    ),
                    scores,
                ),
            )
            return
        sessions = db.sessions(patient_id)
    sessions = with_scores(
        sorted(sessions, key=lambda s: instant(s.at)),
        [(s.at, float(s.total)) for s in scores if s.instrument == instrument],
    )
    emit(
        "history",
        chosen,
        output,
        force,
        (record, sessions, scores),
        lambda console: records.history_table(record, sessions, console, scores),
    )


@command
def next_session(
    patient_id: PatientArg,
    date: Annotated[
        str | None, typer.Option("--date", help="From when (default: now): 2026-12-01T09:00.")
    ] = None,
    history_file: Annotated[
        Path | None,
        typer.Option(
            "--history",
            help="Patient and sessions from a JSON file, not the store; - reads stdin.",
            dir_okay=False,
            callback=stdin_option,
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
    from ketadose.escalation import decide, decisive_history
    from ketadose.instruments import unacknowledged
    from ketadose.models import WeightPolicy
    from ketadose.render import records

    chosen = choose_format("next", output_format, output, force, json=json)

    at = inputs.moment(date, field=InputField.DATE, zone=env.zone()) if date else env.now()
    library = env.library(protocols)
    limit_library = env.limits(limits, library)
    pending: list[str] = []  # a history file holds no signatures
    count: int | None = None
    if history_file is not None:
        record, sessions, scores = records.read_history_file(
            *read(history_file, library=False), patient_id, env.zone()
        )
        entry = library.get_protocol(record.protocol)
    else:
        with env.open_store(store, read_only=True) as db:
            record = db.patient(patient_id)
            scores = db.scores(patient_id)
            entry = library.get_protocol(record.protocol)
            # Only the sessions the decision reads, by indexed queries, and the count.
            sessions, count = decisive_history(
                db, entry, patient_id, at, _instrument_scores(entry, scores)
            )
            pending = [
                f"session {session_id}'s override awaits an independent second clinician's "
                f"co-signature: ketadose override cosign {audit_id}"
                for session_id, audit_id in db.awaiting_cosign(patient_id)
            ]
    result = decide(
        entry,
        record,
        sessions,
        limit_library,
        at=at,
        rebase=None if rebase is None else WeightPolicy(rebase.value),
        scores=_instrument_scores(entry, scores),
        safety=unacknowledged(scores),
        pending=pending,
        count=count,
    )
    # Every recommendation is logged, from the store or from a history file alike.
    with env.open_store(store) as db:
        db.append_audit(
            audit_log.entry(
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
    emit(
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
    finish(result.status, result.ready, refused, soft=soft)
