"""Migraine as one continuous inpatient titration: the data, next_rate, plan and simulate."""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from pydantic import ValidationError
from typer.testing import CliRunner

from ketadose.cli import app
from ketadose.dosing import DoseRequest
from ketadose.errors import InputError
from ketadose.limits import load_library as load_limits
from ketadose.models import Patient
from ketadose.planning import PlanRequest, plan
from ketadose.protocols import Protocol, load_library
from ketadose.render.schema import schema
from ketadose.titration import EPSILON, ladder, next_rate

runner = CliRunner()
PROTOCOLS = load_library()
LIMITS = load_limits()
MIGRAINE = PROTOCOLS["migraine"].protocol
T0 = datetime(2026, 11, 30, 9, 0, tzinfo=ZoneInfo("Europe/Berlin"))
PLAN = ("plan", "-p", "migraine", "--weight", "70kg", "--start", "2026-11-30")


def hours(h: float) -> datetime:
    return T0 + timedelta(hours=h)


def decide(
    rate: float = 0.1,
    *,
    at_h: float = 4,
    last_h: float = 0,
    scores: Sequence[tuple[float, float]] = (),
    tolerated: bool = True,
    min_interval: timedelta | None = None,
    protocol: Protocol = MIGRAINE,
) -> Any:
    return next_rate(
        protocol,
        started=T0,
        at=hours(at_h),
        current_rate_mg_per_kg_h=rate,
        last_step_at=hours(last_h),
        pain_scores=[(hours(h), score) for h, score in scores],
        tolerated=tolerated,
        min_interval=min_interval,
    )


def plan_json(*args: str, code: int = 0) -> dict[str, Any]:
    result = runner.invoke(app, [*PLAN, *args, "--json"])
    assert result.exit_code == code, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    Draft202012Validator(schema("plan")).validate(data)
    return data


class TestData:
    """Migraine is one stay with a sourced titration; the schema refuses a bad one."""

    def test_one_stay_no_session_steps(self) -> None:
        assert MIGRAINE.series.sessions == 1
        assert MIGRAINE.escalation == ()
        assert MIGRAINE.response is not None and MIGRAINE.response.target_max == 3

    def test_titration_numbers(self) -> None:
        titration = MIGRAINE.titration
        assert titration is not None
        assert (titration.start.rate.value, titration.step.rate.value) == (0.1, 0.1)
        assert (titration.interval.low.value, titration.interval.high.value) == (180, 240)
        assert titration.maximum.rate.value == 1.0
        assert (titration.target.score_max, titration.target.hold.value) == (3, 480)
        assert titration.stay.maximum.value == 9 * 24 * 60
        assert "Lauritsen" in titration.source and titration.evidence == "HIGH"
        assert "Pomeroy" in titration.maximum.source and titration.maximum.evidence == "MED"

    def test_rungs_carry_their_evidence(self) -> None:
        assert MIGRAINE.titration is not None
        rungs = ladder(MIGRAINE.titration, 240)
        assert [r.rate_mg_per_kg_h for r in rungs] == pytest.approx([n / 10 for n in range(1, 11)])
        assert [r.at_min for r in rungs] == [240 * n for n in range(10)]
        assert [r.evidence for r in rungs] == (
            ["HIGH"] * 4 + ["MED"] * 3 + ["COMPUTED", "COMPUTED"] + ["MED"]
        )

    def test_interval_shorter_than_the_source_is_refused(self) -> None:
        assert MIGRAINE.titration is not None
        with pytest.raises(InputError, match="shortest interval"):
            ladder(MIGRAINE.titration, 120)

    @pytest.mark.parametrize(
        ("path", "value", "message"),
        [
            (("step", "rate"), "0 mg/kg/h", "greater than zero"),
            (("maximum", "rate"), "0.05 mg/kg/h", "at or above its start"),
            (("interval", "low"), "5 h", "low <= high"),
            (("start", "rate"), "7 mg/h", "per kg"),
            (("target", "score_max"), 10, "below the top of the scale"),
        ],
    )
    def test_invalid_titration_is_a_config_error(
        self, path: tuple[str, str], value: object, message: str
    ) -> None:
        document = MIGRAINE.model_dump(mode="json", exclude_none=True)
        document["titration"][path[0]][path[1]] = value
        if path == ("start", "rate"):
            document["phases"][0]["rate"] = value
        with pytest.raises(ValidationError, match=message):
            _load(document)

    def test_titration_with_session_steps_is_refused(self) -> None:
        document = MIGRAINE.model_dump(mode="json", exclude_none=True)
        document["series"]["sessions"] = 10
        with pytest.raises(ValidationError, match="one stay"):
            _load(document)


def _load(protocol: dict[str, Any]) -> None:
    Protocol.model_validate(protocol)


