"""Tests for ketadose.planning and `ketadose plan`: dates worked by hand, checks, timeline, cost."""

from __future__ import annotations

import itertools
import json
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from ketadose.cli import app
from ketadose.dosing import DoseRequest
from ketadose.errors import InputError
from ketadose.inputs import closed_days
from ketadose.libfile import Quantity
from ketadose.limits import load_library as load_limits
from ketadose.models import Patient
from ketadose.planning import PlanRequest, parse_days, plan
from ketadose.protocols import load_library
from ketadose.units import Kind

ZONE = ZoneInfo("Europe/Berlin")

PROTOCOLS = load_library()
LIMITS = load_limits()
MONDAY = date(2026, 11, 30)


def days_of(protocol_id: str, **options: object) -> list[str]:
    request = PlanRequest(
        zone=ZONE,
        dose=DoseRequest(patient=Patient(weight_kg=80)),
        start=MONDAY,
        **options,  # type: ignore[arg-type]
    )
    return [s.date.isoformat() for s in plan(PROTOCOLS[protocol_id], request, LIMITS).sessions]


class TestDates:
    """Dates worked out by hand from the protocol, the limits and the calendar."""

    def test_depression_three_a_week_on_weekdays(self) -> None:
        # 3 a week (protocol 2-3), at least 40 h apart (limit soft minimum), Mon-Fri
        assert days_of("depression") == [
            "2026-11-30",
            "2026-12-02",
            "2026-12-04",
            "2026-12-07",
            "2026-12-09",
            "2026-12-11",
        ]

    def test_weekend_start_moves_to_monday(self) -> None:
        request = PlanRequest(
            zone=ZONE, dose=DoseRequest(patient=Patient(weight_kg=80)), start=date(2026, 11, 28)
        )
        first = plan(PROTOCOLS["depression"], request, LIMITS).sessions[0]
        assert first.date == MONDAY

    def test_closed_day_is_skipped_and_the_gap_kept(self) -> None:
        # Wed 2 closed -> Thu 3 (72 h); Fri 4 is only 24 h after -> Mon 7
        assert days_of("depression", closed=frozenset({date(2026, 12, 2)})) == [
            "2026-11-30",
            "2026-12-03",
            "2026-12-07",
            "2026-12-09",
            "2026-12-11",
            "2026-12-14",
        ]

    def test_public_holidays(self) -> None:
        # US: Fri 25 Dec 2026 and Fri 1 Jan 2027 are holidays
        start = date(2026, 12, 21)
        request = PlanRequest(
            zone=ZONE,
            dose=DoseRequest(patient=Patient(weight_kg=80)),
            start=start,
            closed=closed_days([], "US", start),
        )
        dates = [
            s.date.isoformat() for s in plan(PROTOCOLS["depression"], request, LIMITS).sessions
        ]
        assert dates == [
            "2026-12-21",
            "2026-12-23",
            "2026-12-28",
            "2026-12-30",
            "2027-01-04",
            "2027-01-06",
        ]

    def test_chosen_days(self) -> None:
        assert days_of("depression", days=parse_days("mon,thu"), per_week=2) == [
            "2026-11-30",
            "2026-12-03",
            "2026-12-07",
            "2026-12-10",
            "2026-12-14",
            "2026-12-17",
        ]

    def test_crps_daily_including_weekends(self) -> None:
        dates = days_of("crps")
        assert dates == [(MONDAY + timedelta(days=i)).isoformat() for i in range(10)]

    def test_sessions_option(self) -> None:
        assert len(days_of("depression", sessions=2)) == 2

    def test_per_week_above_the_limit_library_is_refused(self) -> None:
        with pytest.raises(InputError, match="above the 3 sessions in 7 days"):
            days_of("depression", per_week=5)

    def test_a_series_that_cannot_fit_is_refused(self) -> None:
        everything = frozenset(MONDAY + timedelta(days=i) for i in range(400))
        with pytest.raises(InputError, match="cannot fit 6 sessions into a year"):
            days_of("depression", closed=everything)

    @pytest.mark.parametrize("text", ["", "monday", "mon,xyz"])
    def test_bad_days(self, text: str) -> None:
        with pytest.raises(InputError):
            parse_days(text)

    def test_unknown_country(self) -> None:
        with pytest.raises(InputError, match="not a country"):
            closed_days([], "XX", MONDAY)


