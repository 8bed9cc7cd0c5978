"""The ``config show`` document: the config file looked for and each clinic default in effect.

Apart from :mod:`ketadose.render.json` so that a dose, which writes its JSON with
:func:`ketadose.render.json.document`, does not build these models at start-up (about 5 M
instructions): only ``config show`` and ``ketadose schema config`` import them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from ketadose.render.json import document

if TYPE_CHECKING:
    from ketadose.config import Setting


class ConfigFile(BaseModel):
    """The config file ``config show`` looked for."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str
    named: bool = Field(description="Named by KETADOSE_CONFIG (else the user config directory).")
    exists: bool


class ConfigValue(BaseModel):
    """One clinic default in effect."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    value: str | None
    source: Literal["flag", "environment", "config file", "built-in"]
    variable: str = Field(description="The environment variable that sets it.")


class ConfigDocument(BaseModel):
    """The ``config show --json`` document (plus ``schema_version``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    config_file: ConfigFile
    settings: dict[str, ConfigValue]


def config_document(config_file: ConfigFile, settings: Sequence[Setting]) -> str:
    """Serialise each clinic default in effect and where it came from.

    Args:
        config_file: The config file looked for.
        settings: The effective values, in ``ketadose.config.ENVIRONMENT`` order.

    Returns:
        The JSON text.
    """
    from ketadose.config import ENVIRONMENT

    return document(
        ConfigDocument(
            config_file=config_file,
            settings={
                s.key: ConfigValue(value=s.value, source=s.source, variable=ENVIRONMENT[s.key])
                for s in settings
            },
        )
    )