class TestNextRate:
    """next_rate, worked by hand on the migraine titration (Lauritsen 2016)."""

    def test_step_up_after_the_interval_with_pain_above_target(self) -> None:
        step = decide(0.1, at_h=3, scores=[(2.5, 6)])
        assert (step.action, step.rule) == ("step-up", "step-up")
        assert step.rate_mg_per_kg_h == pytest.approx(0.2)
        assert "Lauritsen" in step.source and step.evidence == "HIGH"

    def test_not_before_the_interval(self) -> None:
        step = decide(0.2, at_h=5, last_h=3, scores=[(4.5, 7)])
        assert (step.action, step.rule, step.rate_mg_per_kg_h) == ("hold", "interval", 0.2)
        assert step.not_before == hours(6)

    def test_the_callers_longer_interval_is_kept(self) -> None:
        step = decide(0.1, at_h=3.5, scores=[(3, 7)], min_interval=timedelta(hours=4))
        assert (step.action, step.rule) == ("hold", "interval")
        assert step.not_before == hours(4)

    def test_a_shorter_interval_than_the_source_is_not_taken(self) -> None:
        step = decide(0.1, at_h=2, scores=[(1.5, 7)], min_interval=timedelta(hours=1))
        assert step.rule == "interval"

    def test_no_score_since_the_last_step_holds(self) -> None:
        step = decide(0.3, at_h=10, last_h=6, scores=[(5, 8), (6, 8)])
        assert (step.action, step.rule, step.rate_mg_per_kg_h) == ("hold", "no-score", 0.3)

    def test_at_target_holds(self) -> None:
        step = decide(0.3, at_h=10, last_h=6, scores=[(9, 3)])
        assert (step.action, step.rule, step.rate_mg_per_kg_h) == ("hold", "at-target", 0.3)
        assert step.target_since == hours(9)

    def test_target_held_for_8_hours_is_reached(self) -> None:
        scores = [(5, 6), (7, 3), (11, 2), (15, 3)]
        step = decide(0.3, at_h=15, last_h=4, scores=scores)
        assert (step.action, step.rule, step.rate_mg_per_kg_h) == (
            "target-reached",
            "target-held",
            0.3,
        )
        assert step.target_since == hours(7)

    def test_target_lost_resumes_stepping(self) -> None:
        step = decide(0.3, at_h=16, last_h=4, scores=[(7, 3), (14, 3), (15.5, 5)])
        assert (step.action, step.rate_mg_per_kg_h) == ("step-up", pytest.approx(0.4))

    def test_not_tolerated_reduces_one_step(self) -> None:
        step = decide(0.4, at_h=13, last_h=12, scores=[(12.5, 8)], tolerated=False)
        assert (step.action, step.rule) == ("reduce", "not-tolerated")
        assert step.rate_mg_per_kg_h == pytest.approx(0.3)
        assert "hallucination" in step.source

    def test_not_tolerated_at_the_start_rate_stops(self) -> None:
        step = decide(0.1, at_h=1, scores=[(0.5, 9)], tolerated=False)
        assert (step.action, step.rate_mg_per_kg_h) == ("stop", 0.0)

    def test_at_the_maximum_holds(self) -> None:
        step = decide(1.0, at_h=40, last_h=36, scores=[(39, 7)])
        assert (step.action, step.rule, step.rate_mg_per_kg_h) == ("hold", "maximum", 1.0)

    def test_never_past_the_maximum(self) -> None:
        step = decide(0.95, at_h=40, last_h=36, scores=[(39, 7)])
        assert step.rate_mg_per_kg_h == pytest.approx(1.0)

    def test_above_the_maximum_reduces_to_it(self) -> None:
        step = decide(1.2, at_h=40, last_h=36, scores=[(39, 7)])
        assert (step.action, step.rule, step.rate_mg_per_kg_h) == ("reduce", "above-maximum", 1)

    def test_the_longest_stay_stops(self) -> None:
        step = decide(0.5, at_h=9 * 24, last_h=200, scores=[(210, 6)])
        assert (step.action, step.rule, step.rate_mg_per_kg_h) == ("stop", "maximum-stay", 0)

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"scores": [(3, 11)]}, "runs from 0 to 10"),
            ({"scores": [(5, 6)], "at_h": 4}, "after the decision"),
            ({"at_h": 1, "last_h": 2}, "before the last step"),
            ({"rate": 0}, "above 0"),
        ],
    )
    def test_bad_input_is_refused(self, kwargs: dict[str, Any], message: str) -> None:
        with pytest.raises(InputError, match=message):
            decide(**kwargs)

    def test_naive_time_is_refused(self) -> None:
        with pytest.raises(InputError):
            next_rate(
                MIGRAINE,
                started=datetime(2026, 11, 30, 9),
                at=hours(4),
                current_rate_mg_per_kg_h=0.1,
                last_step_at=T0,
                pain_scores=[],
                tolerated=True,
            )

    def test_a_protocol_without_titration_is_refused(self) -> None:
        with pytest.raises(InputError, match="not a continuous titration"):
            decide(protocol=PROTOCOLS["depression"].protocol)


