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


class TestSeries:
    """The curve as two arrays, written as the list of points it was."""

    AWKWARD = ((0.0, 0.0), (0.1, 1e-06), (2.5, 123.456789), (1e16, 2e-7), (7.0, 5.0))

    def test_json_and_schema_are_those_of_the_list_of_points(self) -> None:
        from pydantic import BaseModel

        from ketadose.simulation import Point, Series

        class Points(BaseModel):
            series: tuple[Point, ...]

        class Arrays(BaseModel):
            series: Series

        points = Points(
            series=tuple(Point(time_min=t, concentration_ng_per_ml=c) for t, c in self.AWKWARD)
        )
        arrays = Arrays(series=Series(*zip(*self.AWKWARD, strict=True)))
        for indent in (2, None):
            assert arrays.model_dump_json(indent=indent) == points.model_dump_json(indent=indent)
        assert arrays.model_dump() == points.model_dump()
        assert arrays.model_dump(mode="json") == points.model_dump(mode="json")
        for mode in ("serialization", "validation"):
            written, expected = (m.model_json_schema(mode=mode) for m in (Arrays, Points))
            assert (written.pop("title"), expected.pop("title")) == ("Arrays", "Points")
            assert written == expected

    def test_points_are_validated_into_arrays(self) -> None:
        from pydantic import BaseModel, ValidationError

        from ketadose.simulation import Sample, Series

        class Arrays(BaseModel):
            series: Series

        rows = [{"time_min": t, "concentration_ng_per_ml": c} for t, c in self.AWKWARD]
        read = Arrays.model_validate({"series": rows}).series
        assert read.times.tolist() == [t for t, _ in self.AWKWARD]
        assert list(read)[2] == Sample(time_min=2.5, concentration_ng_per_ml=123.456789)
        assert read == Arrays.model_validate_json(Arrays(series=read).model_dump_json()).series
        assert len(read) == 5
        with pytest.raises(ValidationError, match="concentration_ng_per_ml"):
            Arrays.model_validate({"series": [{"time_min": 1.0}]})
        with pytest.raises(ValueError, match="^2 times but 1 concentrations$"):
            Series([0.0, 1.0], [0.0])

    def test_marks_between_grid_points_are_not_in_the_series(self) -> None:
        from ketadose import gate
        from ketadose.pk import MODELS, concentrations, session_infusions
        from ketadose.simulation import Given, simulate

        entry = protocol({"kind": "timed", "dose": "35 mg", "duration": "40 min"})
        session = gate.session(entry, at_70kg(), limits_library())
        result = simulate(
            "domino",
            session.protocol,
            70.0,
            [Given(0.0, session.phases)],
            step_min=7.0,
            discharge_min=75.5,
        )
        assert result.series.times.tolist() == [7.0 * n for n in range(41)]  # 0 to 280 min
        infusions = session_infusions(session.phases)
        at = concentrations(MODELS["domino"], 70.0, infusions, [35.0, 40.0, 42.0, 75.5])
        assert result.end_of_infusion_ng_per_ml == pytest.approx(at[1], rel=1e-12)
        assert result.discharge_ng_per_ml == pytest.approx(at[3], rel=1e-12)
        assert result.series.concentrations[6] == round(at[2], 6)
