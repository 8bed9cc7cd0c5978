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
    "store": "store check: schema version, exposure, triggers and hash chains",
    "chain": "audit verify: each hash chain recomputed, its head and its first break",
    "clinicians": "clinician list: the registered clinicians and their roles",
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
        from ketadose.render.config_doc import ConfigDocument

        return ConfigDocument
    if name in ("store", "chain", "clinicians"):
        from ketadose.render import store_doc

        documents: dict[str, type[BaseModel]] = {
            "store": store_doc.StoreCheck,
            "chain": store_doc.ChainCheck,
            "clinicians": store_doc.ClinicianList,
        }
        return documents[name]
    from ketadose.batch import BatchRecord

    return BatchRecord


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
    from ketadose.models import SCHEMA_VERSION
    from ketadose.render.schema_parts import COMPOSED, Written, composed

    if name in COMPOSED:
        generated = composed(name)
    else:
        generated = _model(name).model_json_schema(mode="serialization", schema_generator=Written)
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
    import json

    return json.dumps(schema(name), indent=2, ensure_ascii=False) + "\n"
