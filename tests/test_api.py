"""The library's entry point for a dose returns what the gate checked, never the arithmetic alone."""

from __future__ import annotations

import pytest

from ketadose.api import checked_dose
from ketadose.dosing import DoseRequest
from ketadose.errors import InputError
from ketadose.models import Patient


def test_a_plausible_dose_is_checked_and_ready() -> None:
    result = checked_dose("depression", weight_kg=70)  # 0.5 mg/kg x 70 kg = 35 mg
    assert (result.total_dose_mg, result.status, result.ready) == (35, "ok", True)
    assert result.preparation is not None and result.preparation.draw_ml_rounded == 3.5
    assert result.library is not None and result.library.approved is False


def test_a_dose_past_a_hard_limit_has_no_preparation() -> None:
    result = checked_dose("depression", weight_kg=400)  # 200 mg; weight hard maximum 300 kg
    assert (result.total_dose_mg, result.status, result.ready) == (200, "hard", False)
    assert result.preparation is None
    assert all(phase.pump_rate_ml_per_h_rounded is None for phase in result.phases)
    assert "weight-high" in {f.code for f in result.findings}


def test_a_whole_request_and_an_override() -> None:
    request = DoseRequest(patient=Patient(weight_kg=120))  # soft: weight above 115 kg
    assert checked_dose("depression", request=request).ready is False
    result = checked_dose("depression", request=request, override_reason="reviewed by Dr B")
    assert (result.status, result.ready) == ("soft", True)


def test_weight_and_request_together_are_refused() -> None:
    with pytest.raises(InputError, match="not both"):
        checked_dose("depression", weight_kg=70, request=DoseRequest(patient=Patient()))


def test_an_unknown_protocol_is_refused() -> None:
    with pytest.raises(InputError, match="unknown protocol"):
        checked_dose("depresion", weight_kg=70)