class TestEverySessionChecked:
    """Each session goes through the checker with the sessions before it as history."""

    def test_accumulated_dose(self) -> None:
        request = PlanRequest(
            zone=ZONE, dose=DoseRequest(patient=Patient(weight_kg=80)), start=MONDAY
        )
        result = plan(PROTOCOLS["depression"], request, LIMITS)
        assert [s.accumulated_dose_mg for s in result.sessions] == pytest.approx(
            [40, 80, 120, 160, 200, 240]
        )
        assert result.accumulated_dose_mg == pytest.approx(240)
        assert result.status == "ok"
        assert result.ready is True

    def test_hard_dose_refuses_the_plan_but_shows_it(self) -> None:
        dose = Quantity(Kind.DOSE_PER_KG, 1.8, "1.8mg/kg")
        request = PlanRequest(
            zone=ZONE, dose=DoseRequest(patient=Patient(weight_kg=80), dose=dose), start=MONDAY
        )
        result = plan(PROTOCOLS["depression"], request, LIMITS)
        assert result.status == "hard"
        assert len(result.sessions) == 6
        assert all(s.status == "hard" for s in result.sessions)
        assert all(p.pump_rate_ml_per_h is None for s in result.sessions for p in s.phases)

    def test_escalation_is_stated_as_a_condition(self) -> None:
        request = PlanRequest(
            zone=ZONE, dose=DoseRequest(patient=Patient(weight_kg=80)), start=MONDAY
        )
        result = plan(PROTOCOLS["depression"], request, LIMITS)
        assert [s.condition is None for s in result.sessions] == [
            True,
            True,
            True,
            False,
            False,
            False,
        ]
        assert result.sessions[3].condition is not None
        assert result.sessions[3].condition.startswith("from session 4: 0.75 mg/kg over 45 min if")
        assert all(
            s.total_dose_mg == pytest.approx(40) for s in result.sessions
        )  # planned: 0.5 mg/kg


class TestTimelineAndCost:
    """Chair timeline and series cost."""

    def test_timeline(self) -> None:
        request = PlanRequest(
            zone=ZONE,
            dose=DoseRequest(patient=Patient(weight_kg=80)),
            start=MONDAY,
            intake_min=15,
            recovery_min=30,
        )
        timeline = plan(PROTOCOLS["depression"], request, LIMITS).sessions[0].timeline
        assert timeline.arrive == datetime(2026, 11, 30, 9, 0, tzinfo=ZONE)
        assert timeline.infusion_start == datetime(2026, 11, 30, 9, 15, tzinfo=ZONE)
        assert timeline.infusion_end == datetime(2026, 11, 30, 9, 55, tzinfo=ZONE)
        assert timeline.discharge_earliest == datetime(2026, 11, 30, 10, 25, tzinfo=ZONE)

    def test_cost(self) -> None:
        request = PlanRequest(
            zone=ZONE,
            dose=DoseRequest(patient=Patient(weight_kg=80)),
            start=MONDAY,
            price=(400, 800),
            currency="EUR",
        )
        cost = plan(PROTOCOLS["depression"], request, LIMITS).cost
        assert cost is not None
        assert (cost.low, cost.high, cost.currency) == (2400, 4800, "EUR")


weekdays = st.sets(st.integers(0, 6), min_size=1)


