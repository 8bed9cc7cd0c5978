"""The edge environment: the clock, the OS user, the clinic's zone, the store, the libraries.

The only module of the command line that reads ``os.environ``, the clock or the OS user; the
core is handed what it needs (``now``, the zone, the user; :mod:`ketadose.cli.audit_log`
stamps an audit entry with them).
"""

import os
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import typer

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime, tzinfo

    from ketadose.config import Config, Setting
    from ketadose.limits import LimitLibrary
    from ketadose.protocols import ProtocolLibrary
    from ketadose.store import Store
    from ketadose.store_url import StoreLocation

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
    if named is not None:
        if not named.strip():
            raise _blank("KETADOSE_CONFIG", "the user config directory's")
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
    """Use a setting's value; the config file's value, if refused, is the file's error (exit 5).

    A bad ``tz`` the user never typed says the file and key, not a bare "unknown time zone".
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
    from ketadose.limits import load_file, load_library

    if path is None and os.environ.get("KETADOSE_LIMITS") is not None:
        # Set but not read by typer: blank. A script meant to name a file; never fall back.
        raise _blank("KETADOSE_LIMITS", "the shipped example")
    if path is None and (named := config().limits) is not None:
        path = Path(named)
    library = load_library() if path is None else load_file(*read(path))
    library.check_protocols({pid: entry.protocol.route for pid, entry in protocols.items()})
    return library


def store_location(given: str | None) -> "StoreLocation":
    """--store, else KETADOSE_STORE (via typer), else the config file's, else the user data dir.

    A file or a URL (:func:`ketadose.store_url.parse`).

    Raises:
        ConfigError: KETADOSE_STORE set but blank (exit 5): a script meant to name a store,
            so its audit entries never go silently to the user's own.
        InputError: Not a store location (a URL with a password, another scheme).
    """
    from ketadose.store_url import StoreLocation, parse

    if given is not None:
        return parse(given)
    if os.environ.get("KETADOSE_STORE") is not None and not os.environ["KETADOSE_STORE"].strip():
        raise _blank("KETADOSE_STORE", "the default store")
    if (named := config().store) is not None:
        return parse(named)
    import platformdirs

    return StoreLocation.file(Path(platformdirs.user_data_dir("ketadose")) / "store.sqlite3")


#: A variable set but blank is refused: a script meant to name something; never fall back.
_BLANK = "is set but empty; unset it to use"


def _blank(variable: str, fallback: str) -> Exception:
    from ketadose.errors import ConfigError

    return ConfigError(f"{_BLANK} {fallback}", path=variable)


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


def os_user() -> str:
    """The OS user of this process by its effective uid, as the system authenticated it.

    Never ``getpass.getuser()``, which believes ``LOGNAME`` and ``USER``: anyone can set
    those. A uid without a name (a container run with an arbitrary uid) is its number; where
    there is no ``pwd`` (Windows), the login name Windows reports.
    """
    try:
        import pwd
    except ImportError:  # Windows: no uids; the account name the system reports
        import getpass

        return getpass.getuser()
    uid = os.geteuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


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

            raise InputError(f"KETADOSE_TZ {_BLANK} the system's zone")
        return clock.zone(env)
    if (named := config().tz) is not None:
        from ketadose.config import Setting

        return configured(Setting("tz", named, "config file"), clock.zone)
    return system_zone()


def system_zone() -> "tzinfo":
    """The system's zone by its IANA name (:func:`ketadose.clock.system_zone_named`, from TZ).

    When the system's zone cannot be named, the local UTC offset of now: right today, but it
    does not follow daylight-saving changes (name the zone with --tz for that).
    """
    from datetime import datetime

    from ketadose.clock import system_zone_named

    named = system_zone_named(os.environ.get("TZ"))
    local = named or datetime.now().astimezone().tzinfo
    assert local is not None  # astimezone() always gives a fixed-offset zone
    return local


def store_shared() -> bool:
    """Whether the config allows a store other users may read or write (``store_shared``)."""
    from ketadose.config import boolean

    found = setting("store_shared", None, "false")
    return configured(found, lambda text: boolean(text, "KETADOSE_STORE_SHARED"))


def open_store(path: str | None, *, read_only: bool = False) -> "Store":
    """Open the record store in the clinic's zone; say on stderr what a migration did.

    ``read_only`` (the commands that only read: patient, session and score show, history,
    next, audit) fails closed: a store that does not exist is refused (exit 6, "no store at
    PATH"), never created empty, so a mistyped ``--store`` cannot look like a patient without
    sessions. A store of an older schema is still migrated, backed up first, as by any other
    command.
    """
    from ketadose.config import boolean
    from ketadose.errors import StoreError, StoreMigrationError
    from ketadose.store import Store

    target = store_location(path)
    found = setting("store_shared", None, "false")
    shared = configured(found, lambda text: boolean(text, "KETADOSE_STORE_SHARED"))

    def opened(read_only: bool) -> "Store":
        return Store.open(target, read_only=read_only, zone=zone(), actor=os_user(), shared=shared)

    try:
        db = opened(read_only)
    except StoreMigrationError as older:
        # An older store is migrated (backed up first) as any command does; only a store
        # that does not exist is refused: on a server, a database without the schema.
        if older.version == 0 and target.path is None:
            raise StoreError(
                f"no store at {target}: the database has no ketadose schema yet; its owner "
                "makes it with ketadose store migrate"
            ) from None
        db = opened(False)
    for notice in db.notices:
        typer.echo(f"ketadose: {notice}", err=True)
    return db
