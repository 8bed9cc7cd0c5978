"""Library-approval findings, and how a record of many sessions states them once.

The gate gives every session checked against an unapproved library its approval finding, so
a session on its own still says it (design principle 3). A record of many checked sessions (a
plan, a ``batch`` record) would repeat the same two findings in every session: about three
tenths of a batch record. Such a record states the approval findings that *every* one of its
sessions carries once, in ``library_findings`` beside ``library``, and its sessions' findings
leave them out; an approval finding that not every session carries (approval that differs by
limit profile or session) stays on the sessions that carry it.
"""

from __future__ import annotations

from collections.abc import Sequence

from ketadose.models import Finding

#: The findings that say a library names no approver: the limit library's (from
#: ``ketadose.gate``) and the protocol library's (from ``ketadose.dosing``).
APPROVAL_CODES = frozenset({"library-unapproved", "protocol-library-unapproved"})


def shared_approval(findings: Sequence[Sequence[Finding]]) -> tuple[Finding, ...]:
    """The approval findings every one of the sessions carries, identically.

    Args:
        findings: Each session's findings, in the record's order.

    Returns:
        The approval findings found (equal in every field) in every list, once each, in the
        order of the first list; none for no sessions.
    """
    if not findings:
        return ()
    shared: list[Finding] = []
    for finding in findings[0]:
        if (
            finding.code in APPROVAL_CODES
            and _index(shared, finding) < 0
            and all(_index(others, finding) >= 0 for others in findings[1:])
        ):
            shared.append(finding)
    return tuple(shared)


def _index(findings: Sequence[Finding], finding: Finding) -> int:
    """Where ``finding`` is in ``findings`` (-1: not there), cheaply: a plan asks ~15 times.

    A plan's sessions mostly hold the gate's one finding object, found by identity; other
    findings are compared field by field (their ``__dict__``, as pydantic's ``==`` does for a
    model without private or extra attributes, at a tenth of its cost) only for the same code.
    """
    for at, other in enumerate(findings):
        if other is finding or (other.code == finding.code and other.__dict__ == finding.__dict__):
            return at
    return -1


def without(findings: Sequence[Finding], shared: Sequence[Finding]) -> tuple[Finding, ...]:
    """A session's findings without the record's shared ones, the rest in their order.

    Args:
        findings: The session's findings.
        shared: The record's ``library_findings`` (each found in ``findings``).

    Returns:
        ``findings`` with the first occurrence of each shared finding left out.
    """
    if not shared:
        return tuple(findings)
    left = list(shared)
    kept = []
    for finding in findings:
        at = _index(left, finding) if finding.code in APPROVAL_CODES else -1
        if at >= 0:
            del left[at]
        else:
            kept.append(finding)
    return tuple(kept)
