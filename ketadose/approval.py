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

from collections.abc import Collection, Sequence

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
    first = dict.fromkeys(f for f in findings[0] if f.code in APPROVAL_CODES)
    return tuple(f for f in first if all(f in others for others in findings[1:]))


def without(findings: Sequence[Finding], shared: Collection[Finding]) -> tuple[Finding, ...]:
    """A session's findings without the record's shared ones, the rest in their order.

    Args:
        findings: The session's findings.
        shared: The record's ``library_findings`` (each found in ``findings``).

    Returns:
        ``findings`` with the first occurrence of each shared finding left out.
    """
    if not shared:
        return tuple(findings)
    left = set(shared)
    kept = []
    for finding in findings:
        if finding in left:
            left.discard(finding)
        else:
            kept.append(finding)
    return tuple(kept)


def slim(
    findings: Sequence[Sequence[Finding]],
) -> tuple[tuple[Finding, ...], tuple[tuple[Finding, ...], ...]]:
    """A record's findings stated once: the shared approval findings, and each session's rest.

    Args:
        findings: Each session's findings, in the record's order.

    Returns:
        The record's ``library_findings`` and each session's findings without them.
    """
    shared = shared_approval(findings)
    return shared, tuple(without(each, shared) for each in findings)
