"""The edge environment: the clock, the OS user, the clinic's zone, the store, the libraries.

The only module of the command line that reads ``os.environ``, the clock or the OS user; the
core is handed what it needs (``now``, the zone, the user). Also the audit log, since an
entry is written by who and when.
"""

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from datetime import datetime, tzinfo

    from ketadose.config import Config, Setting
    from ketadose.limits import LimitLibrary
    from ketadose.models import Finding
    from ketadose.protocols import ProtocolLibrary
    from ketadose.records import AuditEntry
    from ketadose.store import Store

T = TypeVar("T")

#: --tz before the command (on the app) and after it (on the command); the command's wins.
_tz: dict[str, str | None] = {"app": None, "command": None}


def set_app_tz(value: str | None) -> None:
    """The app's --tz (before the command); a new run forgets the previous command's."""
    _tz.update(app=value, command=None)
    _config.clear()  # a new run reads the config file again, if it needs a value from it


#: The config file of this run, read on first need (never when no value is asked of it).
_config: dict[str, "Config"] = {}


def config_path() -> tuple[Path, bool]:
    """The config file: the one KETADOSE_CONFIG names (True), else the user config directory."""
    named = os.environ.get("KETADOSE_CONFIG")
    if named:
        return Path(named), True
    import platformdirs

    return Path(platformdirs.user_config_dir("ketadose")) / "config.toml", False


def config() -> "Config":
    """The clinic's config file, once per run (:func:`ketadose.config.read`)."""
    if "file" not in _config:
        from ketadose.config import read

        _config["file"] = read(*config_path())
    return _config["file"]


def setting(key: str, flag: str | None, default: str | None) -> "Setting":
    """One effective value and its source: flag > environment > config file > built-in."""
    from ketadose.config import resolve

    return resolve(key, flag=flag, environment=dict(os.environ), config=config(), default=default)


def configured(found: "Setting", use: "Callable[[str], T]") -> T:
    """Use a setting's value; a value the config file gave that is refused is the file's error.

    A bad ``tz`` or ``pump_step`` the user never typed must say where it came from: the config
    file, by path and key (exit 5), not a bare "unknown time zone" (exit 2).

    Raises:
        ConfigError: The config file's value is refused (exit 5).
    """
    from ketadose.errors import ConfigError, InputError

    try:
        return use(found.value or "")
    except InputError as error:
        if found.source != "config file":
            raise
        raise ConfigError(str(error), path=str(config_path()[0]), location=found.key) from None


def tz_flag() -> str | None:
    """The --tz given on this run's command line (the command's, else the app's), if any."""
    return _tz["command"] or _tz["app"]


def completing() -> bool:
    """Whether this run is the shell asking for completions (Click's ``_KETADOSE_COMPLETE``)."""
    return "_KETADOSE_COMPLETE" in os.environ


def command_tz(value: str | None) -> str | None:
    """The command's --tz (a Typer callback: it wins over the app's)."""
    _tz["command"] = value
    return value


def paper() -> str:
    """The sheets' paper: KETADOSE_PAPER, else the config file's, else A4.

    Raises:
        ConfigError: KETADOSE_PAPER neither ``a4`` nor ``letter`` (exit 5).
    """
    found = setting("paper", None, "a4").value or "a4"
    if found not in ("a4", "letter"):
        from ketadose.errors import ConfigError

        raise ConfigError(f"is {found!r}, not a4 or letter", path="KETADOSE_PAPER")
    return found


def library(path: Path | None) -> "ProtocolLibrary":
    """The protocol library: the shipped one, with a clinic's file added.

    The file is --protocols (``-``: stdin), else KETADOSE_PROTOCOLS, else the config file's.
    """
    from ketadose.cli.sources import read
    from ketadose.protocols import library_from

    if path is None and (named := setting("protocols", None, None).value) is not None:
        path = Path(named)  # KETADOSE_PROTOCOLS, else the config file's
    return library_from(None) if path is None else library_from(*read(path))


