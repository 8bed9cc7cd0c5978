"""Output for the record store: history (table, JSON, CSV), the next session, the audit log."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from ketadose.clock import instant, label
from ketadose.errors import InputError
from ketadose.models import SCHEMA_VERSION, Real, significant
from ketadose.records import (
    AuditEntry,
    BloodPressure,
    PatientRecord,
    Reading,
    SessionRecord,
    improvement_pct,
)
from ketadose.scores import ScoreRecord
from ketadose.units import format_number

if TYPE_CHECKING:
    from rich.console import Console

    from ketadose.escalation import NextSession
    from ketadose.instruments import Instrument
    from ketadose.limits import LimitLibrary
    from ketadose.protocols import Protocol

CSV_COLUMNS = (
    "date",
    "total_dose_mg",
    "dose_mg_per_kg",
    "duration_min",
    "score",
    "improvement_pct",
    "bp_before",
    "bp_peak",
    "bp_after",
    "heart_rate",
    "spo2",
    "adverse_events",
    "notes",
    "weight_policy",
    "dosing_weight_kg",
    "planned_dose_mg",
    "planned_dose_mg_per_kg",
    "stopped_at",
    "stop_reason",
    "discharged_at",
    "reported",
    "readings",
    "questionnaires",
)


def _bp(value: BloodPressure | None) -> str | None:
    if value is None:
        return None
    return f"{format_number(value.systolic)}/{format_number(value.diastolic)}"


def _improvement(patient: PatientRecord, score: float | None) -> float | None:
    value = improvement_pct(patient.baseline, score)
    return None if value is None else significant(value)


def history_rows(patient: PatientRecord, sessions: list[SessionRecord]) -> list[dict[str, Any]]:
    """One plain row per session, in time order, with the improvement from baseline.

    Args:
        patient: The patient (baseline score).
        sessions: The sessions.

    Returns:
        Rows keyed by ``CSV_COLUMNS``.
    """
    return list(_history_rows(patient, sorted(sessions, key=lambda s: instant(s.at))))


def _history_rows(
    patient: PatientRecord, sessions: Iterable[SessionRecord]
) -> Iterator[dict[str, Any]]:
    """The rows of :func:`history_rows`, one at a time, for sessions already in time order."""
    for s in sessions:
        yield {
            "date": s.at.isoformat(),
            "total_dose_mg": s.dose_mg,
            "dose_mg_per_kg": s.dose_mg_per_kg,
            "duration_min": s.duration_min,
            "score": s.score,
            "improvement_pct": _improvement(patient, s.score),
            "bp_before": _bp(s.bp_before),
            "bp_peak": _bp(s.bp_peak),
            "bp_after": _bp(s.bp_after),
            "heart_rate": s.heart_rate,
            "spo2": s.spo2,
            "adverse_events": [str(event) for event in s.adverse_events],
            "notes": s.notes,
            "weight_policy": s.weight_policy,
            "dosing_weight_kg": s.dosing_weight_kg,
            "planned_dose_mg": s.planned_dose_mg,
            "planned_dose_mg_per_kg": s.planned_dose_mg_per_kg,
            "stopped_at": None if s.stopped_at is None else s.stopped_at.isoformat(),
            "stop_reason": s.stop_reason,
            "discharged_at": None if s.discharged_at is None else s.discharged_at.isoformat(),
            "reported": s.reported,
            "readings": [
                {
                    "at": r.at.isoformat(),
                    "bp": None
                    if r.systolic is None or r.diastolic is None
                    else _bp(BloodPressure(r.systolic, r.diastolic)),
                    "heart_rate": r.heart_rate,
                    "spo2": r.spo2,
                    "sedation": r.sedation,
                    "answer": r.answer,
                    "findings": list(r.findings),
                }
                for r in s.readings
            ],
        }


class HistoryReading(BaseModel):
    """One reading of a session's vitals timeline."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    at: AwareDatetime
    bp: str | None
    heart_rate: float | None
    spo2: float | None
    sedation: int | None
    answer: str
    findings: tuple[str, ...]


class HistorySession(BaseModel):
    """One session of the ``history`` document, with its improvement from baseline.

    Numbers are written as stored, to the last digit (plain floats, not cleaned to 15
    significant digits): ``next --history`` reads this document back and must decide
    exactly as it would from the store.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    date: AwareDatetime
    total_dose_mg: float
    dose_mg_per_kg: float | None
    duration_min: float | None
    score: float | None
    improvement_pct: float | None
    bp_before: str | None
    bp_peak: str | None
    bp_after: str | None
    heart_rate: float | None
    spo2: float | None
    adverse_events: tuple[str, ...]
    notes: str | None
    weight_policy: str | None
    dosing_weight_kg: float | None
    planned_dose_mg: float | None
    planned_dose_mg_per_kg: float | None
    stopped_at: AwareDatetime | None
    stop_reason: str | None
    discharged_at: AwareDatetime | None
    reported: bool = Field(
        default=False, description="The adverse events were reported as complete (take-home)."
    )
    readings: tuple[HistoryReading, ...]


class HistoryScore(BaseModel):
    """One questionnaire score of the ``history`` document (``score record``)."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    date: AwareDatetime
    instrument: str
    items: tuple[int, ...] | None
    total: int
    acknowledged_by: str | None = None
    acknowledged_at: AwareDatetime | None = None
    acknowledgement: str | None = None


