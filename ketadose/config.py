"""The clinic's defaults file: what a workstation uses when a flag and the environment are silent.

A TOML file (the user config directory, ``platformdirs``; or the file ``KETADOSE_CONFIG``
names) with top-level keys only: ``limits``, ``protocols``, ``store``, ``clinician``, ``tz``,
``paper``, ``pump_step``, ``draw_step``, ``store_shared``. An unknown key, a value of the
wrong type or a file that is not UTF-8 TOML is refused (:class:`~ketadose.errors.ConfigError`,
exit 5): a typo never becomes a silent default. Each value is resolved flag > environment >
config file > built-in, and :func:`resolve` says where the effective one came from
(``ketadose config show``).

Pure: the edge reads the file and the environment and hands them in.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ketadose.errors import ConfigError

#: The keys a config file may set, each with the environment variable that beats it.
ENVIRONMENT = {
    "limits": "KETADOSE_LIMITS",
    "protocols": "KETADOSE_PROTOCOLS",
    "store": "KETADOSE_STORE",
    "clinician": "KETADOSE_CLINICIAN",
    "tz": "KETADOSE_TZ",
    "paper": "KETADOSE_PAPER",
    "pump_step": "KETADOSE_PUMP_STEP",
    "draw_step": "KETADOSE_DRAW_STEP",
    "store_shared": "KETADOSE_STORE_SHARED",
}

Source = Literal["flag", "environment", "config file", "built-in"]


class Config(BaseModel):
    """The config file's values (None: not set there)."""

    # Its validator is built only when a file is read: no file must cost nothing at start-up.
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, defer_build=True)

    limits: str | None = Field(default=None, min_length=1)
    protocols: str | None = Field(default=None, min_length=1)
    store: str | None = Field(default=None, min_length=1)
    clinician: str | None = Field(default=None, min_length=1, max_length=200)
    tz: str | None = Field(default=None, min_length=1)
    paper: Literal["a4", "letter"] | None = None
    pump_step: str | None = Field(default=None, min_length=1, description="e.g. 0.1mL/h")
    draw_step: str | None = Field(default=None, min_length=1, description="e.g. 0.01mL")
    store_shared: bool | None = Field(
        default=None,
        description="true: use a store file or directory other users may read or write "
        "(refused otherwise)",
    )


#: No config file: every value unset (built without validation, so without the validator).
NO_CONFIG = Config.model_construct()


def read(path: Path, named: bool) -> Config:
    """Read the config file at ``path``; none there is no config, unless it was ``named``.

    Raises:
        ConfigError: A named file that does not exist, an unreadable or invalid one (exit 5).
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        if named:
            raise ConfigError("no config file there", path=str(path)) from None
        return NO_CONFIG
    except OSError as error:
        raise ConfigError(f"cannot read: {error.strerror}", path=str(path)) from None
    return parse(data, str(path))


def parse(data: bytes, path: str) -> Config:
    """Read a config file's bytes.

    Args:
        data: The file's bytes.
        path: How to name the file in messages.

    Returns:
        Its values.

    Raises:
        ConfigError: Not UTF-8 TOML, an unknown key, or a value of the wrong type.
    """
    import tomllib  # only when a config file is read (a run without one never loads it)

    try:
        table = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"not a TOML config file: {error}", path=path) from None
    unknown = sorted(set(table) - set(Config.model_fields))
    if unknown:
        known = ", ".join(Config.model_fields)
        raise ConfigError(f"unknown key {unknown[0]!r}; the keys are {known}", path=path)
    try:
        return Config.model_validate(table)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ConfigError(first["msg"], path=path, location=where) from None


def boolean(text: str, name: str = "the value") -> bool:
    """A yes/no setting's value: ``true`` or ``false`` (as TOML spells them), nothing else.

    Raises:
        InputError: Any other text (a typo is never read as either).
    """
    if text in ("true", "false"):
        return text == "true"
    from ketadose.errors import InputError

    raise InputError(f"{name} must be true or false, not {text!r}")


@dataclass(frozen=True, slots=True)
class Setting:
    """One effective value and where it came from."""

    key: str
    value: str | None
    source: Source


def resolve(
    key: str,
    *,
    flag: str | None,
    environment: dict[str, str],
    config: Config,
    default: str | None,
) -> Setting:
    """The effective value of ``key``: flag > environment > config file > built-in.

    Args:
        key: A config key (``store``, ``tz``, ...).
        flag: The command-line value, or None when the flag was not given.
        environment: The process environment (only the key's variable is read).
        config: The config file's values.
        default: The built-in default.

    Returns:
        The value and its source.

    Raises:
        ConfigError: The key's variable set but blank (exit 5).
    """
    if flag is not None:
        return Setting(key, flag, "flag")
    variable = ENVIRONMENT[key]
    if variable in environment:
        if not environment[variable].strip():
            # Set but blank: a script meant to name something; never fall back silently.
            raise ConfigError("is set but empty; unset it to use the default", path=variable)
        return Setting(key, environment[variable], "environment")
    found = getattr(config, key)
    if isinstance(found, bool):
        found = "true" if found else "false"  # TOML's boolean, spelled as the variable is
    if found is not None:
        return Setting(key, found, "config file")
    return Setting(key, default, "built-in")
