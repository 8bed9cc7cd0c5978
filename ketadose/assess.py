"""A checked session: the dose, every limit finding, overrides, and whether it may go ahead.

This is what every command that shows a dose runs: no dose leaves ketadose unchecked.
"""

from __future__ import annotations

from ketadose.dosing import DoseRequest, session_dose
from ketadose.errors import ExitCode
from ketadose.limits import LimitLibrary, check, clean_reason, override, status
from ketadose.models import CheckContext, Finding, SessionDose, Severity, Status
from ketadose.protocols import ProtocolEntry


def assess(
    entry: ProtocolEntry,
    request: DoseRequest,
    limits: LimitLibrary,
    context: CheckContext | None = None,
    override_reason: str | None = None,
) -> SessionDose:
    """Compute a session, check it against the limit library and apply an override.

    Args:
        entry: The protocol and its library.
        request: Patient, policy, overrides, preparation options.
        limits: The limit library.
        context: Vitals, medications, conditions, previous sessions, session time.
        override_reason: Acknowledges every soft finding (never a hard one).

    Returns:
        The session with all findings, ``status``, ``ready`` and ``library`` set. With a hard
        finding the pump programme and the preparation are withheld (set to null), so that no
        refused programme can be read as one to run.

    Raises:
        InputError: For bad input (see ``dosing.session_dose``), or a blank override reason.
    """
    return review(session_dose(entry, request), limits, context, override_reason)


def review(
    session: SessionDose,
    limits: LimitLibrary,
    context: CheckContext | None = None,
    override_reason: str | None = None,
) -> SessionDose:
    """Check a computed session against the limit library and apply an override.

    The second half of :func:`assess`, for a caller that computes a dose once and checks it
    in several contexts (a plan's sessions at the same dose, a batch).

    Args:
        session: The session as :func:`ketadose.dosing.session_dose` computed it.
        limits: The limit library.
        context: Vitals, medications, conditions, previous sessions, session time.
        override_reason: Acknowledges every soft finding (never a hard one).

    Returns:
        The checked session (see :func:`assess`).

    Raises:
        InputError: For a blank override reason or inconsistent previous sessions.
    """
    findings: list[Finding] = list(session.findings)
    if not limits.ref.approved:
        findings.insert(
            0,
            Finding(
                severity=Severity.INFO,
                code="library-unapproved",
                message=f"UNAPPROVED EXAMPLE LIBRARY: limits {limits.ref.name} "
                f"{limits.ref.version} name no approver; a clinic must review and approve them",
            ),
        )
    findings += check(session, limits, context)
    reason = clean_reason(override_reason)
    findings = override(findings, reason)
    outcome = status(findings)
    update: dict[str, object] = {
        "at": None if context is None else context.at,
        "context": context,
        "findings": tuple(findings),
        "status": outcome,
        "library": limits.ref,
        "override_reason": reason,
        "ready": outcome == "ok"
        or (
            outcome == "soft" and all(f.overridden for f in findings if f.severity is Severity.SOFT)
        ),
    }
    if outcome == "hard":
        update["preparation"] = None
        update["phases"] = tuple(
            phase.model_copy(
                update={
                    "pump_rate_ml_per_h": None,
                    "pump_rate_ml_per_h_rounded": None,
                    "volume_ml": None,
                    "drops_per_min": None,
                }
            )
            for phase in session.phases
        )
    return session.model_copy(update=update)


def exit_code(status: Status, ready: bool) -> ExitCode:
    """The documented exit code of a checked result (a session, a plan, a next session).

    Args:
        status: The worst finding's severity.
        ready: Whether it may go ahead (every soft finding overridden).

    Returns:
        4 on a hard finding, 3 on a soft finding not overridden, else 0.
    """
    if status == "hard":
        return ExitCode.HARD_LIMIT
    if not ready:
        return ExitCode.SOFT_LIMIT
    return ExitCode.OK