class History(BaseModel):
    """The ``history --json`` document (plus ``schema_version``).

    ``scores`` holds every questionnaire score (what ``next --history`` reads back);
    ``trends`` each instrument's trend: band, change from the first score, response and
    remission where sourced.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    patient: PatientRecord
    sessions: tuple[HistorySession, ...]
    scores: tuple[HistoryScore, ...] = ()
    trends: dict[str, list[dict[str, Any]]] = {}


def _instruments(scores: Sequence[ScoreRecord]) -> list[Instrument]:
    """The instruments the scores were taken on, in the order first taken."""
    if not scores:
        return []
    from ketadose.instruments import load_instruments

    library = load_instruments()
    first = {score.instrument: score for score in reversed(scores)}
    return [library.get_stored(first[name]) for name in dict.fromkeys(s.instrument for s in scores)]


def _trends(scores: Sequence[ScoreRecord]) -> dict[str, list[dict[str, Any]]]:
    """Each recorded instrument's trend rows, by instrument id (none without scores)."""
    from ketadose.render.scores import trend_rows

    return {i.id: trend_rows(i, scores) for i in _instruments(scores)}


def sparklines(scores: Sequence[ScoreRecord]) -> list[str]:
    """One terminal sparkline per recorded instrument, scaled to its whole range."""
    from ketadose.render.scores import sparkline

    return [sparkline(i, scores) for i in _instruments(scores)]


def history_json(
    patient: PatientRecord, sessions: list[SessionRecord], scores: Sequence[ScoreRecord] = ()
) -> str:
    """The ``history --json`` document.

    Args:
        patient: The patient.
        sessions: The sessions.
        scores: Their questionnaire scores.

    Returns:
        JSON text.
    """
    return "".join(
        history_json_chunks(patient, sorted(sessions, key=lambda s: instant(s.at)), scores)
    )


def history_json_chunks(
    patient: PatientRecord, sessions: Iterable[SessionRecord], scores: Sequence[ScoreRecord] = ()
) -> Iterator[str]:
    """The ``history --json`` document in pieces, one session at a time (flat memory).

    The same bytes as :func:`history_json`: the document without its sessions is written
    whole, and each session is written as pydantic writes it, indented to its place (JSON
    text holds no raw line break, so an element's lines are its place's lines).

    Args:
        patient: The patient.
        sessions: The sessions, in time order (an iterator is taken as it comes).
        scores: Their questionnaire scores.

    Yields:
        Pieces of the JSON text.
    """
    from ketadose.render.json import document

    ordered = sorted(scores, key=lambda score: instant(score.at))
    frame = document(
        History(
            patient=patient,
            sessions=(),
            scores=tuple(
                HistoryScore(
                    date=s.at,
                    instrument=s.instrument,
                    items=s.items,
                    total=s.total,
                    acknowledged_by=s.acknowledged_by,
                    acknowledged_at=s.acknowledged_at,
                    acknowledgement=s.acknowledgement,
                )
                for s in ordered
            ),
            trends=_trends(ordered),
        )
    )
    empty = '\n  "sessions": []'
    head, tail = frame.split(empty, 1)
    yield head + '\n  "sessions": ['
    first = True
    for row in _history_rows(patient, sessions):
        text = HistorySession(**row).model_dump_json(indent=2)
        yield ("\n" if first else ",\n") + _indented(text, "    ")
        first = False
    yield ("]" if first else "\n  ]") + tail


def _indented(text: str, prefix: str) -> str:
    return prefix + text.replace("\n", "\n" + prefix)


def history_csv(
    patient: PatientRecord, sessions: list[SessionRecord], scores: Sequence[ScoreRecord] = ()
) -> str:
    """One CSV row per session, stable headers, RFC 4180 quoting.

    ``questionnaires`` lists the scores taken for each session (from 12 h before it to 12 h
    before the next one, as ``next`` counts them): ``madrs=28;phq9=14``.

    Args:
        patient: The patient.
        sessions: The sessions.
        scores: Their questionnaire scores.

    Returns:
        CSV text.
    """
    from ketadose.escalation import SCORE_LEAD
    from ketadose.render import csv

    rows = history_rows(patient, sessions)
    ordered = sorted(scores, key=lambda score: instant(score.at))
    starts = [instant(datetime.fromisoformat(r["date"])) - SCORE_LEAD for r in rows]

    def taken(index: int) -> str:
        end = starts[index + 1] if index + 1 < len(starts) else None
        return ";".join(
            f"{s.instrument}={s.total}"
            for s in ordered
            if starts[index] <= instant(s.at) and (end is None or instant(s.at) < end)
        )

    return csv.write(
        CSV_COLUMNS,
        (
            {
                **r,
                "adverse_events": ";".join(r["adverse_events"]),
                "readings": len(r["readings"]),
                "questionnaires": taken(index) or None,
            }
            for index, r in enumerate(rows)
        ),
    )