RUNGS = [n / 10 for n in range(1, 11)]


@st.composite
def situations(draw: st.DrawFn) -> dict[str, Any]:
    last = draw(st.floats(0, 100))
    at = last + draw(st.floats(0, 30))
    scores = draw(st.lists(st.tuples(st.floats(0, at), st.integers(0, 10).map(float)), max_size=6))
    rate = draw(st.sampled_from(RUNGS) | st.floats(0.01, 1.3))
    return {
        "rate": rate,
        "at_h": at,
        "last_h": last,
        "scores": scores,
        "tolerated": draw(st.booleans()),
    }


class TestProperties:
    """Whatever the situation: one step at most, never above the maximum, never up unearned."""

    @given(situations())
    def test_invariants(self, case: dict[str, Any]) -> None:
        step = decide(**case)
        current = case["rate"]
        assert step.rate_mg_per_kg_h - current <= 0.1 + EPSILON  # never more than one step
        if current <= 1.0 + EPSILON:
            assert step.rate_mg_per_kg_h <= 1.0 + EPSILON  # never above the maximum
        since_step = [s for h, s in case["scores"] if h > case["last_h"]]
        if not case["tolerated"] or not since_step:
            assert step.rate_mg_per_kg_h <= current + EPSILON  # never up unearned
        if step.action in ("hold", "target-reached"):
            assert step.rate_mg_per_kg_h == current  # hold never changes the rate
            assert not step.changes_rate
        if step.action == "step-up":
            assert case["tolerated"] and since_step
            assert step.rate_mg_per_kg_h > current
        assert step.rule and step.source and step.evidence


class TestPlan:
    """plan -p migraine: one stay, rungs every 4 h, each through the gate (70 kg by hand)."""

    def test_hand_worked_70kg(self) -> None:
        data = plan_json()
        sessions = data["sessions"]
        # 0.1 mg/kg/h x 70 kg = 7 mg/h at 0 h; 0.2 = 14 mg/h at 4 h; ... 1 mg/kg/h = 70 mg/h.
        assert [s["phases"][0]["rate_mg_per_h"] for s in sessions] == [7 * n for n in range(1, 11)]
        assert [s["phases"][0]["rate_mg_per_kg_per_h"] for s in sessions] == pytest.approx(RUNGS)
        # Each rung's 4 h in its own 100 mL bag: 25 mL/h; 7 x 4 = 28 mg = 0.28 mg/mL.
        assert {s["phases"][0]["pump_rate_ml_per_h_rounded"] for s in sessions} == {25}
        assert sessions[0]["preparation"]["final_mg_per_ml"] == 0.28
        assert sessions[1]["total_dose_mg"] == 56  # 14 mg/h x 4 h
        assert sessions[-1]["accumulated_dose_mg"] == 1540  # 28 x (1 + ... + 10)
        # Admission 09:00, 20 min intake, then a rung every 4 h of elapsed time.
        starts = [datetime.fromisoformat(s["start"]) for s in sessions]
        assert starts[0] == T0 + timedelta(minutes=20)
        assert all(b - a == timedelta(hours=4) for a, b in itertools.pairwise(starts))
        assert {s["status"] for s in sessions} == {"ok"}
        stay = data["titration"]
        assert [r["at_h"] for r in stay["rungs"]] == [4 * n for n in range(10)]
        assert stay["interval_min"] == 240 and "limit library" in stay["interval"]
        assert stay["stopped"] is None
        assert [r["evidence"] for r in stay["rungs"]][7:9] == ["COMPUTED", "COMPUTED"]
        assert data["escalation"] == [] and data["status"] == "ok"

    def test_every_rung_is_checked_in_the_stay(self) -> None:
        # The rungs before each one are its history: 24-h total and escalation step checked.
        result = plan(
            PROTOCOLS["migraine"],
            PlanRequest(
                dose=DoseRequest(patient=Patient(weight_kg=70)),
                start=date(2026, 11, 30),
                zone=UTC,
            ),
            LIMITS,
        )
        assert result.titration is not None
        assert len(result.sessions) == len(result.titration.rungs) == 10
        assert all(s.ready for s in result.sessions)

    def test_a_hard_limit_stops_the_ladder_with_the_reason(self) -> None:
        # 120 kg: 1 mg/kg/h x 120 kg x 4 h = 480 mg > the 460 mg hard maximum; 0.9 = 432 mg.
        data = plan_json("--weight", "120kg", code=3)  # 3: 120 kg is past the soft weight
        rates = [s["phases"][0]["rate_mg_per_kg_per_h"] for s in data["sessions"]]
        assert rates == pytest.approx(RUNGS[:9])
        assert "hard" not in {s["status"] for s in data["sessions"]}
        stopped = data["titration"]["stopped"]
        assert "stops at 0.9 mg/kg/h" in stopped and "480 mg" in stopped and "460 mg" in stopped

    def test_a_refused_first_rung_refuses_the_plan(self) -> None:
        data = plan_json("--weight", "400kg", code=4)
        (session,) = data["sessions"]
        assert session["status"] == "hard"
        assert session["phases"][0]["pump_rate_ml_per_h"] is None
        assert data["titration"]["stopped"].startswith("the first rung is refused")

    @pytest.mark.parametrize(
        ("option", "message"),
        [
            (("--sessions", "10"), "one inpatient stay"),
            (("--per-week", "3"), "one inpatient stay"),
            (("--rate", "0.5mg/kg/h"), "titration"),
        ],
    )
    def test_series_options_are_refused(self, option: tuple[str, str], message: str) -> None:
        result = runner.invoke(app, [*PLAN, *option])
        assert result.exit_code == 2
        assert message in result.stderr

    def test_table(self) -> None:
        result = runner.invoke(app, list(PLAN))
        assert result.exit_code == 0, result.stderr
        assert "one inpatient stay, 10 rungs" in result.stdout
        assert "Titration from Mon 2026-11-30 09:20" in result.stdout
        assert "COMPUTED" in result.stdout

    def test_other_plans_have_no_titration_key(self) -> None:
        result = runner.invoke(
            app, ["plan", "-p", "depression", "--weight", "70kg", "--start", "2026-11-30", "--json"]
        )
        assert "titration" not in json.loads(result.stdout)


