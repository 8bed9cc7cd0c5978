"""Parsers for the check context typed at the command line: vitals, medications, times.

Pure functions from text to the checker's types; every refusal is an
:class:`~ketadose.errors.InputError` with a one-line message and an example.
"""

from __future__ import annotations

from datetime import date, datetime, time, tzinfo
from typing import TYPE_CHECKING

from ketadose.clock import aware, instant, localize
from ketadose.errors import InputError, InputField, Part
from ketadose.libfile import Quantity
from ketadose.models import MedicationUse, PreviousSession, Vitals
from ketadose.units import BARE_NUMBER, Kind, format_number, parse, parse_as

if TYPE_CHECKING:
    from ketadose.records import Reading

#: The first and last day a treatment date may be: every date a user gives (``--at``,
#: ``--date``, ``--previous``, ``--last-session``, ``--start``, ``--closed``, a history file's
#: sessions) and every date read back from the record store. Ketamine for depression dates from
#: 2000; a later date than 2099 is a typo. The bounds are fixed, not relative to today, so a
#: command gives the same answer on any day and nothing here reads the clock; and they keep every
#: date far from ``datetime``'s year 9999, so adding a series' weeks can never overflow.
DATE_RANGE: tuple[date, date] = (date(2000, 1, 1), date(2099, 12, 31))


def plausible(value: date, *, field: Part) -> None:
    """Refuse a date (or date and time) outside :data:`DATE_RANGE`.

    Args:
        value: The date, or a datetime (its local date counts).
        field: Name for messages.

    Raises:
        InputError: Before the first or after the last day of :data:`DATE_RANGE`.
    """
    first, last = DATE_RANGE
    day_of = value.date() if isinstance(value, datetime) else value
    if not first <= day_of <= last:
        raise InputError(
            field,
            f' "{value.isoformat()}" is not a plausible treatment date: '
            f"give a date from {first.isoformat()} to {last.isoformat()}",
        )


def implied(text: str, kind: Kind, unit: str, *, field: Part) -> float:
    """Parse a value whose option fixes the unit: ``"80"`` or ``"80bpm"`` for a heart rate.

    A bare number takes ``unit``; anything else must parse as ``kind`` by the usual rules.

    Args:
        text: As typed.
        kind: What it is.
        unit: The unit a bare number is in (e.g. ``"h"`` for hours since a dose).
        field: Name for messages.

    Returns:
        The value in ``kind.unit``.

    Raises:
        QuantityError: As :func:`ketadose.units.parse`.
    """
    stripped = text.strip(" ")
    if BARE_NUMBER.fullmatch(stripped):
        return parse_as(f"{stripped} {unit}", kind, field=field)
    return parse_as(stripped, kind, field=field)


def blood_pressure(text: str) -> tuple[float, float]:
    """Parse ``"150/95"`` (or ``"150/95 mmHg"``) into systolic and diastolic mmHg.

    Args:
        text: Systolic/diastolic.

    Returns:
        ``(systolic, diastolic)``.

    Raises:
        InputError: Without both numbers, or with the diastolic not below the systolic.
    """
    body = text.strip(" ").removesuffix("mmHg").strip(" ")
    parts = body.split("/")
    if len(parts) != 2 or not all(BARE_NUMBER.fullmatch(p.strip(" ")) for p in parts):
        raise InputError(f'blood pressure "{text}" is not systolic/diastolic, e.g. 150/95')
    systolic = implied(parts[0], Kind.PRESSURE, "mmHg", field="systolic BP")
    diastolic = implied(parts[1], Kind.PRESSURE, "mmHg", field="diastolic BP")
    if diastolic >= systolic:
        raise InputError(
            f'blood pressure "{text}": diastolic {format_number(diastolic)} is not below '
            f"systolic {format_number(systolic)}; write systolic/diastolic, e.g. 150/95"
        )
    return systolic, diastolic


def vitals(bp: str | None, hr: str | None, spo2: str | None) -> Vitals | None:
    """Build the vital signs from ``--bp``, ``--hr`` and ``--spo2`` (None when none given).

    Args:
        bp: ``"150/95"``.
        hr: Heart rate, ``"80"`` or ``"80bpm"``.
        spo2: Oxygen saturation, ``"97"`` or ``"97%"``.

    Returns:
        The vitals, or None.

    Raises:
        InputError: For a malformed value, or an SpO2 above 100%.
    """
    if bp is None and hr is None and spo2 is None:
        return None
    systolic, diastolic = (None, None) if bp is None else blood_pressure(bp)
    heart_rate = None if hr is None else implied(hr, Kind.HEART_RATE, "bpm", field="heart rate")
    saturation = None if spo2 is None else implied(spo2, Kind.SATURATION, "%", field="SpO2")
    if saturation is not None and saturation > 100:
        raise InputError(f'SpO2 "{spo2}" is above 100%')
    return Vitals(systolic=systolic, diastolic=diastolic, heart_rate=heart_rate, spo2=saturation)


