"""A checked session: the dose, every limit finding, overrides, and whether it may go ahead.

This is what every command that shows a dose runs: no dose leaves ketadose unchecked.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from ketadose.dosing import DoseRequest, session_dose
from ketadose.errors import ExitCode
from ketadose.limits import (
    LimitLibrary,
    check,
    check_predicted_peak,
    clean_reason,
    override,
    status,
)
from ketadose.models import (
    CheckContext,
    Finding,
    LibraryRef,
    PhaseDose,
    SessionDose,
    Severity,
    Status,
)
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


@dataclass(frozen=True, slots=True)
class Verdict:
    """What checking a session decided.

    Attributes:
        findings: Every finding, overrides applied.
        status: The worst severity.
        ready: Whether the session may go ahead (no hard finding, every soft one overridden).
        override_reason: The reason as recorded.
    """

    findings: tuple[Finding, ...]
    status: Status
    ready: bool
    override_reason: str | None


def verdict(
    session: SessionDose,
    limits: LimitLibrary,
    context: CheckContext | None = None,
    override_reason: str | None = None,
    *,
    dose_findings: list[Finding] | None = None,
    predicted_peak: float | None = None,
) -> Verdict:
    """Check a computed session against the limit library and apply an override.

    Args:
        session: The session as :func:`ketadose.dosing.session_dose` computed it.
        limits: The limit library.
        context: Vitals, medications, conditions, previous sessions, session time.
        override_reason: Acknowledges every soft finding (never a hard one).
        dose_findings: ``limits.check_dose(session, limits)``, computed once by a caller that
            checks one session in several contexts (a plan's sessions at one dose).
        predicted_peak: The session's predicted plasma peak with what earlier sessions left
            (a plan); without it, and where the library limits the peak, the session's own.

    Returns:
        The findings, status and readiness.

    Raises:
        InputError: For a blank override reason or inconsistent previous sessions.
    """
    findings: list[Finding] = list(session.findings)
    if not limits.ref.approved:
        findings.insert(0, _unapproved(limits.ref))
    findings += check(session, limits, context, dose_findings=dose_findings)
    if limits.limit(session.protocol.id, "session", "predicted_peak") is not None:
        peak = predicted_peak if predicted_peak is not None else _own_peak(session)
        if peak is not None:
            findings += check_predicted_peak(limits, session.protocol.id, peak)
    reason = clean_reason(override_reason)
    findings = override(findings, reason)
    outcome = status(findings)
    ready = outcome == "ok" or (
        outcome == "soft" and all(f.overridden for f in findings if f.severity is Severity.SOFT)
    )
    return Verdict(tuple(findings), outcome, ready, reason)


def _own_peak(session: SessionDose) -> float | None:
    """A session's predicted plasma peak on its own (default PK model), or None."""
    from ketadose.pk import DEFAULT_MODEL, MODELS, peaks, session_infusions

    weight = session.patient.weight_kg
    if session.protocol.route != "iv" or weight is None:
        return None
    return peaks(MODELS[DEFAULT_MODEL], weight, [session_infusions(session.phases)])[0]


@functools.lru_cache(maxsize=8)
def _unapproved(ref: LibraryRef) -> Finding:
    """The finding every check against an unapproved limit library carries (made once)."""
    return Finding(
        severity=Severity.INFO,
        code="library-unapproved",
        message=f"UNAPPROVED EXAMPLE LIBRARY: limits {ref.name} {ref.version} name no "
        "approver; a clinic must review and approve them",
    )


def withheld(phases: tuple[PhaseDose, ...]) -> tuple[PhaseDose, ...]:
    """The phases without their pump programme: what a session past a hard limit shows.

    Args:
        phases: The computed phases.

    Returns:
        The phases with pump rate, volume and drops set to None.
    """
    blank = {
        "pump_rate_ml_per_h": None,
        "pump_rate_ml_per_h_rounded": None,
        "volume_ml": None,
        "drops_per_min": None,
    }
    return tuple(phase.model_copy(update=blank) for phase in phases)


def review(
    session: SessionDose,
    limits: LimitLibrary,
    context: CheckContext | None = None,
    override_reason: str | None = None,
) -> SessionDose:
    """Check a computed session against the limit library and apply an override.

    The second half of :func:`assess`.

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
    decided = verdict(session, limits, context, override_reason)
    update: dict[str, object] = {
        "at": None if context is None else context.at,
        "context": context,
        "findings": decided.findings,
        "status": decided.status,
        "library": limits.ref,
        "override_reason": decided.override_reason,
        "ready": decided.ready,
    }
    if decided.status == "hard":
        update["preparation"] = None
        update["phases"] = withheld(session.phases)
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
