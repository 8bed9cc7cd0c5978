"""Output for the record store: history (table, JSON, CSV), the next session, the audit log."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict

from ketadose.clock import instant, label
from ketadose.errors import InputError
from ketadose.models import SCHEMA_VERSION, Real, significant
from ketadose.records import (
    AuditEntry,
    BloodPressure,
    PatientRecord,
    SessionRecord,
    improvement_pct,
)
from ketadose.units import format_number

if TYPE_CHECKING:
    from rich.console import Console

    from ketadose.escalation import NextSession

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
    return [
        {
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
            "adverse_events": list(s.adverse_events),
            "notes": s.notes,
        }
        for s in sorted(sessions, key=lambda s: instant(s.at))
    ]


class HistorySession(BaseModel):
    """One session of the ``history`` document, with its improvement from baseline."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    date: AwareDatetime
    total_dose_mg: Real
    dose_mg_per_kg: Real | None
    duration_min: Real | None
    score: Real | None
    improvement_pct: Real | None
    bp_before: str | None
    bp_peak: str | None
    bp_after: str | None
    heart_rate: Real | None
    spo2: Real | None
    adverse_events: tuple[str, ...]
    notes: str | None


class History(BaseModel):
    """The ``history --json`` document (plus ``schema_version``)."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    patient: PatientRecord
    sessions: tuple[HistorySession, ...]


def history_json(patient: PatientRecord, sessions: list[SessionRecord]) -> str:
    """The ``history --json`` document.

    Args:
        patient: The patient.
        sessions: The sessions.

    Returns:
        JSON text.
    """
    from ketadose.render.json import document

    rows = tuple(HistorySession(**row) for row in history_rows(patient, sessions))
    return document(History(patient=patient, sessions=rows))


def history_csv(patient: PatientRecord, sessions: list[SessionRecord]) -> str:
    """One CSV row per session, stable headers, RFC 4180 quoting.

    Args:
        patient: The patient.
        sessions: The sessions.

    Returns:
        CSV text.
    """
    from ketadose.render import csv

    rows = history_rows(patient, sessions)
    return csv.write(
        CSV_COLUMNS, ({**r, "adverse_events": ";".join(r["adverse_events"])} for r in rows)
    )


def read_history_file(
    path: Path, patient_id: str, zone: tzinfo
) -> tuple[PatientRecord, list[SessionRecord]]:
    """Read ``next --history FILE.json``: ``{"patient": {...}, "sessions": [...]}``.

    The patient has ``id``, ``protocol``, ``baseline``, ``weight_kg`` and optionally
    ``height_cm`` and ``sex``; each session ``date`` (ISO 8601: local time in ``zone``, or
    with a UTC offset), ``total_dose_mg`` and
    optionally ``dose_mg_per_kg``, ``score``, ``bp_peak`` ("150/95"), ``heart_rate``,
    ``spo2`` and ``adverse_events`` (a list). ``history --json`` writes this shape.

    Args:
        path: The file.
        patient_id: The id asked for; it must match the file's.
        zone: The clinic's time zone, for dates without an offset.

    Returns:
        The patient and the sessions.

    Raises:
        InputError: For an unreadable or malformed file, naming what is wrong.
    """
    from ketadose.inputs import blood_pressure, moment
    from ketadose.libfile import read_file

    try:
        data = json.loads(read_file(path).decode("utf-8-sig"), object_pairs_hook=_unique_keys)
        person = data["patient"]
        patient = PatientRecord(
            id=str(person["id"]),
            protocol=str(person["protocol"]),
            baseline=float(person["baseline"]),
            weight_kg=float(person["weight_kg"]),
            height_cm=None if person.get("height_cm") is None else float(person["height_cm"]),
            sex=person.get("sex"),
        )
        sessions = []
        for index, row in enumerate(data["sessions"]):
            peak = row.get("bp_peak")
            if not isinstance(row["date"], str):
                raise InputError(f"sessions[{index}].date must be a string")
            sessions.append(
                SessionRecord(
                    patient_id=patient.id,
                    at=moment(row["date"], field=f"sessions[{index}].date", zone=zone),
                    protocol=patient.protocol,
                    dose_mg=float(row["total_dose_mg"]),
                    dose_mg_per_kg=_optional(row.get("dose_mg_per_kg")),
                    score=_optional(row.get("score")),
                    bp_peak=None if peak is None else BloodPressure(*blood_pressure(str(peak))),
                    heart_rate=_optional(row.get("heart_rate")),
                    spo2=_optional(row.get("spo2")),
                    adverse_events=tuple(str(a) for a in row.get("adverse_events") or ()),
                )
            )
    except InputError as error:
        raise InputError(f"{path}: {error}") from None
    except RecursionError:
        raise InputError(f"{path}: not a history file (nested too deeply)") from None
    except Exception as error:  # malformed JSON, missing keys, wrong types: all the user's file
        raise InputError(f"{path}: not a history file ({type(error).__name__}: {error})") from None
    _plausible(path, patient, sessions)
    if patient.id != patient_id:
        raise InputError(f"{path} holds patient {patient.id!r}, not {patient_id!r}")
    if patient.sex not in (None, "male", "female"):
        raise InputError(f"{path}: sex must be male or female")
    return patient, sessions


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, refused if it names a key twice (json would keep the last silently)."""
    keys = [key for key, _ in pairs]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise InputError(f"the key {repeated[0]!r} is given twice")
    return dict(pairs)