def read_history_file(
    raw: bytes, name: str, patient_id: str, zone: tzinfo
) -> tuple[PatientRecord, list[SessionRecord], list[ScoreRecord]]:
    """Read ``next --history FILE.json``: ``{"patient": {...}, "sessions": [...]}``.

    The patient has ``id``, ``protocol``, ``baseline``, ``weight_kg`` and optionally
    ``height_cm`` and ``sex``; each session ``date`` (ISO 8601: local time in ``zone``, or
    with a UTC offset), ``total_dose_mg`` and
    optionally ``dose_mg_per_kg``, ``score``, ``bp_peak`` ("150/95"), ``heart_rate``,
    ``spo2`` and ``adverse_events`` (a list). ``history --json`` writes this shape.

    Args:
        raw: The file's bytes (the edge reads the file, or stdin).
        name: How messages name it: its path, or ``stdin``.
        patient_id: The id asked for; it must match the file's.
        zone: The clinic's time zone, for dates without an offset.

    Returns:
        The patient and the sessions.

    Raises:
        InputError: For an unreadable or malformed file, naming what is wrong.
    """
    try:
        data = json.loads(raw.decode("utf-8-sig"), object_pairs_hook=_unique_keys)
        if not isinstance(data, dict):
            raise InputError("not a history file (a JSON object with patient and sessions)")
        _known(data, _TOP_KEYS, "the file")
        person = data["patient"]
        if not isinstance(person, dict):
            raise InputError("patient must be an object")
        _known(person, _PATIENT_KEYS, "patient")
        patient = PatientRecord(
            id=_text(person, "id", "patient", required=True) or "",
            protocol=_text(person, "protocol", "patient", required=True) or "",
            baseline=_number(person, "baseline", "patient", required=True) or 0.0,
            weight_kg=_number(person, "weight_kg", "patient", required=True) or 0.0,
            height_cm=_number(person, "height_cm", "patient"),
            sex=_text(person, "sex", "patient"),
        )
        rows = data["sessions"]
        if not isinstance(rows, list):
            raise InputError("sessions must be a list")
        sessions = [_session(row, f"sessions[{i}]", patient, zone) for i, row in enumerate(rows)]
        given = data.get("scores", [])
        if not isinstance(given, list):
            raise InputError("scores must be a list")
        scores = [_score(row, f"scores[{i}]", patient, zone) for i, row in enumerate(given)]
    except InputError as error:
        raise InputError(f"{name}: {error}") from None
    except RecursionError:
        raise InputError(f"{name}: not a history file (nested too deeply)") from None
    except Exception as error:  # malformed JSON, missing keys, wrong types: all the user's file
        raise InputError(f"{name}: not a history file ({type(error).__name__}: {error})") from None
    _plausible(name, patient, sessions)
    if patient.id != patient_id:
        raise InputError(f"{name} holds patient {patient.id!r}, not {patient_id!r}")
    if patient.sex not in (None, "male", "female"):
        raise InputError(f"{name}: sex must be male or female")
    return patient, sessions, scores


def _score(row: object, where: str, patient: PatientRecord, zone: tzinfo) -> ScoreRecord:
    """One questionnaire score of a history file, validated against its instrument."""
    from ketadose.inputs import moment
    from ketadose.instruments import load_instruments, score, score_total

    if not isinstance(row, dict) or not isinstance(row.get("date"), str):
        raise InputError(f"{where} must be an object with a 'date'")
    instrument = load_instruments().get(str(row.get("instrument")))
    items = row.get("items")
    total = row.get("total")
    if items is not None:
        if not isinstance(items, list) or not all(
            isinstance(i, int) and not isinstance(i, bool) for i in items
        ):
            raise InputError(f"{where}.items must be a list of whole numbers")
        result = score(instrument, tuple(items))
    else:
        if isinstance(total, bool) or not isinstance(total, int):
            raise InputError(f"{where}.total must be a whole number")
        result = score_total(instrument, total)
    if total is not None and total != result.total:
        raise InputError(f"{where}.total {total} is not the sum of its items ({result.total})")
    _known(row, _SCORE_KEYS, where)
    by, text = _text(row, "acknowledged_by", where), _text(row, "acknowledgement", where)
    stamp = _text(row, "acknowledged_at", where)
    if (by is None) != (text is None) or (by is None) != (stamp is None):
        raise InputError(f"{where}: an acknowledgement has acknowledged_by, _at and the text")
    return ScoreRecord(
        acknowledged_by=by,
        acknowledged_at=None
        if stamp is None
        else moment(stamp, field=f"{where}.acknowledged_at", zone=zone),
        acknowledgement=text,
        patient_id=patient.id,
        at=moment(row["date"], field=f"{where}.date", zone=zone),
        instrument=instrument.id,
        items=None if items is None else tuple(items),
        total=result.total,
    )


