"""The schemas of the JSON documents written from plain dicts, made from their parts' models.

These are audit, protocols, protocol, limits and score; here too the generator every schema
uses. (Apart from :mod:`ketadose.render.schema`, which serves them, so that neither is long.)
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, models_json_schema
from pydantic_core import core_schema

#: The documents made here.
COMPOSED = ("audit", "protocols", "protocol", "limits", "score")


class Written(GenerateJsonSchema):
    """A key the serializer always writes is required, default or not (ours never skip one)."""

    def field_is_required(
        self,
        field: core_schema.ModelField | core_schema.DataclassField | core_schema.TypedDictField,
        total: bool,
    ) -> bool:
        """Required: in serialization mode every field not excluded; else as pydantic says."""
        if self.mode == "serialization":
            return field.get("serialization_exclude_if") is None
        return super().field_is_required(field, total)


Mode = Literal["validation", "serialization"]


def _defs(*models: tuple[type[BaseModel], Mode]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """``$ref``s to models (each in its mode) and the shared ``$defs`` they point into."""
    refs, top = models_json_schema(
        list(models),
        ref_template="#/$defs/{model}",
        schema_generator=Written,
    )
    return [refs[(model, mode)] for model, mode in models], top.get("$defs", {})


def composed(name: str) -> dict[str, Any]:
    """The documents written from plain dicts, made from the models of their parts."""
    from ketadose.models import Finding, LibraryRef

    if name == "audit":
        # Findings stored by any version: validation mode, so a key added since is optional.
        (finding,), defs = _defs((Finding, "validation"))
        text, optional = {"type": "string"}, {"type": ["string", "null"]}
        entry: dict[str, Any] = {
            "type": "object",
            "properties": {
                "at": {"type": "string", "format": "date-time"},
                "user": text,
                "command": text,
                "patient_id": optional,
                "status": {"enum": ["ok", "soft", "hard"]},
                "override_reason": optional,
                "library_sha256": text,
                "id": {"type": ["integer", "null"]},
                "inputs": {"type": "object", "description": "The command's inputs, as given."},
                "findings": {"type": "array", "items": finding},
            },
        }
        entry["required"] = list(entry["properties"])
        properties: dict[str, Any] = {"entries": {"type": "array", "items": entry}}
        return {"type": "object", "properties": properties, "required": ["entries"], "$defs": defs}
    if name in ("protocols", "protocol"):
        from ketadose.protocols import Protocol

        (protocol, library), defs = _defs(
            (Protocol, "serialization"), (LibraryRef, "serialization")
        )
        item = {
            "allOf": [protocol],
            "properties": {"weight_based": {"type": "boolean"}, "library": library},
            "required": ["weight_based", "library"],
        }
        if name == "protocol":
            properties = {"protocol": item}
        else:
            properties = {
                "protocols": {"type": "array", "items": item},
                "routes_not_shipped": {
                    "type": "object",
                    "additionalProperties": {"type": "string"},
                    "description": "Routes no shipped protocol serves, and why.",
                },
            }
        return {
            "type": "object",
            "properties": properties,
            "required": list(properties),
            **_d(defs),
        }
    if name == "score":
        return _scores()
    return _limits()


def _d(defs: dict[str, Any]) -> dict[str, Any]:
    return {"$defs": defs} if defs else {}


def _object(**properties: Any) -> dict[str, Any]:
    """An object whose every property is always written."""
    return {"type": "object", "properties": properties, "required": list(properties)}


def _scores() -> dict[str, Any]:
    """``score show --json``: each stored score with its band and safety items, and trends."""
    from ketadose.models import LibraryRef

    (library,), defs = _defs((LibraryRef, "serialization"))
    text, optional, number = {"type": "string"}, {"type": ["string", "null"]}, {"type": "number"}
    when = {"type": "string", "format": "date-time"}
    flag = _object(item=number, value=number, at_least=number, label=text)
    score = _object(
        id={"type": ["integer", "null"]},
        date=when,
        instrument=text,
        items={"type": ["array", "null"], "items": {"type": "integer"}},
        total=number,
        band=optional,
        safety={"type": "array", "items": flag},
        needs_acknowledgement={"type": "boolean"},
        acknowledged_by=optional,
        acknowledged_at={"type": ["string", "null"], "format": "date-time"},
        acknowledgement=optional,
    )
    trend = _object(
        date=when,
        instrument=text,
        total=number,
        band=optional,
        change_from_first_pct={"type": ["number", "null"]},
        response={"type": ["boolean", "null"]},
        remission={"type": ["boolean", "null"]},
        safety_items={"type": "array", "items": number},
        acknowledged={"type": ["boolean", "null"]},
    )
    document = _object(
        patient_id=text,
        instruments=library,
        scores={"type": "array", "items": score},
        trends={"type": "object", "additionalProperties": {"type": "array", "items": trend}},
    )
    return {**document, **_d(defs)}


def _limits() -> dict[str, Any]:
    """``limits show --json``: the whole library, or one protocol's limits in effect."""
    from ketadose.authority import OverrideRule
    from ketadose.limits import SECTIONS, SIDES, Condition, Limit, Medication
    from ketadose.models import LibraryRef

    (limit, medication, condition, library, rule), defs = _defs(
        (Limit, "serialization"),
        (Medication, "serialization"),
        (Condition, "serialization"),
        (LibraryRef, "serialization"),
        (OverrideRule, "serialization"),
    )
    value = {"type": ["string", "number", "null"]}
    shown = {
        "allOf": [limit],
        "properties": {
            "unit": {"type": ["string", "null"]},
            "values": {
                "type": "object",
                "properties": dict.fromkeys(SIDES, value),
                "required": list(SIDES),
            },
        },
        "required": ["unit", "values"],
    }
    section = {"type": "object", "additionalProperties": shown}
    profile = {
        "type": "object",
        "properties": dict.fromkeys(SECTIONS, section),
        "required": list(SECTIONS),
    }
    named = {
        "allOf": [profile],
        "properties": {"route": {"type": ["string", "null"]}},
        "required": ["route"],
    }
    return {
        "type": "object",
        "description": "With a protocol: protocol and limits; else profiles and routes.",
        "properties": {
            "library": library,
            "protocol": {"type": "string"},
            "limits": profile,
            "profiles": {"type": "object", "additionalProperties": named},
            "routes": {"type": "object", "additionalProperties": profile},
            "medications": {"type": "array", "items": medication},
            "conditions": {"type": "array", "items": condition},
            "overrides": {
                "type": "object",
                "additionalProperties": rule,
                "description": "Who may override each finding class (default: the rest).",
            },
        },
        "required": ["library", "medications", "conditions", "overrides"],
        "oneOf": [{"required": ["protocol", "limits"]}, {"required": ["profiles", "routes"]}],
        **_d(defs),
    }
