"""Who may override what (ketadose.authority), over generated rule tables and findings."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ketadose.authority import (
    CLASSES,
    DEFAULT_RULE,
    ROLES,
    OverrideRule,
    finding_class,
    may_cosign,
    needs_cosign,
    refusals,
    rule_for,
)
from ketadose.errors import ConfigError
from ketadose.limits import load_file, load_library, shipped_bytes
from ketadose.models import Finding, Severity


def soft(parameter: str | None = None, code: str = "limit", overridden: bool = True) -> Finding:
    return Finding(
        severity=Severity.SOFT, code=code, message="m", parameter=parameter, overridden=overridden
    )


def test_a_finding_is_classed_by_its_limit_else_its_code() -> None:
    assert finding_class(soft("series.interval")) == "series"
    assert finding_class(soft("vitals_pre.systolic")) == "vitals_pre"
    assert finding_class(soft(code="medication-unknown")) == "medication"
    assert finding_class(soft(code="questionnaire-safety-unacknowledged")) == "questionnaire"


def test_the_shipped_rules_by_hand() -> None:
    rules = load_library().content.overrides
    dose = soft("session.total_dose_per_kg")
    assert refusals(rules, [dose], "rn", "nurse") == [
        "rn (nurse) may not override a session finding: prescriber may (SITE-POLICY: a dose, "
        "rate or volume past a soft limit is checked by a second clinician before the next "
        "session)"
    ]
    assert refusals(rules, [dose], "dr", "prescriber") == []
    assert needs_cosign(rules, [dose]) and not needs_cosign(rules, [soft("patient.weight")])
    drug = soft(code="medication-unknown")
    assert refusals(rules, [drug], "ph", "pharmacist") == [] and not needs_cosign(rules, [drug])
    assert may_cosign(rules, [dose], "prescriber") and not may_cosign(rules, [dose], "pharmacist")


classes = st.sampled_from((*CLASSES, "default"))
rule = st.builds(
    OverrideRule,
    roles=st.lists(st.sampled_from(ROLES), min_size=1, max_size=4, unique=True).map(tuple),
    cosign=st.booleans(),
)
tables = st.dictionaries(classes, rule, max_size=6)
findings = st.lists(
    st.one_of(
        st.builds(soft, st.sampled_from(CLASSES[:5]).map(lambda s: f"{s}.x"), st.just("limit"),
                  st.booleans()),
        st.builds(soft, st.none(), st.sampled_from(CLASSES[5:]).map(lambda c: f"{c}-x"),
                  st.booleans()),
        st.builds(Finding, severity=st.sampled_from((Severity.HARD, Severity.INFO)),
                  code=st.just("x"), message=st.just("m")),
    ),
    max_size=6,
)  # fmt: skip


@given(tables, findings, st.sampled_from((*ROLES, None)))
def test_a_refusal_names_each_class_whose_rule_leaves_the_role_out(
    table: dict[str, OverrideRule], found: list[Finding], role: str | None
) -> None:
    refused = refusals(table, found, "who", role)
    expected = {
        finding_class(f)
        for f in found
        if f.severity is Severity.SOFT and f.overridden and role not in rule_for(table, f).roles
    }
    assert {line.split(" may not override a ")[1].split(" finding")[0] for line in refused} == (
        expected
    )
    if role is None:  # nobody unregistered overrides anything
        assert bool(refused) == any(f.severity is Severity.SOFT and f.overridden for f in found)


@given(tables, findings)
def test_only_an_override_needs_a_cosignature(
    table: dict[str, OverrideRule], found: list[Finding]
) -> None:
    if needs_cosign(table, found):
        assert any(
            f.severity is Severity.SOFT and f.overridden and rule_for(table, f).cosign
            for f in found
        )
    unoverridden = [f.model_copy(update={"overridden": False}) for f in found]
    assert not needs_cosign(table, unoverridden)
    assert refusals(table, unoverridden, "who", None) == []


@given(tables, findings, st.sampled_from(ROLES))
def test_a_role_added_everywhere_never_refuses_more(
    table: dict[str, OverrideRule], found: list[Finding], role: str
) -> None:
    wider = {
        name: r.model_copy(update={"roles": tuple(dict.fromkeys((*r.roles, role)))})
        for name, r in table.items()
    }
    if "default" not in wider:
        wider["default"] = DEFAULT_RULE.model_copy(update={"roles": ("prescriber", role)})
    assert refusals(wider, found, "who", role) == []


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ('[overrides.sesion]\nroles = ["prescriber"]\n', "overrides.sesion is not a finding class"),
        ('[overrides.session]\nroles = ["surgeon"]\n', "roles"),
        ("[overrides.session]\nroles = []\n", "roles"),
        ('[overrides.session]\nroles = ["nurse", "nurse"]\n', "a role is listed twice"),
        ('[overrides.session]\nroles = ["nurse"]\ncosign = "yes"\n', "cosign"),
    ],
)
def test_a_library_with_a_bad_overrides_table_is_refused(table: str, problem: str) -> None:
    text = shipped_bytes().decode()
    head = text[: text.index("[overrides.default]")]
    with pytest.raises(ConfigError, match=problem):
        load_file((head + table).encode(), "clinic.toml")