def _plausible(path: Path, patient: PatientRecord, sessions: list[SessionRecord]) -> None:
    """The same ranges ``patient add`` and ``session record`` enforce."""
    import math

    from ketadose.inputs import plausible

    def bad(what: str) -> InputError:
        return InputError(f"{path}: {what}")

    if not (math.isfinite(patient.baseline) and 0 <= patient.baseline <= 1000):
        raise bad("patient.baseline must be a score from 0 to 1000")
    if not (math.isfinite(patient.weight_kg) and patient.weight_kg > 0):
        raise bad("patient.weight_kg must be a positive number")
    if patient.height_cm is not None and not (
        math.isfinite(patient.height_cm) and patient.height_cm > 0
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


def _optional(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


def history_table(patient: PatientRecord, sessions: list[SessionRecord], console: Console) -> None:
    """Print a patient and their sessions.

    Args:
        patient: The patient.
        sessions: The sessions.
        console: Where to print.
    """
    from rich.table import Table
    from rich.text import Text

    console.print(
        Text(
            f"Patient {patient.id}: {patient.protocol}, baseline "
            f"{format_number(patient.baseline)}, weight {format_number(patient.weight_kg, 0.1)} kg"
        )
    )
    table = Table(title="Sessions", title_justify="left")
    for header in ("Date", "Dose mg", "mg/kg", "Score", "Improvement", "BP peak", "Events"):
        table.add_column(header, no_wrap=header != "Events")
    for row in history_rows(patient, sessions):
        table.add_row(
            _local(row["date"]),
            format_number(row["total_dose_mg"], 0.01),
            "-" if row["dose_mg_per_kg"] is None else format_number(row["dose_mg_per_kg"], 0.001),
            "-" if row["score"] is None else format_number(row["score"]),
            "-"
            if row["improvement_pct"] is None
            else f"{format_number(row['improvement_pct'], 0.1)}%",
            row["bp_peak"] or "-",
            ", ".join(row["adverse_events"]) or "-",
        )
    console.print(table)


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

    console.print(Text(f"Next for {result.patient_id}: {result.decision.upper()}", style="bold"))
    for reason in result.reasons:
        console.print(Text(f"  - {reason}"))
    earliest = result.earliest_date
    console.print(Text(f"Earliest: {earliest:%a %Y-%m-%d %H:%M} {label(earliest)}"))
    table.checked_session(result.session, console, findings_first=False)


def audit_json(entries: list[AuditEntry]) -> str:
    """The ``audit --json`` document.

    Args:
        entries: Audit entries, oldest first.

    Returns:
        JSON text.
    """
    rows = []
    for entry in entries:
        row = asdict(entry)
        row["at"] = entry.at.isoformat()
        row["inputs"] = json.loads(row.pop("inputs_json"))
        row["findings"] = json.loads(row.pop("findings_json"))
        rows.append(row)
    body = {"schema_version": SCHEMA_VERSION, "entries": rows}
    return json.dumps(body, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def audit_table(entries: list[AuditEntry], console: Console) -> None:
    """Print the audit log.

    Args:
        entries: Audit entries, oldest first.
        console: Where to print.
    """
    from rich.table import Table

    table = Table(title="Audit log", title_justify="left")
    for header in ("#", "When", "Who", "Command", "Patient", "Status", "Override reason"):
        table.add_column(header, overflow="fold")
    for entry in entries:
        table.add_row(
            str(entry.id),
            f"{entry.at.isoformat(sep=' ')} {label(entry.at)}",
            entry.user,
            entry.command,
            entry.patient_id or "-",
            entry.status,
            entry.override_reason or "-",
        )
    console.print(table)