_POLICIES = ("actual", "ideal", "adjusted", "lean")


def _session(
    row: dict[str, Any], where: str, patient: PatientRecord, zone: tzinfo
) -> SessionRecord:
    """One session of a history file, every field read as strictly as the store reads it."""
    from ketadose.events import parse_list
    from ketadose.inputs import blood_pressure, moment

    def when(key: str) -> datetime | None:
        value = row.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise InputError(f"{where}.{key} must be a string")
        return moment(value, field=f"{where}.{key}", zone=zone)

    def text(key: str) -> str | None:
        value = row.get(key)
        if value is not None and not isinstance(value, str):
            raise InputError(f"{where}.{key} must be a string")
        return value

    if not isinstance(row, dict):
        raise InputError(f"{where} must be an object")
    _known(row, _SESSION_KEYS, where)
    if not isinstance(row.get("date"), str):
        raise InputError(f"{where}.date must be a string")
    policy = text("weight_policy")
    if policy is not None and policy not in _POLICIES:
        raise InputError(f"{where}.weight_policy must be one of {', '.join(_POLICIES)}")
    peak = row.get("bp_peak")
    readings = row.get("readings") or []
    if not isinstance(readings, list):
        raise InputError(f"{where}.readings must be a list")
    at = when("date")
    assert at is not None
    return SessionRecord(
        patient_id=patient.id,
        at=at,
        protocol=patient.protocol,
        dose_mg=_number(row, "total_dose_mg", where, required=True) or 0.0,
        dose_mg_per_kg=_number(row, "dose_mg_per_kg", where),
        duration_min=_number(row, "duration_min", where),
        score=_number(row, "score", where),
        bp_before=_pressure(row.get("bp_before")),
        bp_peak=None if peak is None else BloodPressure(*blood_pressure(str(peak))),
        bp_after=_pressure(row.get("bp_after")),
        heart_rate=_number(row, "heart_rate", where),
        spo2=_number(row, "spo2", where),
        adverse_events=parse_list(row.get("adverse_events", []), field=f"{where}.adverse_events"),
        notes=text("notes"),
        weight_policy=policy,
        dosing_weight_kg=_number(row, "dosing_weight_kg", where),
        planned_dose_mg=_number(row, "planned_dose_mg", where),
        planned_dose_mg_per_kg=_number(row, "planned_dose_mg_per_kg", where),
        stopped_at=when("stopped_at"),
        stop_reason=text("stop_reason"),
        discharged_at=when("discharged_at"),
        reported=_flag(row, "reported", where),
        readings=tuple(
            _reading(reading, f"{where}.readings[{i}]", zone) for i, reading in enumerate(readings)
        ),
    )


def _flag(row: dict[str, Any], key: str, where: str) -> bool:
    """A yes/no of a history row: JSON true or false (absent: false), never 1 or "yes"."""
    value = row.get(key, False)
    if not isinstance(value, bool):
        raise InputError(f"{where}.{key} must be true or false")
    return value


def _pressure(value: object) -> BloodPressure | None:
    from ketadose.inputs import blood_pressure

    return None if value is None else BloodPressure(*blood_pressure(str(value)))


