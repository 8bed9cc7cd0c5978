"""ketadose limits verify: finds what makes a library unusable, with minimal patients."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from jsonschema import Draft202012Validator
from typer.testing import CliRunner

from ketadose import strategies as ks
from ketadose.cli import app
from ketadose.dosing import DoseRequest, at_step
from ketadose.gate import prepare_session
from ketadose.limits import load_file
from ketadose.protocols import load_library
from ketadose.render.schema import schema
from ketadose.verify import verify

ROOT = Path(__file__).resolve().parents[1]
CONTRADICTORY = ROOT / "examples" / "contradictory-limits.toml"
runner = CliRunner()
PROTOCOLS = load_library()


def problems(*args: str) -> tuple[int, list[dict[str, Any]]]:
    result = runner.invoke(app, ["limits", "verify", *args, "--json"])
    data = json.loads(result.stdout)
    Draft202012Validator(schema("verify")).validate(data)
    return result.exit_code, data["problems"]


def find(found: list[dict[str, Any]], **fields: str) -> dict[str, Any]:
    matches = [p for p in found if all(p[k] == v for k, v in fields.items())]
    assert len(matches) == 1, (fields, [p["message"] for p in found])
    return matches[0]


class TestShipped:
    """The shipped example library passes."""

    def test_no_problem(self) -> None:
        result = runner.invoke(app, ["limits", "verify"])
        assert result.exit_code == 0, result.stdout
        assert "21 protocols, 200 patients each (seed 0), 0 problem(s)" in result.stdout


class TestContradictory:
    """Every contradiction planted in examples/contradictory-limits.toml is found (exit 5)."""

    def test_exit_and_summary(self) -> None:
        result = runner.invoke(app, ["limits", "verify", str(CONTRADICTORY)])
        assert result.exit_code == 5
        assert result.stderr.startswith(f"ketadose: {CONTRADICTORY}: ")
        assert "problem(s), first:" in result.stderr

    def test_a_standard_order_refused(self) -> None:
        # 0.5 mg/kg hits the 60 mg hard maximum above 120 kg: the least weight past it, on a
        # 0.1 kg grid, is 120.1 kg (60.05 mg); the 0.75 mg/kg step passes it at 80.1 kg.
        code, found = problems(str(CONTRADICTORY))
        assert code == 5
        first = find(found, protocol="depression", step="programme", parameter="session.total_dose")
        assert first["code"] == "hard-limit-reachable"
        assert first["patient"]["weight_kg"] == 120.1
        assert first["value"] == pytest.approx(60.05)
        assert first["limit"] == 60
        step = find(
            found,
            protocol="depression",
            step="escalation from session 4",
            parameter="session.total_dose",
        )
        assert step["patient"]["weight_kg"] == 80.1
        assert step["patient"]["height_cm"] is None  # shrunk: only what the problem needs

    def test_soft_above_hard(self) -> None:
        _, found = problems(str(CONTRADICTORY))
        soft = find(found, protocol="depression", code="soft-above-hard")
        assert soft["patient"]["weight_kg"] == 60  # 60 mg / 1 mg/kg
        assert "refusal comes before the warning" in soft["message"]

    def test_never_within(self) -> None:
        _, found = problems(str(CONTRADICTORY))
        cap = find(found, protocol="crps", parameter="session.rate")
        assert cap["code"] == "never-within"
        assert cap["value"] == pytest.approx(0.35 * 45)  # the lightest plausible patient
        assert cap["limit"] == 10

    def test_schedule_impossible(self) -> None:
        _, found = problems(str(CONTRADICTORY))
        interval = find(found, protocol="depression", code="schedule-impossible")
        assert interval["value"] == 96 * 60
        assert interval["limit"] == 7 * 24 * 60 / 2  # 2 a week at least: 84 h apart

    def test_deterministic(self) -> None:
        one = runner.invoke(app, ["limits", "verify", str(CONTRADICTORY), "--seed", "7", "--json"])
        two = runner.invoke(app, ["limits", "verify", str(CONTRADICTORY), "--seed", "7", "--json"])
        assert one.stdout == two.stdout
        # Shrinking makes the counterexamples canonical: another seed finds the same ones.
        other = runner.invoke(
            app, ["limits", "verify", str(CONTRADICTORY), "--seed", "8", "--json"]
        )
        assert json.loads(other.stdout)["problems"] == json.loads(one.stdout)["problems"]

    def test_examples_are_bounded(self) -> None:
        result = runner.invoke(app, ["limits", "verify", "--examples", "0"])
        assert result.exit_code == 2
        assert "--examples 0" in result.stderr


class TestCounterexamples:
    """For random libraries, every reported patient really shows the problem."""

    @settings(max_examples=25, deadline=None)
    @given(ks.limit_tables())
    def test_counterexamples_reproduce(self, tables: ks.LimitTables) -> None:
        limits = load_file(ks.limits_toml(tables).encode(), "generated.toml")
        result = verify(PROTOCOLS, limits, examples=10, seed=1)
        for problem in result.problems:
            if problem.code not in ("hard-limit-reachable", "never-within"):
                continue
            entry = PROTOCOLS.get_protocol(problem.protocol)
            steps = {
                f"escalation from session {s.from_session}": s for s in entry.protocol.escalation
            }
            assert problem.patient is not None
            request = at_step(DoseRequest(patient=problem.patient), steps.get(problem.step))
            findings = prepare_session(entry, request, limits).findings
            assert problem.parameter in {f.parameter for f in findings if f.severity == "hard"}

    def test_an_unreachable_hard_limit_is_no_problem(self) -> None:
        text = (
            '[library]\nname = "roomy"\nversion = "1"\n'
            '[profiles.default.session.total_dose]\nupper_hard = "1000 mg"\n'
            'source = "site policy"\nevidence = "SITE-POLICY"\n'
        )
        limits = load_file(text.encode(), "roomy.toml")
        assert verify(PROTOCOLS, limits, examples=20).problems == ()
