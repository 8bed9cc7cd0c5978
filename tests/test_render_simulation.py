"""ketadose.render.simulation.text: a simulation as lines, a table of points and a chart."""

from __future__ import annotations

from typing import Any

from ketadose.models import DosingWeight, WeightPolicy
from ketadose.simulation import NOTE, RateStep, Simulation, SimulationOutcome


def outcome(*, stay: bool = False, **changes: Any) -> SimulationOutcome:
    """A hand-made 20-minute curve: 0, 5, ..., 20 min, peak 150 ng/mL at 10 min."""
    values = {0.0: 0.0, 5.0: 80.0, 10.0: 150.0, 15.0: 120.25, 20.0: 100.0}
    data: dict[str, Any] = {
        "model": {
            "id": "m",
            "name": "Model M",
            "source": "s",
            "evidence": "HIGH",
            "scaling": "V1 by weight",
        },
        "protocol": {"id": "t", "name": "T", "category": "pain", "route": "iv"},
        "weight_kg": 82.5,
        "sessions": 1,
        "peak_ng_per_ml": 150.0,
        "peak_time_min": 10.0,
        "end_of_infusion_min": 10.0,
        "end_of_infusion_ng_per_ml": 150.0,
        "discharge_min": 15.0,
        "discharge_ng_per_ml": 120.25,
        "threshold_ng_per_ml": None,
        "time_above_threshold_min": None,
        "step_min": 5.0,
        "until_min": 20.0,
        "note": NOTE,
        "series": [{"time_min": t, "concentration_ng_per_ml": c} for t, c in values.items()],
        **changes,
    }
    return SimulationOutcome(
        result=Simulation.model_validate(data),
        status="ok",
        ready=True,
        dosing_weight=DosingWeight(basis=WeightPolicy.IDEAL, kg=66.123),
        body_weight_kg=82.5,
        protocol_name="Test protocol",
        stay=stay,
    )


class TestText:
    """The summary, the points every 10 min, the chart and the note, in that order."""

    def test_a_session(self) -> None:
        from ketadose.render.simulation import text

        lines = text(outcome()).split("\n")
        assert lines[:3] == [
            "Test protocol: 1 session(s); dosed on 66.12 kg (ideal weight); the model uses the "
            "body weight, 82.5 kg",
            "Model: Model M [HIGH]; V1 by weight",
            "Peak 150 ng/mL at 10 min; end of infusion 150 ng/mL at 10 min; "
            "at discharge 120.3 ng/mL at 15 min",
        ]
        # Only the points on the 10-minute grid are tabled; the chart plots every one.
        assert lines[3:8] == [
            "",
            "  time      ng/mL",
            "     0          0 ng/mL",
            "    10        150 ng/mL",
            "    20        100 ng/mL",
        ]
        assert lines[8] == ""
        assert lines[9].startswith("    150 ┤")
        assert lines[-2] == NOTE
        assert lines[-1] == ""

    def test_a_stay_shows_its_schedule_and_no_discharge(self) -> None:
        from ketadose.render.simulation import text

        steps = [
            RateStep(start_min=0, end_min=10, rate_mg_per_h=7, rate_mg_per_kg_per_h=0.1),
            RateStep(start_min=10, end_min=20, rate_mg_per_h=14.125, rate_mg_per_kg_per_h=None),
        ]
        found = text(
            outcome(
                stay=True,
                sessions=2,
                discharge_min=None,
                discharge_ng_per_ml=None,
                threshold_ng_per_ml=100.0,
                time_above_threshold_min=12.5,
                schedule=steps,
            )
        ).split("\n")
        assert found[0].startswith("Test protocol: one stay, 2 rung(s) of one continuous infusion;")
        assert found[2].endswith("at discharge -")
        assert found[3:7] == [
            "Above 100 ng/mL for 12.5 min",
            "Infusion schedule (the titration's rungs, each at the earliest time):",
            "  0 min to 10 min: 7 mg/h (0.1 mg/kg/h)",
            "  10 min to 20 min: 14.13 mg/h",
        ]