def medication(
    text: str, *, at: datetime | None = None, zone: tzinfo | None = None
) -> MedicationUse:
    """Parse ``--med NAME[:TIME_SINCE_LAST_DOSE]`` or ``--med NAME@LAST_DOSE_TIME``.

    A hold is measured from the last dose, so the time given is when the last dose was: how
    long before the session (``:12``, ``:90min``, ``:2d``; a bare number is hours), or the
    moment itself (``@2026-11-26T08:00``), counted to the session time ``at``.

    Args:
        text: ``"lorazepam"``, ``"lorazepam:12"``, ``"lorazepam:90min"`` or
            ``"theophylline@2026-09-01T08:00"``.
        at: The session time, which a last-dose moment is counted to (needed with ``@``).
        zone: The clinic's time zone, for a moment without a UTC offset (needed with ``@``).

    Returns:
        The medication and the hours since its last dose (None when not given).

    Raises:
        InputError: For an empty name, a malformed time, or a last dose after the session.
    """
    example = "e.g. lorazepam:12 (12 h since the last dose) or lorazepam@2026-11-26T08:00"
    if "@" in text:
        name, _, when = text.partition("@")
        name = name.strip()
        if not name or not name.isprintable():
            raise InputError(InputField.MEDICATION, f' "{text}" needs a name, {example}')
        if at is None or zone is None:
            raise InputError(
                InputField.MEDICATION, f' "{text}": a last-dose time needs the session time'
            )
        last = moment(when, field=f"last dose of {name}", zone=zone)
        hours = (instant(aware(at, "the session time")) - instant(last)).total_seconds() / 3600
        if hours < 0:
            raise InputError(
                InputField.MEDICATION,
                f' "{text}": the last dose is after the session ({at.isoformat()})',
            )
        return MedicationUse(name=name, hours_since=hours)
    name, sep, since = text.partition(":")
    name = name.strip()
    if not name or not name.isprintable():
        raise InputError(InputField.MEDICATION, f' "{text}" needs a name, {example}')
    if not sep:
        return MedicationUse(name=name)
    if since.strip(" ") in ("0", "0h", "0 h"):  # taken just now: a real answer, not a typo
        return MedicationUse(name=name, hours_since=0.0)
    minutes = implied(since, Kind.DURATION, "h", field=f"time since the last dose of {name}")
    return MedicationUse(name=name, hours_since=minutes / 60)


def condition(text: str) -> str:
    """Check a ``--condition`` name: one printable line.

    Args:
        text: As typed.

    Returns:
        The name, stripped.

    Raises:
        InputError: For an empty or non-printable name.
    """
    name = text.strip()
    if not name or not name.isprintable():
        raise InputError(
            InputField.CONDITION, f" {text!r} must be a name on one line, e.g. pregnancy"
        )
    return name


def moment(text: str, *, field: Part, zone: tzinfo) -> datetime:
    """Parse a date and time in the clinic's zone, ``2026-11-26T09:00`` or ``2026-11-26 09:00``.

    A time with a UTC offset (``2026-11-26T09:00+01:00``) is that moment, shown in ``zone``.

    Args:
        text: ISO 8601, local time in ``zone`` unless it has an offset.
        field: Name for messages.
        zone: The clinic's time zone.

    Returns:
        An aware datetime in ``zone``.

    Raises:
        InputError: For anything else: a date outside :data:`DATE_RANGE`, or a local time
            the clocks skip or repeat on a daylight-saving change (the message asks for an
            offset).
    """
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InputError(
            field, f' "{text}" is not a date and time; write e.g. 2026-11-26T09:00'
        ) from None
    if len(text.strip()) <= 10:
        raise InputError(field, f' "{text}" needs a time of day, e.g. 2026-11-26T09:00')
    plausible(value, field=field)
    if value.tzinfo is not None:
        return value.astimezone(zone)
    return localize(value, zone, field=field)


def previous(text: str, zone: tzinfo) -> PreviousSession:
    """Parse ``--previous DATETIME=DOSE`` (a dose in mg or mg/kg) or a bare date and time.

    Args:
        text: ``"2026-11-26T09:00=40mg"`` or ``"2026-11-26T09:00=0.5mg/kg"``.
        zone: The clinic's time zone (for a time without an offset).

    Returns:
        The previous session.

    Raises:
        InputError: For a malformed time or dose.
    """
    when, sep, dose = text.partition("=")
    at = moment(when, field="previous session", zone=zone)
    if not sep:
        return PreviousSession(at=at)
    kind, value = parse(dose, Kind.DOSE, Kind.DOSE_PER_KG, field="previous dose")
    if kind is Kind.DOSE:
        return PreviousSession(at=at, dose_mg=value)
    return PreviousSession(at=at, dose_mg_per_kg=value)


