"""JSON documents for scripts: ``schema_version`` first, stable keys, no float noise."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from ketadose.limits import SECTIONS, SIDES, Limit, LimitLibrary, Profile
from ketadose.models import SCHEMA_VERSION, significant
from ketadose.protocols import ProtocolEntry


def document(model: BaseModel, *, indent: int | None = 2) -> str:
    """Serialise a result as one JSON document with ``schema_version`` first.

    pydantic writes the JSON, in Rust, ten times faster than ``model_dump`` and ``json.dumps``
    (a batch writes thousands of these a second); ``Real`` fields were cleaned of float noise
    when the model was built.

    Args:
        model: The result (a model whose floats are ``ketadose.models.Real``).
        indent: Two spaces, or None for one line (JSON Lines).

    Returns:
        The JSON text with a trailing newline.
    """
    body = model.model_dump_json(indent=indent)
    head = (
        f'{{\n  "schema_version": {SCHEMA_VERSION},'
        if indent
        else f'{{"schema_version":{SCHEMA_VERSION},'
    )
    return f"{head}{body[1:]}\n" if body != "{}" else f"{head[:-1]}}}\n"


def _clean(value: Any) -> Any:
    """Round floats to SIGNIFICANT_DIGITS, recursively."""
    if isinstance(value, float):
        return significant(value)
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
    if not single:
        from ketadose.protocols import ROUTES_NOT_SHIPPED

        body["routes_not_shipped"] = ROUTES_NOT_SHIPPED
    return _dumps({"schema_version": SCHEMA_VERSION, **body})


def _dumps(data: dict[str, Any]) -> str:
    return json.dumps(_clean(data), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def _limit(limit: Limit) -> dict[str, Any]:
    bounds = limit.bounds
    return {
        **limit.model_dump(mode="json"),
        "unit": bounds.unit or None,
        "values": {side: getattr(bounds, side) for side in SIDES},
    }


def _profile(profile: Profile) -> dict[str, Any]:
    return {
        section: {
            name: _limit(limit)
            for name in model.model_fields
            if (limit := getattr(getattr(profile, section), name)) is not None
        }
        for section, model in SECTIONS.items()
    }


def limits_document(library: LimitLibrary, protocol: str | None, profile: Profile | None) -> str:
    """Serialise a limit library (or the limits in effect for one protocol).

    Args:
        library: The library.
        protocol: The protocol asked about, or None for the whole library.
        profile: Its effective profile, when a protocol is given.

    Returns:
        The JSON text.
    """
    content = library.content
    body: dict[str, Any] = {"library": library.ref.model_dump(mode="json")}
    if profile is not None:
        body["protocol"] = protocol
        body["limits"] = _profile(profile)
    else:
        body["profiles"] = {
            name: {"route": p.route, **_profile(p)} for name, p in content.profiles.items()
        }
        body["routes"] = {route: _profile(p) for route, p in content.routes.items()}
    body["medications"] = [m.model_dump(mode="json", by_alias=True) for m in content.medications]
    body["conditions"] = [c.model_dump(mode="json") for c in content.conditions]
    body["overrides"] = {name: rule.model_dump(mode="json") for name, rule in _rules(content)}
    return _dumps({"schema_version": SCHEMA_VERSION, **body})


def _rules(content: Any) -> list[tuple[str, Any]]:
    """The library's override rules, or the built-in one it falls back on."""
    from ketadose.authority import DEFAULT_RULE

    return list((content.overrides or {"default": DEFAULT_RULE}).items())


def protocol_document(entry: ProtocolEntry) -> str:
    """Serialise one protocol (``protocols show --json``) with the library it came from."""
    return protocols_document([entry], single=True)
