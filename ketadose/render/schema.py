"""JSON Schemas of the JSON documents, generated from the pydantic models that write them.

The schema and the output come from the same model, so they cannot drift apart; tests validate
real outputs against these schemas. ``schema_version`` moves only when a key changes meaning.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the command line reads DOCUMENTS at start-up: no pydantic here
    from pydantic import BaseModel

#: The commands whose JSON output has a schema, and what each document is about.
DOCUMENTS = {
    "dose": "one checked session: dose, pump programme, findings",
    "check": "one checked session (the same document as dose)",
    "plan": "a checked treatment series",
    "next": "the next-session recommendation",
    "history": "a patient's sessions with the improvement from baseline",
    "batch": "one JSON Lines record of ketadose batch: a plan or an error",
    "verify": "what limits verify found: each problem with a minimal patient",
    "simulate": "a predicted plasma concentration curve and its summary",
}


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
    if name == "history":
        from ketadose.render.records import History

        return History
    if name == "simulate":
        from ketadose.simulation import Simulation

        return Simulation
    if name == "verify":
        from ketadose.verify import Verification

        return Verification
    from ketadose.batch import BatchRecord

    return BatchRecord


def schema(name: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one command's JSON output.

    Args:
        name: A key of ``DOCUMENTS``.

    Returns:
        The schema, with ``schema_version`` as a required first property.
    """
    from ketadose.models import SCHEMA_VERSION

    generated = _model(name).model_json_schema(mode="serialization")
    properties = {
        "schema_version": {"const": SCHEMA_VERSION, "type": "integer"},
        **generated.pop("properties"),
    }
    required = ["schema_version", *generated.pop("required", [])]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"urn:ketadose:schema:{name}:{SCHEMA_VERSION}",
        "description": f"ketadose {name} --format json: {DOCUMENTS[name]}",
        **generated,
        "properties": properties,
        "required": required,
    }


def text(name: str) -> str:
    """The schema as indented JSON text with a trailing newline.

    Args:
        name: A key of ``DOCUMENTS``.

    Returns:
        JSON text.
    """
    import json

    return json.dumps(schema(name), indent=2, ensure_ascii=False) + "\n"