class TestSimulate:
    """simulate -p migraine: the rungs as one stepped infusion, exact for constant rates."""

    def test_two_steps_against_a_hand_computed_one_compartment_curve(self) -> None:
        args = ["simulate", "-p", "migraine", "--weight", "70kg", "--model", "kamp"]
        result = runner.invoke(app, [*args, "--until", "480min", "--step", "60min", "--json"])
        assert result.exit_code == 0, result.stderr
        data = json.loads(result.stdout)
        Draft202012Validator(schema("simulate")).validate(data)
        at = {p["time_min"]: p["concentration_ng_per_ml"] for p in data["series"]}
        # Kamp: V = 252 L, CL = 79 L/h = 1.3167 L/min, k = CL / V. 7 mg/h for 240 min, then
        # 14 mg/h: C = R / CL (1 - e^-kt), superposed.
        clearance = 79 / 60
        decay = math.exp(-clearance / 252 * 240)
        first = 7 / 60 / clearance * (1 - decay) * 1000
        second = first * decay + 14 / 60 / clearance * (1 - decay) * 1000
        assert at[240] == pytest.approx(first, abs=1e-4)
        assert at[480] == pytest.approx(second, abs=1e-4)
        assert (round(first, 2), round(second, 2)) == (63.32, 144.71)
        schedule = data["schedule"]
        assert [(s["start_min"], s["rate_mg_per_h"]) for s in schedule[:2]] == [(0, 7), (240, 14)]
        assert len(schedule) == 10 and schedule[-1]["end_min"] == 2400
        assert data["discharge_min"] is None

    def test_text_shows_the_schedule(self) -> None:
        result = runner.invoke(app, ["simulate", "-p", "migraine", "--weight", "70kg"])
        assert result.exit_code == 0, result.stderr
        # The text wraps at the terminal's width (never inside a number and its unit).
        words = " ".join(result.stdout.split())
        assert "one stay, 10 rung(s) of one continuous infusion" in words
        assert "240 min to 480 min: 14 mg/h (0.2 mg/kg/h)" in result.stdout

    def test_sessions_have_no_schedule(self) -> None:
        result = runner.invoke(app, ["simulate", "-p", "depression", "--weight", "70kg", "--json"])
        assert "schedule" not in json.loads(result.stdout)


class TestMarkdown:
    """The Markdown plan of a stay says so, with each rung's rate, time and evidence."""

    def test_stay_lines(self) -> None:
        result = runner.invoke(app, [*PLAN, "--format", "markdown"])
        assert result.exit_code == 0, result.stderr
        assert "one inpatient stay, 10 rungs of one continuous infusion" in result.stdout
        assert "0.8 mg/kg/h from 28 h [COMPUTED]" in result.stdout
