"""JSON Schemas of the JSON documents, generated from the pydantic models that write them.

The schema and the output come from the same model, so they cannot drift apart; tests validate
real outputs against these schemas. ``schema_version`` moves only when a key changes meaning.

Two promises to a validating consumer:

- **What is always there is required.** Every key a document always writes (``status``,
  ``ready``, ``library`` of dose and check, a default-valued key too) is ``required``.
- **Adding a key is not a breaking change.** No object, at any level, has
  ``additionalProperties: false``: a consumer validating today's documents against today's
  schema keeps validating tomorrow's, which may carry new keys.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, models_json_schema
from pydantic_core import core_schema

from ketadose.models import SCHEMA_VERSION

#: The commands whose JSON output has a schema, and what each document is about.
DOCUMENTS = {
    "dose": "one checked session: dose, pump programme, findings",
    "check": "one checked session (the same document as dose)",
    "plan": "a checked treatment series",
    "next": "the next-session recommendation",
    "history": "a patient's sessions with the improvement from baseline",
    "patient": "patient show: a patient and the sessions recorded (the history document)",
    "batch": "one JSON Lines record of ketadose batch: a plan or an error",
    "verify": "what limits verify found: each problem with a minimal patient",
    "simulate": "a predicted plasma concentration curve and its summary",
    "session": "session show: a recorded session, its readings and discharge readiness",
    "score": "score show: a patient's questionnaire scores and each instrument's trend",
    "audit": "the audit log's entries, oldest first",
    "protocols": "protocols list: the protocols in effect, each with its library",
    "protocol": "protocols show: one protocol with its library",
    "limits": "limits show: the limit library (or the limits in effect for one protocol)",
    "config": "config show: each clinic default in effect and where it came from",
}


class _Written(GenerateJsonSchema):
    """A key the serializer always writes is required, default or not (ours never skip one)."""

    def field_is_required(
        self,
        field: core_schema.ModelField | core_schema.DataclassField | core_schema.TypedDictField,
        total: bool,
    ) -> bool:
        if self.mode == "serialization":
            return field.get("serialization_exclude_if") is None
        return super().field_is_required(field, total)


def _model(name: str) -> type[BaseModel]:
    if name in ("dose", "check"):
        from ketadose.models import SessionDose

        return SessionDose
    if name == "plan":
        from ketadose.planning import Plan

        return Plan
    if name == "next":
        from ketadose.escalation import NextSession

        return NextSession
    if name in ("history", "patient"):
        from ketadose.render.records import History

        return History
    if name == "simulate":
        from ketadose.simulation import Simulation

        return Simulation
    if name == "verify":
        from ketadose.verify import Verification

        return Verification
    if name == "session":
        from ketadose.render.records import SessionReport

        return SessionReport
    if name == "config":
        from ketadose.render.json import ConfigDocument

        return ConfigDocument
    from ketadose.batch import BatchRecord

    return BatchRecord


Mode = Literal["validation", "serialization"]


def _defs(*models: tuple[type[BaseModel], Mode]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """``$ref``s to models (each in its mode) and the shared ``$defs`` they point into."""
    refs, top = models_json_schema(
        list(models),
        ref_template="#/$defs/{model}",
        schema_generator=_Written,
    )
    return [refs[(model, mode)] for model, mode in models], top.get("$defs", {})


def _composed(name: str) -> dict[str, Any]:
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
    from ketadose.limits import SECTIONS, SIDES, Condition, Limit, Medication
    from ketadose.models import LibraryRef

    (limit, medication, condition, library), defs = _defs(
        (Limit, "serialization"),
        (Medication, "serialization"),
        (Condition, "serialization"),
        (LibraryRef, "serialization"),
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
        },
        "required": ["library", "medications", "conditions"],
        "oneOf": [{"required": ["protocol", "limits"]}, {"required": ["profiles", "routes"]}],
        **_d(defs),
    }


def _open(node: Any) -> Any:
    """The schema without ``additionalProperties: false`` anywhere (the stability promise)."""
    if isinstance(node, dict):
        return {
            key: _open(value)
            for key, value in node.items()
            if not (key == "additionalProperties" and value is False)
        }
    if isinstance(node, list):
        return [_open(item) for item in node]
    return node


def schema(name: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one command's JSON output.

    Args:
        name: A key of ``DOCUMENTS``.

    Returns:
        The schema, with ``schema_version`` as a required first property; every key the
        document always writes is required, and no object refuses a key added later.
    """
    if name in ("audit", "protocols", "protocol", "limits", "score"):
        generated = _composed(name)
    else:
        generated = _model(name).model_json_schema(mode="serialization", schema_generator=_Written)
    properties = {
        "schema_version": {"const": SCHEMA_VERSION, "type": "integer"},
        **generated.pop("properties"),
    }
    required = ["schema_version", *generated.pop("required", [])]
    opened: dict[str, Any] = _open(
        {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"urn:ketadose:schema:{name}:{SCHEMA_VERSION}",
            "description": f"ketadose {name} --format json: {DOCUMENTS[name]}",
            **generated,
            "properties": properties,
            "required": required,
        }
    )
    return opened


def text(name: str) -> str:
    """The schema as indented JSON text with a trailing newline.

    Args:
        name: A key of ``DOCUMENTS``.

    Returns:
        JSON text.
    """
    return json.dumps(schema(name), indent=2, ensure_ascii=False) + "\n"