class TestDateProperties:
    """Whatever the calendar, no two sessions are closer than the gap or too many in 7 days."""

    @given(
        st.dates(min_value=date(2026, 1, 1), max_value=date(2030, 12, 31)),
        st.sampled_from(["depression", "crps", "esketamine-nasal", "ptsd"]),
        weekdays,
        st.sets(st.integers(0, 60), max_size=10),
    )
    def test_gap_and_weekly_cap(
        self, start: date, protocol_id: str, days: set[int], closed: set[int]
    ) -> None:
        entry = PROTOCOLS[protocol_id]
        request = PlanRequest(
            zone=ZONE,
            dose=DoseRequest(patient=Patient(weight_kg=80)),
            start=start,
            days=frozenset(days),
            closed=frozenset(start + timedelta(days=c) for c in closed),
        )
        result = plan(entry, request, LIMITS)
        starts = [s.start for s in result.sessions]
        assert len(starts) == (entry.protocol.series.sessions)
        interval = LIMITS.limit(protocol_id, "series", "interval", entry.protocol.route)
        per_7d = LIMITS.limit(protocol_id, "series", "sessions_per_7d", entry.protocol.route)
        for a, b in itertools.pairwise(starts):
            assert b.weekday() in days
            assert b.date() not in request.closed
            if interval is not None and interval.bounds.lower_soft is not None:
                assert (b - a).total_seconds() / 60 >= interval.bounds.lower_soft
        for s in starts:
            within = [t for t in starts if timedelta(0) <= s - t < timedelta(days=7)]
            if per_7d is not None and per_7d.bounds.upper_soft is not None:
                assert len(within) <= per_7d.bounds.upper_soft
        assert all(s.status != "hard" for s in result.sessions)
        assert not [
            f
            for s in result.sessions
            for f in s.findings
            if f.parameter and f.parameter.startswith("series.")
        ]


class TestPlanCommand:
    """`ketadose plan` prints or writes the plan; exit codes follow the worst session."""

    def test_json_contract(self) -> None:
        result = CliRunner().invoke(
            app,
            [
                "plan",
                "-p",
                "depression",
                "--weight",
                "80kg",
                "--start",
                "2026-11-30",
                "--price",
                "400-800",
                "--json",
            ],
            env={"KETADOSE_LIMITS": None},
        )
        assert result.exit_code == 0, result.stderr
        data = json.loads(result.stdout)
        assert data["schema_version"] == 2
        session = data["sessions"][0]
        for key in (
            "number",
            "date",
            "total_dose_mg",
            "dose_mg_per_kg",
            "total_duration_min",
            "phases",
            "findings",
            "condition",
        ):
            assert key in session
        assert session["date"] == "2026-11-30"
        assert data["accumulated_dose_mg"] == 240
        assert data["cost"]["low"] == 2400
        assert data["cost"]["high"] == 4800
        assert data["cost"]["currency"] == "USD"
        assert data["status"] == "ok"
        assert {"name", "version", "sha256", "approved"} <= set(data["library"])

    def test_hard_exits_4_and_still_shows_the_sessions(self) -> None:
        result = CliRunner().invoke(
            app,
            [
                "plan",
                "-p",
                "depression",
                "--weight",
                "80kg",
                "--start",
                "2026-11-30",
                "--dose",
                "1.8mg/kg",
                "--json",
            ],
            env={"KETADOSE_LIMITS": None},
        )
        assert result.exit_code == 4
        assert len(json.loads(result.stdout)["sessions"]) == 6

    def test_table(self) -> None:
        result = CliRunner().invoke(
            app,
            ["plan", "-p", "crps", "--weight", "80kg", "--start", "2026-11-30"],
            env={"KETADOSE_LIMITS": None},
        )
        assert result.exit_code == 0
        assert "Mon 2026-11-30" in result.stdout
        assert "Wed 2026-12-09" in result.stdout

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["--start", "30/11/2026"], "is not a date"),
            (["--start", "2026-11-30", "--days", "mon,xx"], "--days"),
            (["--start", "2026-11-30", "--holidays", "XX"], "not a country"),
            (["--start", "2026-11-30", "--price", "800-400"], "low price is above"),
            (["--start", "2026-11-30", "--time", "9am"], "not a time of day"),
        ],
    )
    def test_bad_options_exit_2(self, args: list[str], message: str) -> None:
        result = CliRunner().invoke(
            app,
            ["plan", "-p", "depression", "--weight", "80kg", *args],
            env={"KETADOSE_LIMITS": None},
        )
        assert result.exit_code == 2
        assert message in result.stderr


