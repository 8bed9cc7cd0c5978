"""The audit log as the commands write it: who and when from the edge, the entry from the core.

:func:`entry` builds one line (:meth:`ketadose.records.AuditEntry.of`, with :func:`env.now` and
:func:`env.user`); :func:`write` appends one for a computation with findings or an override.
"""

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ketadose.cli import env

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ketadose.models import Finding
    from ketadose.records import AuditEntry


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


def write(
    store: Path | None,
    clinician: str | None,
    command_name: str,
    inputs: dict[str, Any],
    findings: "Sequence[Finding]",
    status: str,
    override_reason: str | None,
    library_sha256: str,
) -> None:
    """Append to the audit log when a computation produced findings or an override.

    Nothing is written for a clean result (and the store is not even opened). When the log
    cannot be written the command fails (exit 6): an override must never go unrecorded.
    """
    flagged = [f for f in findings if f.severity.value != "info"]
    if not flagged and override_reason is None:
        return  # before any import: a clean run does not load the store at all

    found = entry(
        clinician, command_name, None, inputs, flagged, status, override_reason, library_sha256
    )
    with env.open_store(store) as db:
        db.append_audit(found)
