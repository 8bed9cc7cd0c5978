"""Rows in and out of the record store: what is checked before a write and after a read.

Every value written is checked first (a finite number, a time the store can read back, JSON
that parses); every row read is checked as the writer checked it and against its own hash
(:func:`_sealed`), so nothing edited outside ketadose reaches a dose decision. The column lists
here are the order the store's queries select in.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from ketadose.clock import aware
from ketadose.errors import (
    InputError,
    StoreError,
)
from ketadose.events import TERMS, AdverseEvent
from ketadose.inputs import DATE_RANGE
from ketadose.records import (
    AuditEntry,
    BloodPressure,
    PatientRecord,
    Reading,
    SessionRecord,
)
from ketadose.scores import ScoreRecord
from ketadose.store_chain import link as chain_link
from ketadose.store_schema import _content

#: The statuses an audit entry may have (a checked result's ``status``).
AUDIT_STATUSES = ("ok", "soft", "hard")

_SESSION_COLUMNS = (
    "id, patient_id, at, protocol, dose_mg, dose_mg_per_kg, duration_min, phases_json, "
    "bp_before_systolic, bp_before_diastolic, bp_peak_systolic, bp_peak_diastolic, "
    "bp_after_systolic, bp_after_diastolic, heart_rate, spo2, score, notes, "
    "weight_policy, dosing_weight_kg, planned_dose_mg, planned_dose_mg_per_kg, stopped_at, "
    "stop_reason, discharged_at, reported, cosign, prev_hash, hash"
)
_SESSION_NAMES = tuple(_SESSION_COLUMNS.split(", "))
_READING_COLUMNS = (
    "session_id, at, systolic, diastolic, heart_rate, spo2, sedation, answer, findings_json"
)
_POLICIES = (None, "actual", "ideal", "adjusted", "lean")
_SCORE_COLUMNS = (
    "id, patient_id, at, instrument, items_json, total, acknowledged_by, acknowledged_at, "
    "acknowledgement, prev_hash, hash"
)
_SCORE_NAMES = tuple(_SCORE_COLUMNS.split(", "))
#: What is read of a reading (its id, its columns, its links) and of a patient and a weight.
_READING_NAMES = ("id", *_READING_COLUMNS.split(", "), "prev_hash", "hash")
_PATIENT_NAMES = ("id", "protocol", "baseline", "sex", "created_at", "prev_hash", "hash")
_MEASUREMENT_NAMES = ("id", "patient_id", "at", "weight_kg", "height_cm", "prev_hash", "hash")
_AUDIT_COLUMNS = (
    'id, at, "user", command, patient_id, inputs_json, findings_json, status, override_reason, '
    "library_sha256, claimed, prev_hash, hash"
)
_AUDIT_NAMES = tuple(name.strip('"') for name in _AUDIT_COLUMNS.split(", "))
_SIGNATURE_COLUMNS = "id, audit_id, session_id, signer, role, meaning, at, prev_hash, hash"
# Time order that is right for offset-aware times too (julianday converts to UTC); the text and
# the row id break ties.
_BY_TIME = "julianday(at), at, id"


def _finite(name: str, value: float | None) -> None:
    """Refuse NaN and infinities: SQLite would store NaN as NULL, losing it silently."""
    if value is not None and not math.isfinite(value):
        raise InputError(f"{name} must be a finite number, not {value}")


def _in_range(name: str, at: datetime) -> None:
    """Refuse a time the store would refuse to read back (see :class:`_Row`)."""
    first, last = DATE_RANGE
    if not first <= at.date() <= last:
        raise InputError(
            f"{name} {at.isoformat()} is outside {first.isoformat()} to {last.isoformat()}"
        )


def _json(name: str, text: str) -> None:
    try:
        json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        raise InputError(f"{name} is not valid JSON") from None


def _check_session(session: SessionRecord) -> None:
    if session.id is not None:
        raise InputError(f"the session is stored already (id {session.id})")
    _in_range("at", session.at)
    for name in ("dose_mg", "dose_mg_per_kg", "duration_min", "heart_rate", "spo2", "score"):
        _finite(name, getattr(session, name))
    for name in ("bp_before", "bp_peak", "bp_after"):
        reading: BloodPressure | None = getattr(session, name)
        if reading is not None:
            _finite(f"{name}.systolic", reading.systolic)
            _finite(f"{name}.diastolic", reading.diastolic)
    _json("phases_json", session.phases_json)
    for when in (session.stopped_at, session.discharged_at):
        if when is not None:
            _in_range("at", when)
    for name in ("dosing_weight_kg", "planned_dose_mg", "planned_dose_mg_per_kg"):
        _finite(name, getattr(session, name))
    for timed in session.readings:
        _check_reading(timed)
    for event in session.adverse_events:
        # Only the migration to version 3 keeps an event ungraded; a new one is always read by
        # the one event reader (ketadose.events.parse), so it is in the vocabulary and graded.
        if event.term not in TERMS or event.grade is None:
            raise InputError(
                f"adverse event {str(event)!r} is not a graded event of the vocabulary"
            )


def _check_reading(reading: Reading) -> None:
    _in_range("the reading's time", reading.at)
    for name in ("systolic", "diastolic", "heart_rate", "spo2"):
        _finite(name, getattr(reading, name))


def _whole_number(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_score(score: ScoreRecord) -> None:
    if score.id is not None:
        raise InputError(f"the score is stored already (id {score.id})")
    _in_range("at", score.at)
    if not score.instrument:
        raise InputError("a score needs its instrument")
    if not _whole_number(score.total):
        raise InputError(f"total must be a whole number of at least 0, not {score.total!r}")
    if score.items is not None:
        if not score.items or not all(_whole_number(item) for item in score.items):
            raise InputError("items must be whole numbers of at least 0")
        if sum(score.items) != score.total:
            raise InputError(f"total {score.total} is not the sum of the items")
    parts = (score.acknowledged_by, score.acknowledged_at, score.acknowledgement)
    if any(part is None for part in parts) and any(part is not None for part in parts):
        raise InputError("an acknowledgement needs who, when and what they wrote")
    if score.acknowledged_at is not None:
        _in_range("acknowledged_at", score.acknowledged_at)


def _check_audit(entry: AuditEntry) -> None:
    if entry.id is not None:
        raise InputError(f"the audit entry is stored already (id {entry.id})")
    _in_range("at", entry.at)
    if entry.status not in AUDIT_STATUSES:
        raise InputError(f"status must be one of {', '.join(AUDIT_STATUSES)}, not {entry.status!r}")
    _json("inputs_json", entry.inputs_json)
    _json("findings_json", entry.findings_json)


def _bp(reading: BloodPressure | None) -> tuple[float | None, float | None]:
    return (None, None) if reading is None else (reading.systolic, reading.diastolic)


class _Row:
    """Reads one stored row back, checking each value as the writer did (exit 6 if not).

    The store is a file anyone who holds it can edit with ``sqlite3``: a value of the wrong
    type, a number that is NaN, infinite or out of range, a malformed date, a word outside its
    set or JSON that does not parse is refused as a :class:`StoreError` naming the table, the
    row and the column, never passed on for a later step to trip over.
    """

    def __init__(
        self,
        path: Path | str,
        table: str,
        key: object,
        naive_zone: tzinfo | None = None,
        zone: tzinfo | None = None,
    ) -> None:
        self._where = f"store {path}: {table} row {key!r}"
        self._naive_zone = naive_zone
        self._zone = zone

    def error(self, column: str, problem: str) -> StoreError:
        """The error for a value that is not what ketadose wrote."""
        return StoreError(
            f"{self._where}: {column} {problem}; the row was changed outside ketadose"
        )

    def text(self, column: str, value: object) -> str:
        """A non-empty text."""
        if not isinstance(value, str) or not value:
            raise self.error(column, f"is {_shown(value)}, not a non-empty text")
        return value

    def optional_text(self, column: str, value: object) -> str | None:
        """A text, or NULL."""
        if value is not None and not isinstance(value, str):
            raise self.error(column, f"is {_shown(value)}, not a text")
        return value

    def choice(self, column: str, value: object, choices: Sequence[str | int | None]) -> Any:
        """One of ``choices``."""
        if value not in choices:
            shown = ", ".join("NULL" if c is None else str(c) for c in choices)
            raise self.error(column, f"is {_shown(value)}, not one of {shown}")
        return value

    def number(self, column: str, value: object, *, low: float = -math.inf) -> float:
        """A finite number, at least ``low`` (SQLite may hold text or a blob in any column)."""
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or value < low
        ):
            bound = "" if low == -math.inf else f" of at least {low:g}"
            raise self.error(column, f"is {_shown(value)}, not a finite number{bound}")
        return float(value)

    def optional_number(
        self, column: str, value: object, *, low: float = -math.inf
    ) -> float | None:
        """A number as :meth:`number`, or NULL."""
        return None if value is None else self.number(column, value, low=low)

    def positive(self, column: str, value: object) -> float:
        """A finite number above 0."""
        number = self.number(column, value)
        if number <= 0:
            raise self.error(column, f"is {_shown(value)}, not a number above 0")
        return number

    def integer(self, column: str, value: object) -> int:
        """A row id."""
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(column, f"is {_shown(value)}, not an integer")
        return value

    def moment(self, column: str, value: object) -> datetime:
        """An ISO 8601 date and time inside :data:`ketadose.inputs.DATE_RANGE`."""
        try:
            at = datetime.fromisoformat(value) if isinstance(value, str) else None
        except ValueError:
            at = None
        if at is None:
            raise self.error(column, f"is {_shown(value)}, not an ISO 8601 date and time")
        first, last = DATE_RANGE
        if not first <= at.date() <= last:
            raise self.error(
                column, f"is {_shown(value)}, outside {first.isoformat()} to {last.isoformat()}"
            )
        if at.tzinfo is None:
            # Only an audit entry from before schema 2 has no offset: it is read in the zone
            # the migration to version 2 recorded.
            if self._naive_zone is None:
                raise self.error(column, f"is {_shown(value)}, a time without a UTC offset")
            at = at.replace(tzinfo=self._naive_zone)
        return at if self._zone is None else at.astimezone(self._zone)

    def json(self, column: str, value: object) -> str:
        """Strict JSON text (no NaN or Infinity, which no JSON reader need accept)."""
        try:
            if not isinstance(value, str):
                raise ValueError
            json.loads(value, parse_constant=_no_constant)
        except (ValueError, RecursionError):
            raise self.error(column, "is not valid JSON") from None
        return value

    def event(self, term: object, grade: object) -> AdverseEvent:
        """An adverse event: a term and a grade (NULL only for one kept from before v3)."""
        from ketadose.events import Grade

        grades = {g.word: g for g in Grade}
        return AdverseEvent(
            self.text("event", term),
            None if grade is None else grades[self.choice("grade", grade, tuple(grades))],
        )

    def pressure(self, column: str, systolic: object, diastolic: object) -> BloodPressure | None:
        """A blood pressure stored in two columns, both NULL or both numbers."""
        if systolic is None and diastolic is None:
            return None
        return BloodPressure(
            systolic=self.number(f"{column}_systolic", systolic),
            diastolic=self.number(f"{column}_diastolic", diastolic),
        )


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _shown(value: object) -> str:
    """A stored value in a message: NULL, or its repr cut to 40 characters."""
    if value is None:
        return "NULL"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _patient_from_rows(
    path: Path | str,
    row: Sequence[Any],
    weight: Sequence[Any] | None,
    height: Sequence[Any] | None,
    naive_zone: tzinfo | None,
    zone: tzinfo | None,
) -> PatientRecord:
    check = _Row(path, "patients", row[0], naive_zone, zone)
    if weight is None:
        raise check.error("weight", "is missing: the patient has no measurements row")
    measured = _Row(path, "measurements of patient", row[0])
    record = PatientRecord(
        id=check.text("id", row[0]),
        protocol=check.text("protocol", row[1]),
        baseline=check.number("baseline", row[2]),
        weight_kg=measured.positive("weight_kg", weight[3]),
        height_cm=None if height is None else measured.positive("height_cm", height[4]),
        sex=check.choice("sex", row[3], (None, "male", "female")),
        created_at=check.moment("created_at", row[4]),
    )
    _sealed(check, "patients", dict(zip(_PATIENT_NAMES, row, strict=True)))
    for found in (weight, height):
        if found is not None:
            sealed = _Row(path, "measurements", found[0])
            _sealed(sealed, "measurements", dict(zip(_MEASUREMENT_NAMES, found, strict=True)))
    return record


def _session_from_row(
    path: Path | str,
    row: Sequence[Any],
    adverse_events: list[tuple[object, object]],
    readings: list[Sequence[Any]],
    naive_zone: tzinfo | None,
    zone: tzinfo | None,
) -> SessionRecord:
    check = _Row(path, "sessions", row[0], naive_zone, zone)
    events = _Row(path, "session_adverse_events of session", row[0])
    record = SessionRecord(
        id=check.integer("id", row[0]),
        patient_id=check.text("patient_id", row[1]),
        at=check.moment("at", row[2]),
        protocol=check.text("protocol", row[3]),
        dose_mg=check.number("dose_mg", row[4], low=0),
        dose_mg_per_kg=check.optional_number("dose_mg_per_kg", row[5], low=0),
        duration_min=check.optional_number("duration_min", row[6], low=0),
        phases_json=check.json("phases_json", row[7]),
        bp_before=check.pressure("bp_before", row[8], row[9]),
        bp_peak=check.pressure("bp_peak", row[10], row[11]),
        bp_after=check.pressure("bp_after", row[12], row[13]),
        heart_rate=check.optional_number("heart_rate", row[14]),
        spo2=check.optional_number("spo2", row[15]),
        score=check.optional_number("score", row[16]),
        adverse_events=tuple(events.event(term, grade) for term, grade in adverse_events),
        notes=check.optional_text("notes", row[17]),
        weight_policy=check.choice("weight_policy", row[18], _POLICIES),
        dosing_weight_kg=None if row[19] is None else check.positive("dosing_weight_kg", row[19]),
        planned_dose_mg=check.optional_number("planned_dose_mg", row[20], low=0),
        planned_dose_mg_per_kg=check.optional_number("planned_dose_mg_per_kg", row[21], low=0),
        stopped_at=None if row[22] is None else check.moment("stopped_at", row[22]),
        stop_reason=check.optional_text("stop_reason", row[23]),
        readings=tuple(_reading_from_row(path, reading, zone) for reading in readings),
        discharged_at=None if row[24] is None else check.moment("discharged_at", row[24]),
        reported=row[25] is not None and check.integer("reported", row[25]) == 1,
        cosign=row[26] is not None and check.integer("cosign", row[26]) == 1,
    )
    # Every value is what ketadose would write; the hash proves it is what ketadose wrote.
    values = dict(zip(_SESSION_NAMES, row, strict=True))
    _sealed(check, "sessions", values, [list(event) for event in adverse_events])
    return record


def _sealed(
    check: _Row,
    table: str,
    values: dict[str, Any],
    events: list[list[Any]] | None = None,
) -> str:
    """A row's own hash, checked against its content (its place is ``store check``'s job).

    Reading a row proves it unedited, at the cost of one SHA-256: a dose is never decided
    from a session changed outside ketadose, even one changed to values it could have written.

    Raises:
        StoreError: The row has no hash, or its content does not match it.
    """
    stored, previous = values["hash"], values["prev_hash"]
    if not isinstance(stored, str) or not isinstance(previous, str):
        raise check.error("hash", "is missing")
    if chain_link(previous, _content(table, values, None, events)) != stored:
        raise check.error("hash", "does not match the row's content")
    return stored


def _reading_from_row(path: Path | str, row: Sequence[Any], zone: tzinfo | None) -> Reading:
    check = _Row(path, "session_readings", row[0], None, zone)
    sedation = row[7]
    if sedation is not None and (
        isinstance(sedation, bool) or not isinstance(sedation, int) or not 0 <= sedation <= 5
    ):
        raise check.error("sedation", f"is {_shown(sedation)}, not a score from 0 to 5")
    findings = json.loads(check.json("findings_json", row[9]))
    if not isinstance(findings, list) or not all(isinstance(f, str) for f in findings):
        raise check.error("findings_json", "is not a list of finding codes")
    _sealed(check, "session_readings", dict(zip(_READING_NAMES, row, strict=True)))
    return Reading(
        at=check.moment("at", row[2]),
        systolic=check.optional_number("systolic", row[3]),
        diastolic=check.optional_number("diastolic", row[4]),
        heart_rate=check.optional_number("heart_rate", row[5]),
        spo2=check.optional_number("spo2", row[6]),
        sedation=sedation,
        answer=check.choice("answer", row[8], ("continue", "pause", "stop")),
        findings=tuple(findings),
    )


def _score_from_row(
    path: Path | str, row: Sequence[Any], naive_zone: tzinfo | None, zone: tzinfo | None
) -> ScoreRecord:
    check = _Row(path, "scores", row[0], naive_zone, zone)
    total = check.integer("total", row[5])
    if total < 0:
        raise check.error("total", f"is {_shown(row[5])}, not a whole number of at least 0")
    items: tuple[int, ...] | None = None
    if row[4] is not None:
        parsed = json.loads(check.json("items_json", row[4]))
        if (
            not isinstance(parsed, list)
            or not parsed
            or not all(_whole_number(item) for item in parsed)
        ):
            raise check.error("items_json", "is not a list of whole numbers of at least 0")
        items = tuple(parsed)
        if sum(items) != total:
            raise check.error("total", f"is {total}, not the sum of the items ({sum(items)})")
    by = check.optional_text("acknowledged_by", row[6])
    text = check.optional_text("acknowledgement", row[8])
    at = None if row[7] is None else check.moment("acknowledged_at", row[7])
    if not ((by is None) == (at is None) == (text is None)) or by == "" or text == "":
        raise check.error("acknowledgement", "is incomplete (who, when and what are needed)")
    record = ScoreRecord(
        id=check.integer("id", row[0]),
        patient_id=check.text("patient_id", row[1]),
        at=check.moment("at", row[2]),
        instrument=check.text("instrument", row[3]),
        items=items,
        total=total,
        acknowledged_by=by,
        acknowledged_at=at,
        acknowledgement=text,
    )
    _sealed(check, "scores", dict(zip(_SCORE_NAMES, row, strict=True)))
    return record


def _audit_from_row(
    path: Path | str, row: Sequence[Any], naive_zone: tzinfo | None, zone: tzinfo | None
) -> AuditEntry:
    check = _Row(path, "audit", row[0], naive_zone, zone)
    return AuditEntry(
        id=check.integer("id", row[0]),
        at=check.moment("at", row[1]),
        user=check.text("user", row[2]),
        command=check.text("command", row[3]),
        patient_id=check.optional_text("patient_id", row[4]),
        inputs_json=check.json("inputs_json", row[5]),
        findings_json=check.json("findings_json", row[6]),
        status=check.choice("status", row[7], AUDIT_STATUSES),
        override_reason=check.optional_text("override_reason", row[8]),
        library_sha256=check.text("library_sha256", row[9]),
        claimed=check.optional_text("claimed", row[10]),
        hash=_sealed(check, "audit", dict(zip(_AUDIT_NAMES, row, strict=True))),
    )


def _stamp(at: datetime, what: str) -> str:
    """A time as stored: ISO 8601 with its UTC offset (a naive time is refused)."""
    return aware(at, what).isoformat()


def _zone_from_text(text: str) -> tzinfo:
    """The zone ``store_meta`` names: an IANA name, or a fixed ``UTC+01:00``."""
    from datetime import timedelta, timezone
    from zoneinfo import ZoneInfo

    match = re.fullmatch(r"UTC([+-])(\d\d):(\d\d)", text)
    if match is None:
        try:
            return ZoneInfo(text)
        except (ValueError, OSError):
            raise StoreError(f"the store names an unknown time zone: {text!r}") from None
    sign = 1 if match[1] == "+" else -1
    return timezone(sign * timedelta(hours=int(match[2]), minutes=int(match[3])))