def day(text: str, *, field: Part) -> date:
    """Parse a calendar day, ``2026-11-30``.

    Args:
        text: ISO 8601 date.
        field: Name for messages.

    Returns:
        The date.

    Raises:
        InputError: For anything else, or a date outside :data:`DATE_RANGE`.
    """
    try:
        value = date.fromisoformat(text.strip())
    except ValueError:
        raise InputError(field, f' "{text}" is not a date; write e.g. 2026-11-30') from None
    plausible(value, field=field)
    return value


def clock(text: str) -> time:
    """Parse a time of day, ``09:00``.

    Args:
        text: HH:MM, 24-hour.

    Returns:
        The time.

    Raises:
        InputError: For anything else.
    """
    try:
        value = time.fromisoformat(text.strip())
    except ValueError:
        raise InputError(
            InputField.TIME_OF_DAY, f' "{text}" is not a time of day; write e.g. 09:00'
        ) from None
    if value.tzinfo is not None:
        raise InputError(InputField.TIME_OF_DAY, f' "{text}": write local time without a time zone')
    return value


def closed_days(texts: list[str], country: str | None, start: date) -> frozenset[date]:
    """The days the clinic is closed: ``--closed`` dates and a country's public holidays.

    Args:
        texts: ``--closed`` dates.
        country: ISO country code for ``--holidays`` (the ``holidays`` package), or None.
        start: The plan's first day; holidays are taken for that year and the next.

    Returns:
        The closed days.

    Raises:
        InputError: For a bad date or an unknown country.
    """
    closed = {day(text, field=InputField.CLOSED) for text in texts}
    if country is not None:
        import holidays

        try:
            calendar = holidays.country_holidays(
                country.strip().upper(), years=[start.year, start.year + 1]
            )
        except NotImplementedError:
            raise InputError(
                InputField.HOLIDAYS,
                f' "{country}" is not a country the holidays package knows; '
                "use an ISO code such as US, GB or DE",
            ) from None
        closed |= set(calendar)
    return frozenset(closed)


def price(text: str) -> tuple[float, float]:
    """Parse ``--price 400-800`` (or one figure) into a low and high price per session.

    Args:
        text: LOW-HIGH or one number.

    Returns:
        ``(low, high)``.

    Raises:
        InputError: For anything else, or LOW above HIGH.
    """
    parts = [part.strip() for part in text.split("-")]
    if not 1 <= len(parts) <= 2 or not all(
        BARE_NUMBER.fullmatch(p) and not p.startswith(".") for p in parts
    ):
        raise InputError(InputField.PRICE, f' "{text}" is not LOW-HIGH, e.g. 400-800')
    low, high = float(parts[0]), float(parts[-1])
    if low > high:
        raise InputError(InputField.PRICE, f' "{text}": the low price is above the high one')
    return low, high


def chair_time(text: str, field: Part) -> float:
    """Parse ``--intake`` or ``--recovery``: a duration of at most 24 h, in minutes.

    Args:
        text: A duration, e.g. ``20min``.
        field: The option, for messages.

    Returns:
        Minutes.

    Raises:
        InputError: For a bad duration or one longer than a day.
    """
    minutes = parse_as(text, Kind.DURATION, field=field)
    if minutes > 24 * 60:
        raise InputError(field, f' "{text}" is longer than a day')
    return minutes


def patient_id(text: str) -> str:
    """A pseudonymous patient id: one printable line of at most 64 characters.

    Args:
        text: The id as given.

    Returns:
        The id without surrounding spaces.

    Raises:
        InputError: For a blank, multi-line, unprintable or long id.
    """
    if not text.strip() or not text.isprintable() or len(text) > 64:
        raise InputError("a patient id is one printable line of at most 64 characters")
    return text.strip()


def amount(text: str | None, kind: Kind, *, field: Part | None = None) -> float | None:
    """An optional quantity of one kind, in ``kind.unit`` (None when not given).

    Args:
        text: As typed, or None.
        kind: What it must be.
        field: The name shown in messages.

    Returns:
        The value, or None.

    Raises:
        QuantityError: As :func:`ketadose.units.parse`.
    """
    return None if text is None else parse_as(text, kind, field=field)


def strength(text: str | None, *, field: Part = InputField.STRENGTH) -> Quantity | None:
    """An optional dose-form strength: mg/mL for a solution or mg for a tablet.

    Args:
        text: As typed (``100mg/mL``, ``25mg``), or None.
        field: The name shown in messages.

    Returns:
        The strength with its kind; the protocol's form says which it must be.

    Raises:
        QuantityError: For anything but a concentration or a mass.
    """
    return quantity(text, Kind.CONCENTRATION, Kind.DOSE, field=field)


