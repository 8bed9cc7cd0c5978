"""ketadose.simulation.simulate_session: the checked dose behind a simulated curve."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

import pytest

from ketadose.dosing import DoseRequest
from ketadose.errors import InputError
from ketadose.limits import LimitLibrary
from ketadose.limits import load_library as load_limits
from ketadose.models import Patient
from ketadose.protocols import ProtocolLibrary
from ketadose.protocols import load_library as load_protocols
from ketadose.simulation import simulate_session
from tests.factories import limits_library, protocol

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.fixture(scope="module")
def shipped() -> tuple[ProtocolLibrary, LimitLibrary]:
    library = load_protocols(None)
    return library, load_limits(None)


def at_70kg() -> DoseRequest:
    return DoseRequest(patient=Patient(weight_kg=70.0))


class TestSimulateSession:
    """One session at minute 0, a planned series superposed, a stay stepped; refusals first."""

    def test_one_session_leaves_after_the_observation(
        self, shipped: tuple[ProtocolLibrary, LimitLibrary]
    ) -> None:
        library, limits = shipped
        outcome = simulate_session(
            library.get_protocol("depression"), at_70kg(), limits, model="clements250"
        )
        assert outcome.result.sessions == 1
        assert outcome.result.peak_ng_per_ml == pytest.approx(177.31, abs=0.01)
        assert outcome.result.end_of_infusion_min == 40
        assert outcome.result.discharge_min == 70  # 40 min infusion + 30 min recovery
        assert (outcome.status, outcome.ready, outcome.stay) == ("ok", True, False)
        assert outcome.dosing_weight.kg == 70
        assert outcome.body_weight_kg == 70
        assert outcome.protocol_name.startswith("Treatment-resistant depression")

    def test_a_series_is_planned_from_its_start(
        self, shipped: tuple[ProtocolLibrary, LimitLibrary]
    ) -> None:
        library, limits = shipped
        outcome = simulate_session(
            library.get_protocol("depression"),
            at_70kg(),
            limits,
            model="clements250",
            series=True,
            start=date(2026, 12, 7),
            zone=BERLIN,
        )
        assert outcome.result.sessions == 6
        assert outcome.result.discharge_min == 15910  # the sixth session's end + 30 min
        assert not outcome.stay

    def test_a_stay_is_one_stepped_infusion_without_discharge(
        self, shipped: tuple[ProtocolLibrary, LimitLibrary]
    ) -> None:
        library, limits = shipped
        outcome = simulate_session(
            library.get_protocol("migraine"), at_70kg(), limits, model="clements250"
        )
        assert outcome.stay
        assert outcome.result.sessions == 10
        assert outcome.result.discharge_min is None
        assert outcome.result.schedule is not None
        assert outcome.result.schedule[0].rate_mg_per_h == 7  # 0.1 mg/kg/h at 70 kg

    def test_refusals(self, shipped: tuple[ProtocolLibrary, LimitLibrary]) -> None:
        library, limits = shipped
        with pytest.raises(InputError, match="depression-sc is given sc: the models are of IV"):
            simulate_session(library.get_protocol("depression-sc"), at_70kg(), limits, model="kamp")
        depression = library.get_protocol("depression")
        with pytest.raises(InputError, match="^whole series needs start date"):
            simulate_session(depression, at_70kg(), limits, model="kamp", series=True)
        with pytest.raises(InputError, match="^start date is for whole series$"):
            simulate_session(
                depression, at_70kg(), limits, model="kamp", start=date(2026, 12, 7), zone=BERLIN
            )

    def test_a_dose_in_mg_still_needs_the_weight(self) -> None:
        entry = protocol({"kind": "timed", "dose": "35 mg", "duration": "40 min"})
        with pytest.raises(InputError, match="the models need the patient.s weight: weight$"):
            simulate_session(
                entry, DoseRequest(patient=Patient()), limits_library(), model="clements250"
            )
