"""The edge environment: the clock, the OS user, the clinic's zone, the store, the libraries.

The only module of the command line that reads ``os.environ``, the clock or the OS user; the
core is handed what it needs (``now``, the zone, the user). Also the audit log, since an
entry is written by who and when.
"""

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime, tzinfo

    from ketadose.limits import LimitLibrary
    from ketadose.models import Finding
    from ketadose.protocols import ProtocolLibrary
    from ketadose.records import AuditEntry
    from ketadose.store import Store

#: --tz before the command (on the app) and after it (on the command); the command's wins.
_tz: dict[str, str | None] = {"app": None, "command": None}


def set_app_tz(value: str | None) -> None:
    """The app's --tz (before the command); a new run forgets the previous command's."""
    _tz.update(app=value, command=None)


def command_tz(value: str | None) -> str | None:
    """The command's --tz (a Typer callback: it wins over the app's)."""
    _tz["command"] = value
    return value


def library(path: Path | None) -> "ProtocolLibrary":
    """The protocol library: the shipped one, with --protocols added."""
    from ketadose.protocols import load_library

    return load_library(path)


def limits(path: Path | None, protocols: "ProtocolLibrary") -> "LimitLibrary":
    """The limit library (--limits, else KETADOSE_LIMITS, else the shipped example).

    Raises:
        ConfigError: KETADOSE_LIMITS set but blank, or a library that does not fit the
            protocols (exit 5).
    """
    from ketadose.errors import ConfigError
    from ketadose.limits import load_library

    if path is None and os.environ.get("KETADOSE_LIMITS") is not None:
        # Set but blank: a script meant to name a file; never fall back silently.
        raise ConfigError(
            "is set but empty; unset it to use the shipped example", path="KETADOSE_LIMITS"
        )

    library = load_library(path)
    library.check_protocols({pid: entry.protocol.route for pid, entry in protocols.items()})
    return library


def store_path(path: Path | None) -> Path:
    """--store, else KETADOSE_STORE (via typer), else the per-user data directory."""
    if path is not None:
        return path
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "ketadose" / "store.sqlite3"


def user(clinician: str | None) -> str:
    """Who is acting: --clinician, else the OS user (the one place it is read)."""
    import getpass

    if clinician is not None:
        if not clinician.strip() or not clinician.isprintable():
            from ketadose.errors import InputError

            raise InputError("--clinician must be a name on one line")
        return clinician.strip()
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


def now() -> "datetime":
    """Now, to the second, in the clinic's zone (the one place the clock is read)."""
    from datetime import datetime

    return datetime.now(zone()).replace(microsecond=0)


def zone() -> "tzinfo":
    """The clinic's zone: --tz (the command's, then the app's), else KETADOSE_TZ, else the system's.

    Raises:
        InputError: An unknown zone, or KETADOSE_TZ set but blank (exit 2).
    """
    from ketadose import clock

    name = _tz["command"] or _tz["app"]
    if name is not None:
        return clock.zone(name)
    env = os.environ.get("KETADOSE_TZ")
    if env is not None:
        if not env.strip():
            from ketadose.errors import InputError

            raise InputError("KETADOSE_TZ is set but empty; unset it to use the system's zone")
        return clock.zone(env)
    return system_zone()


def system_zone() -> "tzinfo":
    """The system's zone by its IANA name (TZ, /etc/localtime, /etc/timezone).

    When the system's zone cannot be named, the local UTC offset of now: right today, but it
    does not follow daylight-saving changes (name the zone with --tz for that).
    """
    from datetime import datetime
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    candidates: list[str] = []
    env = os.environ.get("TZ")
    if env is not None:
        candidates.append(env.removeprefix(":") or "UTC")  # TZ="" is UTC to the C library
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
    local = datetime.now().astimezone().tzinfo
    assert local is not None  # astimezone() always gives a fixed-offset zone
    return local


def open_store(path: Path | None, *, read_only: bool = False) -> "Store":
    """Open the record store in the clinic's zone; say on stderr what a migration did.

    ``read_only`` (the commands that only read: patient show, history, next, audit) fails
    closed: a store that does not exist is refused (exit 6, "no store at PATH"), never created
    empty, so a mistyped ``--store`` cannot look like a patient without sessions. A store of an
    older schema is still migrated, backed up first, as by any other command.
    """
    from ketadose.errors import StoreMigrationError
    from ketadose.store import Store

    target = store_path(path)
    try:
        db = Store.open(target, read_only=read_only, zone=zone())
    except StoreMigrationError:
        # An older store is migrated (backed up first) as any command does; only a store
        # that does not exist is refused.
        db = Store.open(target, zone=zone())
    for notice in db.notices:
        typer.echo(f"ketadose: {notice}", err=True)
    return db


def audit_entry(
    clinician: str | None,
    command_name: str,
    patient_id: str | None,
    inputs: dict[str, Any],
    findings: "Sequence[Finding]",
    status: str,
    override_reason: str | None,
    library_sha256: str,
) -> "AuditEntry":
    """One audit-log line: who, when, which command, its inputs, findings and library."""
    import json as jsonlib

    from ketadose.records import AuditEntry

    return AuditEntry(
        at=now(),
        user=user(clinician),
        command=command_name,
        patient_id=patient_id,
        inputs_json=jsonlib.dumps({k: json_value(v) for k, v in inputs.items() if v is not None}),
        findings_json=jsonlib.dumps([f.model_dump(mode="json") for f in findings]),
        status=status,
        override_reason=override_reason,
        library_sha256=library_sha256,
    )


def json_value(value: object) -> object:
    """An audit input as a JSON value: a list stays a list, a flag a boolean, a number a number.

    Never the Python repr (``"['lorazepam:12']"``, ``"False"``): a reviewer's tool reads the
    log as JSON. Paths, enums, times and quantities are their text.
    """
    from enum import Enum

    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Enum):
        return json_value(value.value)
    if isinstance(value, list | tuple | set | frozenset):
        items = [json_value(item) for item in value]
        return sorted(items, key=str) if isinstance(value, set | frozenset) else items
    return str(value)


def audit(
    store: Path | None,
    clinician: str | None,
    command_name: str,
    inputs: dict[str, Any],
    findings: "Sequence[Finding]",
    status: str,
    override_reason: str | None,
    library_sha256: str,
) -> None:
    """Append to the audit log when a computation produced findings or an override.

    Nothing is written for a clean result (and the store is not even opened). When the log
    cannot be written the command fails (exit 6): an override must never go unrecorded.
    """
    flagged = [f for f in findings if f.severity.value != "info"]
    if not flagged and override_reason is None:
        return  # before any import: a clean run does not load the store at all

    entry = audit_entry(
        clinician, command_name, None, inputs, flagged, status, override_reason, library_sha256
    )
    with open_store(store) as db:
        db.append_audit(entry)
