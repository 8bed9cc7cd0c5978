"""Real time: the clinic's zone, local wall-clock times made aware, and elapsed time.

Pure: nothing here reads the clock or the environment (the edge does, and passes the zone in).

Python's pitfall, and why every interval goes through :func:`elapsed`: subtracting two aware
datetimes that share one ``tzinfo`` object (every ``ZoneInfo("Europe/Paris")`` is the same cached
object) gives the *wall-clock* difference, and adding a ``timedelta`` moves the wall clock. Across
a daylight-saving change both are an hour off. Here every interval is taken between UTC instants,
and :func:`shift` adds elapsed time, then shows the result in the zone it started in.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ketadose.errors import InputError, Part


class NaiveTimeError(InputError):
    """A datetime without a zone reached code that needs real (aware) time."""


def zone(name: str) -> tzinfo:
    """The IANA time zone of this name (``Europe/Berlin``, ``America/New_York``, ``UTC``).

    Args:
        name: The IANA name.

    Returns:
        The zone.

    Raises:
        InputError: For a blank or unknown name.
    """
    key = name.strip()
    if not key:
        raise InputError("the time zone is blank; give an IANA name such as Europe/Berlin")
    try:
        return ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InputError(
            f'unknown time zone "{name}"; give an IANA name such as Europe/Berlin or '
            "America/New_York"
        ) from None


def aware(value: datetime, what: str = "a time") -> datetime:
    """``value`` itself, if it carries a zone or UTC offset.

    Args:
        value: The datetime.
        what: What it is, for the message.

    Returns:
        ``value``.

    Raises:
        NaiveTimeError: For a naive datetime: ketadose never guesses its zone.
    """
    if value.tzinfo is UTC:
        return value  # the form the checker keeps moments in: nothing to look up
    if value.tzinfo is None or value.utcoffset() is None:
        raise NaiveTimeError(
            f"{what} ({value.isoformat()}) has no time zone; ketadose needs aware times "
            "(a zone or a UTC offset)"
        )
    return value


def instant(value: datetime) -> datetime:
    """The same moment in UTC (the form every comparison and interval is taken in).

    Raises:
        NaiveTimeError: For a naive datetime.
    """
    if value.tzinfo is UTC:
        return value
    return aware(value).astimezone(UTC)


def elapsed(later: datetime, earlier: datetime) -> timedelta:
    """Real time from ``earlier`` to ``later`` (negative if ``later`` is earlier).

    Raises:
        NaiveTimeError: For a naive datetime.
    """
    return instant(later) - instant(earlier)


def shift(value: datetime, delta: timedelta) -> datetime:
    """The moment ``delta`` of real time after ``value``, in ``value``'s zone.

    Raises:
        NaiveTimeError: For a naive datetime.
    """
    return (instant(value) + delta).astimezone(value.tzinfo)


def problem(naive: datetime, where: tzinfo) -> str | None:
    """Whether a wall-clock time is ``"skipped"`` or ``"repeated"`` in ``where``, else None.

    Args:
        naive: The wall-clock time (its own tzinfo, if any, is ignored).
        where: The zone.

    Returns:
        ``"skipped"`` for a time the clocks jump over (spring forward), ``"repeated"`` for one
        they pass twice (fall back), None for a time that happens once.
    """
    local = naive.replace(tzinfo=None)
    first = local.replace(tzinfo=where, fold=0)
    if first.utcoffset() == local.replace(tzinfo=where, fold=1).utcoffset():
        return None
    if first.astimezone(UTC).astimezone(where).replace(tzinfo=None) != local:
        return "skipped"
    return "repeated"


def localize(naive: datetime, where: tzinfo, *, field: Part) -> datetime:
    """A local wall-clock time in ``where``, refusing one that does not exist or is ambiguous.

    Args:
        naive: The wall-clock time.
        where: The clinic's zone.
        field: Name for messages.

    Returns:
        The aware time.

    Raises:
        InputError: For a time skipped by a daylight-saving change (the clocks jumped over
            it), or one that happens twice (the clocks went back): give a UTC offset then.
    """
    found = problem(naive, where)
    if found is None:
        return naive.replace(tzinfo=where, fold=0)
    stamp = naive.isoformat(timespec="minutes")
    if found == "skipped":
        raise InputError(
            field,
            f" {stamp} does not exist in {name(where)}: the clocks skip it "
            "(daylight-saving change); give a time that exists",
        )
    first, second = (naive.replace(tzinfo=where, fold=fold) for fold in (0, 1))
    raise InputError(
        field,
        f" {stamp} happens twice in {name(where)} (the clocks go back); give the UTC "
        f"offset: {stamp}{_offset(first)} or {stamp}{_offset(second)}",
    )


def on_day(day: date, at: time, where: tzinfo) -> datetime | None:
    """The wall-clock time ``at`` on ``day`` in ``where``; None if it is skipped or repeated.

    Args:
        day: The calendar day.
        at: The time of day (its tzinfo, if any, is ignored).
        where: The zone.

    Returns:
        The aware time, or None on a daylight-saving change that skips or repeats it.
    """
    local = datetime.combine(day, at.replace(tzinfo=None))
    if problem(local, where) is not None:
        return None
    return local.replace(tzinfo=where)


def name(where: tzinfo | None) -> str:
    """A zone's IANA name if it has one, else its name for now (``UTC+01:00``)."""
    key = getattr(where, "key", None)
    if isinstance(key, str):
        return key
    return "no zone" if where is None else str(where.tzname(None) or where)


def label(value: datetime) -> str:
    """The zone of a time as a table shows it: its abbreviation (``CET``), else its offset.

    Args:
        value: An aware time.

    Returns:
        ``CET``, ``EST``, ``UTC``; ``+01:00`` where the zone has no lettered abbreviation.
    """
    abbreviation = value.tzname() or ""
    if abbreviation.isalpha():
        return abbreviation
    return _offset(aware(value))


def _offset(value: datetime) -> str:
    return value.isoformat()[-6:]


def system_zone_named(tz_variable: str | None) -> ZoneInfo | None:
    """The system's zone by its IANA name, or None when nothing names one this machine knows.

    Looked for in the ``TZ`` variable, else /etc/localtime's target, else /etc/timezone.

    Args:
        tz_variable: ``TZ`` as the environment has it (None: not set; ``""`` is UTC to the C
            library).
    """
    import contextlib
    import os
    from pathlib import Path

    candidates: list[str] = []
    if tz_variable is not None:
        candidates.append(tz_variable.removeprefix(":") or "UTC")
    else:
        with contextlib.suppress(OSError):
            target = os.path.realpath("/etc/localtime")
            if "/zoneinfo/" in target:
                candidates.append(target.split("/zoneinfo/", 1)[1])
        with contextlib.suppress(OSError, UnicodeDecodeError):
            candidates.append(Path("/etc/timezone").read_text(encoding="utf-8").strip())
    for candidate in candidates:
        key = candidate.split("/zoneinfo/", 1)[1] if "/zoneinfo/" in candidate else candidate
        with contextlib.suppress(ZoneInfoNotFoundError, ValueError, OSError):
            return ZoneInfo(key)
    return None