def quantity(text: str | None, *kinds: Kind, field: Part | None = None) -> Quantity | None:
    """An optional override that may be one of several kinds (a dose in mg/kg or mg).

    Args:
        text: As typed, or None.
        *kinds: The kinds it may be; its unit decides which.
        field: The name shown in messages.

    Returns:
        The quantity with its kind and text, or None.

    Raises:
        QuantityError: As :func:`ketadose.units.parse`.
    """
    if text is None:
        return None
    kind, value = parse(text, *kinds, field=field)
    return Quantity(kind, value, text)


def reading(
    at: str,
    bp: str | None,
    hr: str | None,
    spo2: str | None,
    sedation: int | str | None,
    *,
    zone: tzinfo,
    where: str,
) -> Reading:
    """One timed reading from its parts (``--at``, ``--bp``, ``--hr``, ``--spo2``, sedation).

    The answer is left as ``continue``: the caller checks the reading against the limits.

    Raises:
        InputError: A malformed time or value, no value at all, or a sedation score outside
            the MOAA/S (0-5).
    """
    from ketadose.records import Reading

    prefix = f"{where}: " if where else ""
    try:
        when = moment(at, field="the reading's time", zone=zone)
        measured = vitals(bp, hr, spo2)
        score = None
        if sedation is not None and str(sedation).strip():
            text = str(sedation).strip()
            if not text.isdigit() or not 0 <= int(text) <= 5:
                raise InputError(f"sedation {text!r} is not a MOAA/S score from 0 to 5")
            score = int(text)
    except InputError as error:
        raise InputError(prefix, *error.parts) from None
    if measured is None:
        raise InputError(f"{prefix}a reading needs a blood pressure, heart rate or SpO2")
    for name, value, high in (
        ("systolic BP", measured.systolic, PLAUSIBLE_READING["systolic"]),
        ("diastolic BP", measured.diastolic, PLAUSIBLE_READING["diastolic"]),
        ("heart rate", measured.heart_rate, PLAUSIBLE_READING["heart_rate"]),
    ):
        if value is not None and value > high:
            raise InputError(f"{prefix}{name} {format_number(value)} is not a plausible reading")
    return Reading(
        at=when,
        systolic=measured.systolic,
        diastolic=measured.diastolic,
        heart_rate=measured.heart_rate,
        spo2=measured.spo2,
        sedation=score,
    )


#: Above these a timed reading is a typing error, not a value to answer "stop" to (the
#: highest blood pressures and heart rates recorded in people are well below them).
PLAUSIBLE_READING = {"systolic": 350.0, "diastolic": 250.0, "heart_rate": 350.0}

#: The columns of a readings CSV (``session vitals --file``).
READING_COLUMNS = ("at", "bp", "hr", "spo2", "sedation")


def reading_rows(data: bytes, name: str, zone: tzinfo) -> list[Reading]:
    """Read a readings CSV (header ``at,bp,hr,spo2,sedation``; blank cells not measured).

    Every row is read before any is used: one bad row refuses the file, naming its line.

    Args:
        data: The file's bytes (the edge reads the file, or stdin).
        name: How messages name it: its path, or ``stdin``.
        zone: The clinic's zone, for times without a UTC offset.

    Raises:
        InputError: An unreadable file, an unknown or missing column, a bad row, or no row.
    """
    import csv
    import io

    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{name}: not UTF-8 text") from None
    rows = csv.reader(io.StringIO(text, newline=""))
    header = next(rows, None)
    if header is None:
        raise InputError(f"{name}: empty; expected a header {','.join(READING_COLUMNS)}")
    names = [name.strip().lower() for name in header]
    unknown = [name for name in names if name not in READING_COLUMNS]
    if unknown or "at" not in names or len(set(names)) != len(names):
        raise InputError(
            f"{name}: the header must name at and any of bp, hr, spo2, sedation once each"
            + (f" (unknown: {', '.join(unknown)})" if unknown else "")
        )
    found = []
    for line, row in enumerate(rows, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(names):
            raise InputError(f"{name} line {line}: {len(row)} cells, the header has {len(names)}")
        cells = {name: (cell.strip() or None) for name, cell in zip(names, row, strict=True)}
        at = cells.get("at")
        if at is None:
            raise InputError(f"{name} line {line}: no time in the at column")
        found.append(
            reading(
                at,
                cells.get("bp"),
                cells.get("hr"),
                cells.get("spo2"),
                cells.get("sedation"),
                zone=zone,
                where=f"{name} line {line}",
            )
        )
    if not found:
        raise InputError(f"{name}: no readings")
    return found
