"""The subcutaneous protocols (issue 13), worked by hand at 50, 80 and 130 kg.

Every expected number is a literal worked out by hand in the comment beside it (clinical.md 1.10,
1.3, 4 and 11.3), never computed by ketadose. An SC dose is drawn undiluted from the vial, so
volume = mg / vial strength, rounded half-up to 0.01 mL (the default rounding); each injection's
volume is checked against ``[routes.sc.session.injection_volume]``: 1.5 mL soft, 3 mL hard.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from ketadose.cli import app
from ketadose.dosing import DoseRequest
from ketadose.escalation import decide
from ketadose.limits import load_library as load_limits
from ketadose.models import Patient
from ketadose.protocols import load_library
from ketadose.records import BloodPressure, PatientRecord, SessionRecord
from tests.test_escalation import monitored

runner = CliRunner()
LIMITS = load_limits()
PROTOCOLS = load_library()
ZONE = ZoneInfo("Europe/Berlin")
START = datetime(2026, 12, 7, 9, 0, tzinfo=ZONE)


def run(*args: str) -> tuple[int, dict[str, Any]]:
    result = runner.invoke(app, [*args, "--format", "json"])
    return result.exit_code, json.loads(result.stdout)


def dose(protocol_id: str, kg: float, vial: float) -> tuple[int, dict[str, Any]]:
    return run("dose", "-p", protocol_id, "--weight", f"{kg:g}kg", "--vial", f"{vial:g}mg/mL")


def volume_findings(data: dict[str, Any]) -> dict[str, float]:
    return {
        f["severity"]: f["value"]
        for f in data["findings"]
        if f["code"].startswith("injection-volume")
    }


class TestData:
    """Both protocols are SC bolus injections with the sourced doses and borrowed schedules."""

    @pytest.mark.parametrize("protocol_id", ["anxiety-sc", "depression-sc"])
    def test_route_and_borrowed_schedule(self, protocol_id: str) -> None:
        protocol = PROTOCOLS[protocol_id].protocol
        assert protocol.route == "sc"
        assert protocol.phases[0].kind == "bolus"
        assert protocol.phases[0].duration is None
        assert protocol.observation is not None
        assert protocol.observation.minimum.value == 30
        assert protocol.observation.evidence == "SITE-POLICY"
        assert protocol.monitoring is not None
        assert protocol.monitoring.evidence == "SITE-POLICY"
        assert "Borrowed from the IV schedule" in protocol.monitoring.source

    def test_anxiety_is_a_fixed_weekly_schedule(self) -> None:
        protocol = PROTOCOLS["anxiety-sc"].protocol
        assert protocol.phases[0].dose is not None
        assert protocol.phases[0].dose.value == 0.25
        assert [(s.from_session, s.scheduled) for s in protocol.escalation] == [
            (2, True),
            (3, True),
        ]
        assert "Glue" in protocol.phases[0].source
        assert any("Glue P et al. J Psychopharmacol 2018" in m.source for m in protocol.maintenance)

    def test_depression_is_response_guided(self) -> None:
        protocol = PROTOCOLS["depression-sc"].protocol
        assert not any(step.scheduled for step in protocol.escalation)
        assert protocol.response is not None
        assert protocol.response.threshold_pct == 50
        assert any("KADS" in m.text and "0.6" in m.text for m in protocol.maintenance)

    def test_library_limits_every_sc_protocol(self) -> None:
        for protocol_id in ("anxiety-sc", "depression-sc"):
            assert LIMITS.missing(protocol_id, "sc") == []
            volume = LIMITS.limit(protocol_id, "session", "injection_volume", "sc")
            assert volume is not None
            assert (volume.bounds.upper_soft, volume.bounds.upper_hard) == (1.5, 3.0)


# (kg, vial mg/mL, mg, mL drawn, volume finding): hand-worked, first session.
ANXIETY_1 = [
    (50, 10, 12.5, 1.25, None),  # 0.25 x 50 = 12.5 mg; 12.5 / 10 = 1.25 mL
    (50, 50, 12.5, 0.25, None),  # 12.5 / 50 = 0.25 mL
    (50, 100, 12.5, 0.13, None),  # 12.5 / 100 = 0.125 -> 0.13 mL (half-up)
    (80, 10, 20.0, 2.0, "soft"),  # 0.25 x 80 = 20 mg; 2 mL > 1.5 mL soft
    (80, 50, 20.0, 0.4, None),  # 20 / 50 = 0.4 mL
    (80, 100, 20.0, 0.2, None),  # 20 / 100 = 0.2 mL
    (130, 10, 32.5, 3.25, "hard"),  # 0.25 x 130 = 32.5 mg; 3.25 mL > 3 mL hard
    (130, 50, 32.5, 0.65, None),  # 32.5 / 50 = 0.65 mL
    (130, 100, 32.5, 0.33, None),  # 32.5 / 100 = 0.325 -> 0.33 mL (half-up)
]
DEPRESSION_1 = [
    (50, 10, 25.0, 2.5, "soft"),  # 0.5 x 50 = 25 mg; 2.5 mL > 1.5 soft
    (50, 50, 25.0, 0.5, None),
    (50, 100, 25.0, 0.25, None),
    (80, 10, 40.0, 4.0, "hard"),  # 0.5 x 80 = 40 mg; 4 mL > 3 mL hard
    (80, 50, 40.0, 0.8, None),
    (80, 100, 40.0, 0.4, None),
    (130, 10, 65.0, 6.5, "hard"),  # 0.5 x 130 = 65 mg; 6.5 mL
    (130, 50, 65.0, 1.3, None),
    (130, 100, 65.0, 0.65, None),
]


class TestDose:
    """``dose`` at 50, 80 and 130 kg from each vial: mg, mL drawn, the volume-per-site check."""

    @pytest.mark.parametrize(
        ("protocol_id", "kg", "vial", "mg", "ml", "finding"),
        [("anxiety-sc", *row) for row in ANXIETY_1]
        + [("depression-sc", *row) for row in DEPRESSION_1],
    )
    def test_first_session(
        self, protocol_id: str, kg: float, vial: float, mg: float, ml: float, finding: str | None
    ) -> None:
        code, data = dose(protocol_id, kg, vial)
        phase = data["phases"][0]
        assert phase["dose_mg"] == pytest.approx(mg)
        found = volume_findings(data)
        if finding == "hard":
            # refused: the draw is withheld; the finding names the volume
            assert data["preparation"] is None
            assert found == {"hard": pytest.approx(ml)}
        else:
            assert data["preparation"]["draw_ml_rounded"] == pytest.approx(ml)
            assert data["preparation"]["final_mg_per_ml"] == pytest.approx(vial)  # undiluted
            assert data["preparation"]["diluent_ml"] == 0
            assert found == ({} if finding is None else {finding: pytest.approx(ml)})
        # 130 kg is above the 115-kg soft weight (NCT05803551): soft at best.
        expected = {None: 0 if kg <= 115 else 3, "soft": 3, "hard": 4}[finding]
        assert code == expected


class TestPlan:
    """``plan anxiety-sc`` applies Glue's weekly 0.25 -> 0.5 -> 1 mg/kg."""

    @pytest.mark.parametrize(
        ("kg", "mgs", "mls"),
        [
            (50, [12.5, 25.0, 50.0], [0.13, 0.25, 0.5]),  # x 0.25, 0.5, 1; / 100 mg/mL
            (80, [20.0, 40.0, 80.0], [0.2, 0.4, 0.8]),
            (130, [32.5, 65.0, 130.0], [0.33, 0.65, 1.3]),
        ],
    )
    def test_ladder_weekly(self, kg: float, mgs: list[float], mls: list[float]) -> None:
        code, data = run(
            "plan", "-p", "anxiety-sc", "--weight", f"{kg:g}kg", "--vial", "100mg/mL",
            "--start", "2026-12-07",
        )  # fmt: skip
        sessions = data["sessions"]
        assert [s["date"] for s in sessions] == ["2026-12-07", "2026-12-14", "2026-12-21"]
        assert [s["dose_mg_per_kg"] for s in sessions] == [0.25, 0.5, 1.0]
        assert [s["total_dose_mg"] for s in sessions] == pytest.approx(mgs)
        assert [s["preparation"]["draw_ml_rounded"] for s in sessions] == pytest.approx(mls)
        assert code == (0 if kg <= 115 else 3)

    def test_session_3_from_the_10mg_vial_is_refused_by_volume(self) -> None:
        # 1 mg/kg x 80 kg = 80 mg = 8 mL of 10 mg/mL: past the 3-mL hard maximum per site
        code, data = run(
            "plan", "-p", "anxiety-sc", "--weight", "80kg", "--vial", "10mg/mL",
            "--start", "2026-12-07",
        )  # fmt: skip
        assert code == 4
        third = data["sessions"][2]
        assert volume_findings(third) == {"hard": pytest.approx(8.0)}

    def test_depression_sc_plan_stays_at_0_5(self) -> None:
        # response-guided steps are not applied by plan: 8 sessions at 0.5 mg/kg, twice weekly
        code, data = run(
            "plan", "-p", "depression-sc", "--weight", "80kg", "--vial", "100mg/mL",
            "--start", "2026-12-07",
        )  # fmt: skip
        assert code == 0
        assert [s["dose_mg_per_kg"] for s in data["sessions"]] == [0.5] * 8
        assert all(s["total_dose_mg"] == 40 for s in data["sessions"])


