"""Who may override what: clinicians' roles, and the overrides that need a second clinician.

A limit library says, per finding class, which roles may override a soft finding and whether
the override needs an **independent second clinician** (``[overrides]``; nobody overrides a
hard finding). A finding's class is its limit's section (``session``, ``patient``, ``series``,
``vitals_pre``, ``vitals_during``) or, for a screening or decision finding without a limit,
the first word of its code (``medication``, ``condition``, ``questionnaire``, ``next``).
``default`` covers every class not named.

Pure: who is acting, and their role, come from the store (authenticated there); here only
the rule and the findings meet.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

from pydantic import Field, StrictBool, field_validator

from ketadose.libfile import Strict
from ketadose.models import Finding, Severity

Role = Literal["nurse", "prescriber", "pharmacist", "admin"]

#: The roles, in the order they are listed.
ROLES: tuple[Role, ...] = ("nurse", "prescriber", "pharmacist", "admin")

#: What a signature means (21 CFR 11.50(a)(3)): each signature records one.
Meaning = Literal["prescribed", "administered", "witnessed", "co-signed"]
MEANINGS: tuple[Meaning, ...] = ("prescribed", "administered", "witnessed", "co-signed")

#: The classes an ``[overrides]`` table may name, besides ``default``.
CLASSES = (
    "session",
    "patient",
    "series",
    "vitals_pre",
    "vitals_during",
    "medication",
    "condition",
    "questionnaire",
    "next",
)


class OverrideRule(Strict):
    """Who may override the soft findings of one class, and whether a second must co-sign."""

    roles: tuple[Role, ...] = Field(min_length=1)
    cosign: StrictBool = False
    source: str = Field(default="SITE-POLICY", min_length=1)

    @field_validator("roles")
    @classmethod
    def _distinct(cls, roles: tuple[Role, ...]) -> tuple[Role, ...]:
        if len(set(roles)) != len(roles):
            raise ValueError("a role is listed twice")
        return roles


#: A library without ``[overrides]``: a prescriber overrides, nobody co-signs.
DEFAULT_RULE = OverrideRule(roles=("prescriber",))


def check_classes(overrides: Mapping[str, OverrideRule]) -> None:
    """Refuse an ``[overrides]`` table naming a class no finding has (a typo would be ignored).

    Raises:
        ValueError: For an unknown class.
    """
    for name in overrides:
        if name != "default" and name not in CLASSES:
            raise ValueError(
                f"overrides.{name} is not a finding class; the classes are default, "
                + ", ".join(CLASSES)
            )


def finding_class(finding: Finding) -> str:
    """A finding's class: its limit's section, else the first word of its code."""
    if finding.parameter:
        return finding.parameter.split(".", 1)[0]
    return finding.code.split("-", 1)[0]


def rule_for(overrides: Mapping[str, OverrideRule], finding: Finding) -> OverrideRule:
    """The rule for one finding: its class's, else the library's default, else the built-in."""
    return overrides.get(finding_class(finding)) or overrides.get("default") or DEFAULT_RULE


def overridden(findings: Iterable[Finding]) -> list[Finding]:
    """The soft findings a run overrides."""
    return [f for f in findings if f.severity is Severity.SOFT and f.overridden]


def refusals(
    overrides: Mapping[str, OverrideRule], findings: Sequence[Finding], who: str, role: str | None
) -> list[str]:
    """Why ``who`` (with ``role``; None: not registered) may not override these findings.

    Returns:
        One line per class refused (empty: every override is theirs to make).
    """
    refused: dict[str, OverrideRule] = {}
    for finding in overridden(findings):
        rule = rule_for(overrides, finding)
        if role is None or role not in rule.roles:
            refused.setdefault(finding_class(finding), rule)
    acting = f"{who} ({role})" if role is not None else f"{who} (not a registered clinician)"
    return [
        f"{acting} may not override a {name} finding: {' or '.join(rule.roles)} may ({rule.source})"
        for name, rule in refused.items()
    ]


def needs_cosign(overrides: Mapping[str, OverrideRule], findings: Sequence[Finding]) -> bool:
    """Whether an override among these findings needs an independent second clinician."""
    return any(rule_for(overrides, f).cosign for f in overridden(findings))


def may_cosign(
    overrides: Mapping[str, OverrideRule], findings: Sequence[Finding], role: str
) -> bool:
    """Whether a clinician of ``role`` may co-sign these overrides: a role that may make them."""
    return all(role in rule_for(overrides, f).roles for f in overridden(findings))