def limits(path: Path | None, protocols: "ProtocolLibrary") -> "LimitLibrary":
    """The limit library (--limits, ``-`` for stdin, else KETADOSE_LIMITS, else the shipped one).

    Raises:
        ConfigError: KETADOSE_LIMITS set but blank, or a library that does not fit the
            protocols (exit 5).
    """
    from ketadose.cli.sources import read
    from ketadose.errors import ConfigError
    from ketadose.limits import load_file, load_library

    if path is None and os.environ.get("KETADOSE_LIMITS") is not None:
        # Set but blank: a script meant to name a file; never fall back silently.
        raise ConfigError(
            "is set but empty; unset it to use the shipped example", path="KETADOSE_LIMITS"
        )

    if path is None and (named := config().limits) is not None:
        path = Path(named)
    library = load_library() if path is None else load_file(*read(path))
    library.check_protocols({pid: entry.protocol.route for pid, entry in protocols.items()})
    return library


def store_path(path: Path | None) -> Path:
    """--store, else KETADOSE_STORE (via typer), else the config file's, else the user data dir.

    Raises:
        ConfigError: KETADOSE_STORE set but blank (exit 5): a script meant to name a store,
            so its audit entries never go silently to the user's own.
    """
    if path is not None:
        return path
    if os.environ.get("KETADOSE_STORE") is not None and not os.environ["KETADOSE_STORE"].strip():
        from ketadose.errors import ConfigError

        raise ConfigError(
            "is set but empty; unset it to use the default store", path="KETADOSE_STORE"
        )
    if (named := config().store) is not None:
        return Path(named)
    import platformdirs

    return Path(platformdirs.user_data_dir("ketadose")) / "store.sqlite3"


def user(clinician: str | None) -> str:
    """Who is acting: --clinician, else the config file's, else the OS user (read only here)."""
    import getpass

    if clinician is not None:
        if not clinician.strip() or not clinician.isprintable():
            from ketadose.errors import InputError

            raise InputError("--clinician must be a name on one line")
        return clinician.strip()
    if (named := setting("clinician", None, None).value) is not None:
        return named.strip()  # KETADOSE_CLINICIAN, else the config file's
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


def now() -> "datetime":
    """Now, to the second, in the clinic's zone (the one place the clock is read)."""
    from datetime import datetime

    return datetime.now(zone()).replace(microsecond=0)


def zone() -> "tzinfo":
    """The clinic's zone: --tz (command's, app's), KETADOSE_TZ, the config file's, the system's.

    Raises:
        InputError: An unknown zone, or KETADOSE_TZ set but blank (exit 2).
    """
    from ketadose import clock

    name = tz_flag()
    if name is not None:
        return clock.zone(name)
    env = os.environ.get("KETADOSE_TZ")
    if env is not None:
        if not env.strip():
            from ketadose.errors import InputError

            raise InputError("KETADOSE_TZ is set but empty; unset it to use the system's zone")
        return clock.zone(env)
    if (named := config().tz) is not None:
        from ketadose.config import Setting

        return configured(Setting("tz", named, "config file"), clock.zone)
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

    ``read_only`` (the commands that only read: patient, session and score show, history,
    next, audit) fails closed: a store that does not exist is refused (exit 6, "no store at
    PATH"), never created empty, so a mistyped ``--store`` cannot look like a patient without
    sessions. A store of an older schema is still migrated, backed up first, as by any other
    command.
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
    """One audit-log line: the core builds it; who (``user``) and when (``now``) are read here."""
    from ketadose.records import AuditEntry

    return AuditEntry.of(
        at=now(),
        user=user(clinician),
        command=command_name,
        patient_id=patient_id,
        inputs=inputs,
        findings=findings,
        status=status,
        override_reason=override_reason,
        library_sha256=library_sha256,
    )


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