PATIENT = PatientRecord(id="P1", protocol="depression-sc", baseline=30, weight_kg=80)
TOLERATED = {"bp_peak": BloodPressure(135, 85), "heart_rate": 82.0, "spo2": 97.0}


def history(
    protocol_id: str, doses: Sequence[float], scores: Sequence[float | None]
) -> list[SessionRecord]:
    """Sessions 3-4 days apart at these mg/kg on 80 kg, each with its full timeline."""
    made = []
    for i, (per_kg, score) in enumerate(zip(doses, scores, strict=True)):
        session = SessionRecord(
            patient_id="P1",
            at=START + timedelta(days=3 * i + (i // 2)),
            protocol=protocol_id,
            dose_mg=per_kg * 80,
            dose_mg_per_kg=per_kg,
            score=score,
            **TOLERATED,  # type: ignore[arg-type]
        )
        made.append(monitored(protocol_id, session))
    return made


def next_dose(protocol_id: str, sessions: list[SessionRecord]) -> tuple[str, float | None]:
    entry = PROTOCOLS[protocol_id]
    patient = replace(PATIENT, protocol=protocol_id)
    at = sessions[-1].at + timedelta(days=3)
    base = DoseRequest(patient=Patient(), vial_mg_per_ml=100.0)  # --vial 100mg/mL
    result = decide(entry, patient, sessions, LIMITS, at=at, base=base)
    return result.rule, result.total_dose_mg


class TestNext:
    """``next`` at each rung: depression-sc steps only on non-response; anxiety-sc on schedule."""

    NON = [28.0, 27.0, 26.0, 26.0, 25.0, 25.0]  # < 50% below a baseline of 30

    def test_depression_holds_after_one_session(self) -> None:
        rule, mg = next_dose("depression-sc", history("depression-sc", [0.5], self.NON[:1]))
        assert (rule, mg) == ("hold-too-few", 40.0)  # 0.5 x 80; 1 of 2 sessions at the dose

    def test_depression_rung_2_after_two_at_0_5(self) -> None:
        rule, mg = next_dose("depression-sc", history("depression-sc", [0.5, 0.5], self.NON[:2]))
        assert (rule, mg) == ("escalate", 60.0)  # 0.75 x 80

    def test_depression_rung_3_after_two_at_0_75(self) -> None:
        doses = [0.5, 0.5, 0.75, 0.75]
        rule, mg = next_dose("depression-sc", history("depression-sc", doses, self.NON[:4]))
        assert (rule, mg) == ("escalate", 80.0)  # 1.0 x 80

    def test_depression_top_rung_holds(self) -> None:
        doses = [0.5, 0.5, 0.75, 0.75, 1.0, 1.0]
        rule, mg = next_dose("depression-sc", history("depression-sc", doses, self.NON))
        assert (rule, mg) == ("hold-top", 80.0)

    def test_depression_responder_holds(self) -> None:
        # 30 -> 14 is a 53.3% fall: responding, no step
        rule, mg = next_dose("depression-sc", history("depression-sc", [0.5, 0.5], [20.0, 14.0]))
        assert (rule, mg) == ("hold-responding", 40.0)

    def test_10mg_vial_holds_at_the_volume_limit(self) -> None:
        # 0.75 x 80 = 60 mg = 6 mL of the 10 mg/mL vial: past 3 mL, so next holds
        entry = PROTOCOLS["depression-sc"]
        sessions = history("depression-sc", [0.5, 0.5], self.NON[:2])
        at = sessions[-1].at + timedelta(days=3)
        base = DoseRequest(patient=Patient(), vial_mg_per_ml=10.0)
        result = decide(entry, PATIENT, sessions, LIMITS, at=at, base=base)
        assert result.rule == "hold-limit"

    def test_default_sc_vial_is_100mg_per_ml(self) -> None:
        # without --vial: 0.5 x 80 = 40 mg = 0.4 mL of 100 mg/mL
        code, data = run("dose", "-p", "depression-sc", "--weight", "80kg")
        assert code == 0
        assert data["preparation"]["vial_mg_per_ml"] == 100
        assert data["preparation"]["draw_ml_rounded"] == pytest.approx(0.4)

    def test_anxiety_titrates_on_schedule(self) -> None:
        rule, mg = next_dose("anxiety-sc", history("anxiety-sc", [0.25], [None]))
        assert (rule, mg) == ("titrate", 40.0)  # 0.5 x 80
        rule, mg = next_dose("anxiety-sc", history("anxiety-sc", [0.25, 0.5], [None, None]))
        assert (rule, mg) == ("titrate", 80.0)  # 1 x 80
