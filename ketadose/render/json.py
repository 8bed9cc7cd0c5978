"""JSON documents for scripts: ``schema_version`` first, stable keys, no float noise."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from ketadose.models import SCHEMA_VERSION
from ketadose.protocols import ProtocolEntry

#: Significant digits kept in JSON numbers: enough for every clinical value, few enough to
#: drop binary-float noise (0.11 * 80 is 8.8, not 8.799999999999999). Rounding to clinical
#: increments is never done here; rounded values travel in their own ``*_rounded`` keys.
SIGNIFICANT_DIGITS = 12


def document(model: BaseModel | list[BaseModel], **extra: Any) -> str:
    """Serialise a result as one JSON document with ``schema_version`` first.

    Args:
        model: The result (or a list of results, under ``items``).
        **extra: More top-level keys.

    Returns:
        The JSON text, indented, with a trailing newline.

    """
    if isinstance(model, list):
        body: dict[str, Any] = {"items": [m.model_dump(mode="json") for m in model]}
    else:
        body = model.model_dump(mode="json")
    return _dumps({"schema_version": SCHEMA_VERSION, **body, **extra})


def _clean(value: Any) -> Any:
    """Round floats to SIGNIFICANT_DIGITS, recursively."""
    if isinstance(value, float):
        return float(f"{value:.{SIGNIFICANT_DIGITS}g}")
    if isinstance(value, dict):
        return {key: _clean(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_clean(item) for item in value]
    return value


def protocols_document(entries: list[ProtocolEntry], *, single: bool = False) -> str:
    """Serialise protocols with the library each came from.

    Args:
        entries: The protocols.
        single: Emit ``protocol`` (one) instead of ``protocols`` (a list).

    Returns:
        The JSON text.

    """
    items = [
        {
            **entry.protocol.model_dump(mode="json"),
            "weight_based": entry.protocol.weight_based,
            "library": entry.library.model_dump(mode="json"),
        }
        for entry in entries
    ]
    body: dict[str, Any] = {"protocol": items[0]} if single else {"protocols": items}
    return _dumps({"schema_version": SCHEMA_VERSION, **body})


def _dumps(data: dict[str, Any]) -> str:
    return json.dumps(_clean(data), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