SINGLE = [
    "bipolar-depression",
    "suicidal-ideation",
    "ocd",
    "social-anxiety",
    "alcohol-use-disorder",
    "cocaine-use-disorder",
    "depression-im",
    "chronic-pain",
    "fibromyalgia",
    "acute-pain",
]


class TestEveryProtocol:
    """Default plans from Monday 2026-11-30, worked out from each protocol's series and limits."""

    @pytest.mark.parametrize("protocol_id", SINGLE)
    def test_single_session_protocols(self, protocol_id: str) -> None:
        # one session in the source's design: the start day itself
        assert days_of(protocol_id) == ["2026-11-30"]

    @pytest.mark.parametrize(
        ("protocol_id", "expected"),
        [
            # 3 a week, >= 40 h apart, Mon-Fri: Mon, Wed, Fri, Mon, Wed, Fri
            ("depression", ["11-30", "12-02", "12-04", "12-07", "12-09", "12-11"]),
            ("ptsd", ["11-30", "12-02", "12-04", "12-07", "12-09", "12-11"]),
            # twice a week (label), Mon-Fri: Fri is a third in 7 days, so Mon and Wed
            (
                "esketamine-nasal",
                ["11-30", "12-02", "12-07", "12-09", "12-14", "12-16", "12-21", "12-23"],
            ),
            # daily, weekends included
            (
                "crps",
                [
                    "11-30",
                    "12-01",
                    "12-02",
                    "12-03",
                    "12-04",
                    "12-05",
                    "12-06",
                    "12-07",
                    "12-08",
                    "12-09",
                ],
            ),
            ("neuropathic-pain", ["11-30", "12-01", "12-02"]),
        ],
    )
    def test_series(self, protocol_id: str, expected: list[str]) -> None:
        assert [d[5:] for d in days_of(protocol_id)] == expected

    def test_every_shipped_protocol_plans_within_the_shipped_limits(self) -> None:
        for protocol_id in PROTOCOLS:
            request = PlanRequest(
                zone=ZONE, dose=DoseRequest(patient=Patient(weight_kg=80)), start=MONDAY
            )
            result = plan(PROTOCOLS[protocol_id], request, LIMITS)
            assert result.status == "ok", (
                protocol_id,
                [
                    f.message
                    for s in result.sessions
                    for f in s.findings
                    if f.severity.value != "info"
                ],
            )

    def test_neuropathic_titration_is_scheduled(self) -> None:
        request = PlanRequest(
            zone=ZONE, dose=DoseRequest(patient=Patient(weight_kg=80)), start=MONDAY
        )
        result = plan(PROTOCOLS["neuropathic-pain"], request, LIMITS)
        # 0.2 -> 0.4 -> 0.6 mg/kg/h x 80 kg = 16, 32, 48 mg/h for 4 h = 64, 128, 192 mg
        assert [s.phases[0].rate_mg_per_h for s in result.sessions] == pytest.approx([16, 32, 48])
        assert [s.total_dose_mg for s in result.sessions] == pytest.approx([64, 128, 192])
        assert [s.accumulated_dose_mg for s in result.sessions] == pytest.approx([64, 192, 384])

    def test_esketamine_observation_sets_discharge(self) -> None:
        request = PlanRequest(zone=ZONE, dose=DoseRequest(patient=Patient()), start=MONDAY)
        result = plan(PROTOCOLS["esketamine-nasal"], request, LIMITS)
        timeline = result.sessions[0].timeline
        assert timeline.observation_min == 120  # Spravato: >= 2 h
        assert timeline.discharge_earliest == datetime(2026, 11, 30, 11, 20, tzinfo=ZONE)
        assert any("food" in note.text for note in result.before)
        assert any("driv" in note.text for note in result.discharge)

    def test_crps_adjuncts(self) -> None:
        request = PlanRequest(
            zone=ZONE, dose=DoseRequest(patient=Patient(weight_kg=80)), start=MONDAY
        )
        names = {a.name for a in plan(PROTOCOLS["crps"], request, LIMITS).adjuncts}
        assert {"clonidine", "midazolam"} <= names