def _reading(row: object, where: str, zone: tzinfo) -> Reading:
    from ketadose.inputs import moment

    if not isinstance(row, dict) or not isinstance(row.get("at"), str):
        raise InputError(f"{where} must be an object with an 'at' time")
    _known(row, _READING_KEYS, where)
    bp = _pressure(row.get("bp"))
    answer = row.get("answer", "continue")
    if answer not in ("continue", "pause", "stop"):
        raise InputError(f"{where}.answer must be continue, pause or stop")
    sedation = row.get("sedation")
    if sedation is not None and (
        isinstance(sedation, bool) or not isinstance(sedation, int) or not 0 <= sedation <= 5
    ):
        raise InputError(f"{where}.sedation must be a whole score from 0 to 5")
    findings = row.get("findings", [])
    if not isinstance(findings, list) or not all(isinstance(f, str) for f in findings):
        raise InputError(f"{where}.findings must be a list of finding codes")
    return Reading(
        at=moment(row["at"], field=f"{where}.at", zone=zone),
        systolic=None if bp is None else bp.systolic,
        diastolic=None if bp is None else bp.diastolic,
        heart_rate=_number(row, "heart_rate", where),
        spo2=_number(row, "spo2", where),
        sedation=sedation,
        answer=answer,
        findings=tuple(findings),
    )


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, refused if it names a key twice (json would keep the last silently)."""
    keys = [key for key, _ in pairs]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise InputError(f"the key {repeated[0]!r} is given twice")
    return dict(pairs)


def _plausible(source: str, patient: PatientRecord, sessions: list[SessionRecord]) -> None:
    """The same ranges ``patient add`` and ``session record`` enforce."""
    import math

    from ketadose.inputs import plausible

    def bad(what: str) -> InputError:
        return InputError(f"{source}: {what}")

    if not (math.isfinite(patient.baseline) and 0 <= patient.baseline <= 1000):
        raise bad("patient.baseline must be a score from 0 to 1000")
    if not (math.isfinite(patient.weight_kg) and patient.weight_kg > 0):
        raise bad("patient.weight_kg must be a positive number")
    if not patient.weight_kg <= LARGEST:
        raise bad("patient.weight_kg is out of range")
    if patient.height_cm is not None and not (
        math.isfinite(patient.height_cm) and 0 < patient.height_cm <= LARGEST
    ):
        raise bad("patient.height_cm must be a positive number")
    for index, session in enumerate(sessions):
        where = f"sessions[{index}]"
        try:
            plausible(session.at, field=f"{where}.date")
        except InputError as error:
            raise bad(str(error)) from None
        if not (math.isfinite(session.dose_mg) and session.dose_mg > 0):
            raise bad(f"{where}.total_dose_mg must be a positive number")
        for name, value, high in (
            ("dose_mg_per_kg", session.dose_mg_per_kg, 1000.0),
            ("score", session.score, 1000.0),
            ("heart_rate", session.heart_rate, 400.0),
            ("spo2", session.spo2, 100.0),
        ):
            if value is not None and not (math.isfinite(value) and 0 <= value <= high):
                raise bad(f"{where}.{name} is out of range")
        # What next computes the dose from (the basis, the planned amount, the duration):
        # positive and finite, so a NaN or 0 can never reach the gate or a division.
        for name, value, high in (
            ("dosing_weight_kg", session.dosing_weight_kg, LARGEST),
            ("planned_dose_mg", session.planned_dose_mg, LARGEST),
            ("planned_dose_mg_per_kg", session.planned_dose_mg_per_kg, 1000.0),
            ("duration_min", session.duration_min, LARGEST),
        ):
            if value is not None and not (math.isfinite(value) and 0 < value <= high):
                raise bad(f"{where}.{name} must be a positive number, not {value}")
        for number, reading in enumerate(session.readings):
            for name, value, high in (
                ("heart_rate", reading.heart_rate, 400.0),
                ("spo2", reading.spo2, 100.0),
            ):
                if value is not None and not (math.isfinite(value) and 0 < value <= high):
                    raise bad(f"{where}.readings[{number}].{name} is out of range")


#: The largest weight (kg), height (cm), dose (mg) or duration (min) a history file may give:
#: far above any real one, small enough that no computation on it overflows.
LARGEST = 1e6


#: The keys a history file may have (``history --json`` writes them); any other is refused,
#: so a misspelt ``adverse_event`` is an error, not events silently left out.
_TOP_KEYS = frozenset({"schema_version", "patient", "sessions", "scores", "trends"})
_PATIENT_KEYS = frozenset(
    {"id", "protocol", "baseline", "weight_kg", "height_cm", "sex", "created_at"}
)
_SESSION_KEYS = frozenset(HistorySession.model_fields)
_READING_KEYS = frozenset(HistoryReading.model_fields)
_SCORE_KEYS = frozenset(HistoryScore.model_fields)


def _known(row: dict[str, Any], keys: frozenset[str], where: str) -> None:
    unknown = sorted(set(row) - keys)
    if unknown:
        raise InputError(
            f"{where}: unknown key {unknown[0]!r}; the keys are {', '.join(sorted(keys))}"
        )


def _number(row: dict[str, Any], key: str, where: str, *, required: bool = False) -> float | None:
    """A JSON number (not a string, not true or false), or None when absent and optional."""
    value = row.get(key)
    if value is None:
        if required:
            raise InputError(f"{where}.{key} is missing")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(f"{where}.{key} must be a number, not {json.dumps(value)[:40]}")
    return float(value)


def _text(row: dict[str, Any], key: str, where: str, *, required: bool = False) -> str | None:
    value = row.get(key)
    if value is None:
        if required:
            raise InputError(f"{where}.{key} is missing")
        return None
    if not isinstance(value, str):
        raise InputError(f"{where}.{key} must be a string")
    return value


def history_table(
    patient: PatientRecord,
    sessions: list[SessionRecord],
    console: Console,
    scores: Sequence[ScoreRecord] = (),
) -> None:
    """Print a patient and their sessions, then each questionnaire's trend as a sparkline.

    Args:
        patient: The patient.
        sessions: The sessions.
        console: Where to print.
        scores: Their questionnaire scores.
    """
    from rich.table import Table
    from rich.text import Text

    from ketadose.render.wrap import Prose, fit

    console.print(
        Text(
            f"Patient {patient.id}: {patient.protocol}, baseline "
            f"{format_number(patient.baseline)}, weight {format_number(patient.weight_kg, 0.1)} kg"
        )
    )
    table = Table(title="Sessions", title_justify="left")
    for header in ("Date", "Dose mg", "mg/kg", "Score", "Improvement", "BP peak", "Events"):
        table.add_column(header, no_wrap=header not in ("Date", "Events"))
    for row in history_rows(patient, sessions):
        table.add_row(
            Prose(_local(row["date"])),
            format_number(row["total_dose_mg"], 0.01),
            "-" if row["dose_mg_per_kg"] is None else format_number(row["dose_mg_per_kg"], 0.001),
            "-" if row["score"] is None else format_number(row["score"]),
            "-"
            if row["improvement_pct"] is None
            else f"{format_number(row['improvement_pct'], 0.1)}%",
            row["bp_peak"] or "-",
            Prose(", ".join(row["adverse_events"]) or "-"),
        )
    console.print(fit(table, console))
    for line in sparklines(sorted(scores, key=lambda score: instant(score.at))):
        console.print(Text(line))


def _local(text: str) -> str:
    """``2026-11-30 09:00 CET`` from a stored ISO time."""
    value = datetime.fromisoformat(text)
    return f"{value:%Y-%m-%d %H:%M} {label(value)}"


def next_table(result: NextSession, console: Console) -> None:
    """Print the next-session recommendation with its reasons, dose and findings.

    Args:
        result: The decision.
        console: Where to print.
    """
    from rich.text import Text

    from ketadose.render import table
    from ketadose.render.wrap import Prose

    console.print(Text(f"Next for {result.patient_id}: {result.decision.upper()}", style="bold"))
    for reason in result.reasons:
        console.print(Prose(f"  - {reason}", indent=4))
    earliest = result.earliest_date
    console.print(Text(f"Earliest: {earliest:%a %Y-%m-%d %H:%M} {label(earliest)}"))
    if result.session is None:
        for finding in result.findings:
            if finding.severity.value != "info":
                console.print(
                    Prose(f"{finding.severity.value.upper()}: {finding.message}", indent=2)
                )
        return
    table.checked_session(result.session, console, findings_first=False)


def audit_json(entries: list[AuditEntry], head: tuple[int, str] | None = None) -> str:
    """The ``audit --json`` document.

    Args:
        entries: Audit entries, oldest first.
        head: The whole log's chain head (last entry id and hash), None for an empty log.

    Returns:
        JSON text.
    """
    return "".join(audit_json_chunks(entries, head))


def audit_json_chunks(
    entries: Iterable[AuditEntry], head: tuple[int, str] | None = None
) -> Iterator[str]:
    """The ``audit --json`` document in pieces, one entry at a time (flat memory).

    The same bytes as ``json.dumps`` of the whole document with ``indent=2``: each entry is
    dumped alone and indented to its place.

    Args:
        entries: Audit entries, oldest first (an iterator is taken as it comes).
        head: The whole log's chain head (last entry id and hash), None for an empty log.

    Yields:
        Pieces of the JSON text.
    """
    yield f'{{\n  "schema_version": {json.dumps(SCHEMA_VERSION)},\n  "entries": ['
    first = True
    for entry in entries:
        row = asdict(entry)
        row["at"] = entry.at.isoformat()
        row["inputs"] = json.loads(row.pop("inputs_json"))
        row["findings"] = json.loads(row.pop("findings_json"))
        text = json.dumps(row, indent=2, ensure_ascii=False, allow_nan=False)
        yield ("\n" if first else ",\n") + _indented(text, "    ")
        first = False
    chain_head = None if head is None else {"id": head[0], "hash": head[1]}
    tail = json.dumps(chain_head, indent=2).replace("\n", "\n  ")
    yield ("]" if first else "\n  ]") + f',\n  "chain_head": {tail}\n}}\n'


#: The audit CSV's columns that are not an entry's own attributes.
_AUDIT_DERIVED = ("inputs", "findings")

#: ``audit --format csv``: one row per entry; inputs as JSON text, findings by their codes.
AUDIT_COLUMNS = (
    "id",
    "at",
    "user",
    "command",
    "patient_id",
    "status",
    "override_reason",
    "library_sha256",
    "inputs",
    "findings",
    "claimed",
    "hash",
)


def audit_csv(entries: list[AuditEntry], head: tuple[int, str] | None = None) -> str:
    """The ``audit --format csv`` table.

    Args:
        entries: Audit entries, oldest first.
        head: Not written: a CSV holds rows only, and each row carries its own hash.

    Returns:
        CSV text.
    """
    return "".join(audit_csv_chunks(entries))


def audit_csv_chunks(entries: Iterable[AuditEntry]) -> Iterator[str]:
    """The ``audit --format csv`` table in pieces: the header, then one line per entry.

    Args:
        entries: Audit entries, oldest first (an iterator is taken as it comes).

    Yields:
        Pieces of the CSV text.
    """
    from ketadose.render import csv

    yield csv.write(AUDIT_COLUMNS, ())
    for entry in entries:
        yield csv.write(
            AUDIT_COLUMNS,
            (
                {
                    **{k: getattr(entry, k) for k in AUDIT_COLUMNS if k not in _AUDIT_DERIVED},
                    "at": entry.at.isoformat(),
                    "inputs": entry.inputs_json,
                    "findings": ";".join(f["code"] for f in json.loads(entry.findings_json)),
                },
            ),
            header=False,
        )


def audit_table(
    entries: list[AuditEntry], console: Console, head: tuple[int, str] | None = None
) -> None:
    """Print the audit log, then its chain head.

    Args:
        entries: Audit entries, oldest first.
        console: Where to print.
        head: The whole log's last entry id and hash (:meth:`ketadose.store.Store.chain_head`):
            a printed log, or a sheet, is matched to the store by it later.
    """
    from rich.table import Table

    from ketadose.render.wrap import Prose, fit

    table = Table(title="Audit log", title_justify="left")
    for header in ("#", "When", "Who", "Command", "Patient", "Status", "Override reason"):
        table.add_column(header, no_wrap=header in ("#", "Status"))
    for entry in entries:
        who = entry.user if entry.claimed is None else f"{entry.user} (as {entry.claimed})"
        cells = (
            f"{entry.at.isoformat(sep=' ')} {label(entry.at)}",
            who,
            entry.command,
            entry.patient_id or "-",
        )
        table.add_row(
            str(entry.id),
            *map(Prose, cells),
            entry.status,
            Prose(entry.override_reason or "-"),
        )
    console.print(fit(table, console))
    if head is not None:
        # The hash on a line of its own: 64 characters fit any terminal, never split.
        console.print(f"Chain head (the log's last entry, {head[0]}):\n{head[1]}", soft_wrap=True)


class ScheduledReading(BaseModel):
    """One reading the protocol's monitoring schedule asks for, and whether one was taken."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    label: str
    at: AwareDatetime
    taken_at: AwareDatetime | None


