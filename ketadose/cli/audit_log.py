"""The audit log as the commands write it: who and when from the edge, the entry from the core.

:func:`entry` builds one line (:meth:`ketadose.records.AuditEntry.of`, with :func:`env.now` and
:func:`env.user`); :func:`write` appends one for a computation with findings or an override.
"""

from typing import TYPE_CHECKING, Any

from ketadose.cli import env

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ketadose.authority import OverrideRule
    from ketadose.limits import LimitLibrary
    from ketadose.models import Finding
    from ketadose.records import AuditEntry
    from ketadose.store import Store


def entry(
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
        at=env.now(),
        user=env.user(clinician),
        command=command_name,
        patient_id=patient_id,
        inputs=inputs,
        findings=findings,
        status=status,
        override_reason=override_reason,
        library_sha256=library_sha256,
    )


def authorize(db: "Store", limits: "LimitLibrary", findings: "Sequence[Finding]") -> bool:
    """Refuse an override the acting clinician may not make; say if it needs a co-signature.

    A store with no clinician registered is a single-user workstation: its overrides need no
    role and no second clinician (nobody could co-sign). Once its admin is registered, the
    limit library's ``[overrides]`` decide, by the role registered for who is acting.

    Returns:
        Whether an override here needs an independent second clinician's co-signature.

    Raises:
        OverrideRefusedError: Who is acting is not registered, or their role may not override one
            of these findings (exit 3; nothing is written).
    """
    from ketadose.authority import needs_cosign, overridden, refusals
    from ketadose.errors import OverrideRefusedError

    if not overridden(findings) or not db.clinicians():
        return False
    rules = rules_in_effect(db, limits)
    actor = db.actor or "unknown"
    refused = refusals(rules, findings, actor, db.role(actor))
    if refused:
        raise OverrideRefusedError(f"{refused[0]}; nothing was recorded")
    return needs_cosign(rules, findings)


def rules_in_effect(db: "Store", limits: "LimitLibrary") -> "dict[str, OverrideRule]":
    """The override rules an admin pinned in the store, else the limit library's."""
    from ketadose.authority import DEFAULT_RULE, OverrideRule

    pinned = db.policy()
    if pinned is None:
        # Clinicians registered and nothing pinned (a store from before pinning): the
        # built-in rule, never rules the command's own library brings.
        return {"default": DEFAULT_RULE} if db.clinicians() else dict(limits.content.overrides)
    return {name: OverrideRule.model_validate(rule) for name, rule in pinned.items()}


def write(
    store: str | None,
    clinician: str | None,
    command_name: str,
    inputs: dict[str, Any],
    findings: "Sequence[Finding]",
    status: str,
    override_reason: str | None,
    library_sha256: str,
    limits: "LimitLibrary | None" = None,
) -> tuple[int, str] | None:
    """Append to the audit log when a computation produced findings or an override.

    Nothing is written for a clean result (and the store is not even opened). When the log
    cannot be written the command fails (exit 6): an override must never go unrecorded.

    Returns:
        The log's chain head after the entry (its id and hash), None when none was written.
    """
    flagged = [f for f in findings if f.severity.value != "info"]
    if not flagged and override_reason is None:
        return None  # before any import: a clean run does not load the store at all

    found = entry(
        clinician, command_name, None, inputs, flagged, status, override_reason, library_sha256
    )
    with env.open_store(store) as db:
        if limits is not None:
            authorize(db, limits, findings)
        db.append_audit(found, signed="prescribed" if override_reason is not None else None)
        return db.chain_head()


def head(store: str | None) -> tuple[int, str] | None:
    """The store's chain head for a sheet, if there is a store (none is not created)."""
    location = env.store_location(store)
    if location.path is not None and not location.path.is_file():
        return None
    with env.open_store(store, read_only=True) as db:
        return db.chain_head()