class SessionReport(BaseModel):
    """The ``session show --json`` document (plus ``schema_version``)."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    patient_id: str
    session: int | None
    protocol: str
    date: AwareDatetime
    weight_policy: str | None
    dosing_weight_kg: Real | None
    planned_dose_mg: Real | None
    planned_dose_mg_per_kg: Real | None
    given_dose_mg: Real
    given_dose_mg_per_kg: Real | None
    duration_min: Real | None
    stopped_at: AwareDatetime | None
    stop_reason: str | None
    adverse_events: tuple[str, ...]
    readings: tuple[HistoryReading, ...]
    monitoring: str | None
    sedation_scale: str | None
    schedule: tuple[ScheduledReading, ...]
    missing: int
    tolerability: str
    tolerability_reason: str
    discharged_at: AwareDatetime | None
    discharge_ready: bool
    discharge_reasons: tuple[str, ...]
    discharge_criteria: tuple[str, ...]


def session_report(
    protocol: Protocol, limits: LimitLibrary, session: SessionRecord, at: datetime
) -> SessionReport:
    """What ``session show`` reports about one session, as of ``at``.

    Args:
        protocol: The patient's protocol (its monitoring schedule and discharge criteria).
        limits: The limit library (readiness: the pre-session limits).
        session: The session.
        at: As of when (discharge readiness).

    Returns:
        The report.
    """
    from ketadose.monitoring import missing, monitoring_text, readiness, schedule, tolerability

    dues = schedule(protocol, session)
    judged = tolerability(protocol, limits, session)
    ready = readiness(protocol, limits, session, session.discharged_at or at, confirmed=True)
    row = history_rows(PatientRecord("-", protocol.id, 0.0, 1.0), [session])[0]
    monitoring = protocol.monitoring
    return SessionReport(
        patient_id=session.patient_id,
        session=session.id,
        protocol=protocol.id,
        date=session.at,
        weight_policy=session.weight_policy,
        dosing_weight_kg=session.dosing_weight_kg,
        planned_dose_mg=session.planned_dose_mg,
        planned_dose_mg_per_kg=session.planned_dose_mg_per_kg,
        given_dose_mg=session.dose_mg,
        given_dose_mg_per_kg=session.dose_mg_per_kg,
        duration_min=session.duration_min,
        stopped_at=session.stopped_at,
        stop_reason=session.stop_reason,
        adverse_events=tuple(str(event) for event in session.adverse_events),
        readings=tuple(HistoryReading(**reading) for reading in row["readings"]),
        monitoring=None if monitoring is None else monitoring_text(monitoring),
        sedation_scale=None if monitoring is None else monitoring.sedation_scale,
        schedule=tuple(
            ScheduledReading(
                label=due.label,
                at=due.at,
                taken_at=None if due.reading is None else due.reading.at,
            )
            for due in dues
        ),
        missing=len(missing(dues)),
        tolerability=judged.kind,
        tolerability_reason=judged.reason,
        discharged_at=session.discharged_at,
        discharge_ready=ready.ready,
        # Readiness here assumes the criteria are confirmed: `session discharge --confirm`
        # is where a clinician confirms them.
        discharge_reasons=ready.reasons,
        discharge_criteria=ready.criteria,
    )


def session_report_json(report: SessionReport) -> str:
    """The ``session show --json`` document."""
    from ketadose.render.json import document

    return document(report)


def session_report_table(report: SessionReport, console: Console) -> None:
    """Print a session report: dose and basis, the timeline, the schedule, readiness."""
    from rich.table import Table
    from rich.text import Text

    def mg(value: float | None, per_kg: float | None) -> str:
        if value is None:
            return "-"
        shown = f"{format_number(value, 0.01)} mg"
        return shown if per_kg is None else f"{shown} ({format_number(per_kg, 0.001)} mg/kg)"

    basis = (
        "-"
        if report.dosing_weight_kg is None
        else f"{format_number(report.dosing_weight_kg, 0.1)} kg"
        + ("" if report.weight_policy is None else f" ({report.weight_policy} weight)")
    )
    console.print(
        Text(
            f"Session {report.session} of {report.patient_id} ({report.protocol}), "
            f"{report.date:%Y-%m-%d %H:%M} {label(report.date)}",
            style="bold",
        )
    )
    console.print(Text(f"Planned: {mg(report.planned_dose_mg, report.planned_dose_mg_per_kg)}"))
    console.print(Text(f"Given: {mg(report.given_dose_mg, report.given_dose_mg_per_kg)}"))
    console.print(Text(f"Dosing weight: {basis}"))
    if report.stopped_at is not None:
        why = "" if report.stop_reason is None else f": {report.stop_reason}"
        console.print(Text(f"Stopped early at {report.stopped_at:%H:%M}{why}"))
    console.print(Text(f"Adverse events: {', '.join(report.adverse_events) or 'none recorded'}"))
    if report.monitoring is not None:
        console.print(Text(f"Monitoring: {report.monitoring}"))
    readings = Table(title="Readings", title_justify="left")
    for header in ("Time", "BP", "HR", "SpO2", report.sedation_scale or "Sedation", "Answer"):
        readings.add_column(header, no_wrap=True)
    for reading in report.readings:
        readings.add_row(
            f"{reading.at:%H:%M}",
            reading.bp or "-",
            "-" if reading.heart_rate is None else format_number(reading.heart_rate),
            "-" if reading.spo2 is None else f"{format_number(reading.spo2)}%",
            "-" if reading.sedation is None else str(reading.sedation),
            reading.answer.upper(),
        )
    console.print(readings)
    if report.schedule:
        due = Table(title=f"Schedule ({report.missing} missing)", title_justify="left")
        for header in ("Reading", "Due", "Taken"):
            due.add_column(header, no_wrap=True)
        for slot in report.schedule:
            due.add_row(
                slot.label,
                f"{slot.at:%H:%M}",
                "MISSING" if slot.taken_at is None else f"{slot.taken_at:%H:%M}",
            )
        console.print(due)
    console.print(Text(f"Tolerability: {report.tolerability} ({report.tolerability_reason})"))
    if report.discharged_at is not None:
        console.print(Text(f"Discharged at {report.discharged_at:%Y-%m-%d %H:%M}"))
    elif report.discharge_ready:
        console.print(Text("Ready for discharge once the criteria are confirmed:"))
    else:
        console.print(Text("Not ready for discharge: " + "; ".join(report.discharge_reasons)))
    for criterion in report.discharge_criteria:
        console.print(Text(f"  - {criterion}"))


def history_html(
    patient: PatientRecord, sessions: list[SessionRecord], scores: Sequence[ScoreRecord] = ()
) -> str:
    """``history --format html``: the sessions and a chart of each questionnaire's trend.

    One self-contained page (inline SVG, no script, no external resource) for the chart.

    Args:
        patient: The patient.
        sessions: The sessions.
        scores: Their questionnaire scores.

    Returns:
        HTML text.
    """
    from html import escape

    from ketadose.render.scores import trend_chart

    def cell(value: object) -> str:
        if value is None:
            return "&ndash;"
        if isinstance(value, float):
            return escape(format_number(value, 0.01))
        return escape(str(value))

    ordered = sorted(scores, key=lambda score: instant(score.at))
    rows = "".join(
        "<tr>"
        + "".join(
            f"<td>{cell(r[key])}</td>"
            for key in ("date", "total_dose_mg", "dose_mg_per_kg", "score", "bp_peak")
        )
        + f"<td>{escape(', '.join(r['adverse_events'])) or '&ndash;'}</td></tr>"
        for r in history_rows(patient, sessions)
    )
    charts = "".join(
        f"<section><h2>{escape(i.label)}</h2>{trend_chart(i, ordered)}</section>"
        for i in _instruments(ordered)
    )
    title = f"History of {escape(patient.id)} ({escape(patient.protocol)})"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{title}</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #999;padding:2px 6px;text-align:right}</style></head><body>"
        f"<h1>{title}</h1><p>Baseline {escape(format_number(patient.baseline))}, weight "
        f"{escape(format_number(patient.weight_kg, 0.1))} kg</p>"
        "<table><tr><th>Date</th><th>Dose mg</th><th>mg/kg</th><th>Score</th><th>BP peak</th>"
        f"<th>Adverse events</th></tr>{rows}</table>{charts}</body></html>\n"
    )
