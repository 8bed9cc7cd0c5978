"""Worked examples, computed by hand from reference/clinical.md, for every built-in protocol.

Every expected number below is a literal worked out by hand (the arithmetic is in the comment
beside it), never computed by ketadose or re-derived in the test. Conventions:

- the default 10 mg/mL vial and the protocol's own bag or syringe volume are used;
- the whole session's drug is made up to one final volume, so for every IV phase
  volume = mg / final concentration and pump rate = (mg/h) / final concentration;
- pump rates are rounded half-up to 0.1 mL/h and draws to 0.01 mL (the default Rounding).
"""

from __future__ import annotations

import pytest

from ketadose.dosing import DoseRequest, session_dose
from ketadose.errors import InputError
from ketadose.libfile import Quantity
from ketadose.models import DosedSession, Patient, PhaseDose, Preparation
from ketadose.protocols import ProtocolEntry, ProtocolLibrary, load_library
from ketadose.units import Kind, parse
from tests.factories import REQUIRED_IDS

REL = 1e-9

#: The required protocols and those issue 13 added (KADS SC ladder, sublingual, oral).
BUILTIN_IDS = (*REQUIRED_IDS, "depression-sc-kads", "depression-sublingual", "depression-oral")


@pytest.fixture(scope="module")
def library() -> ProtocolLibrary:
    return load_library()


def entry_for(library: ProtocolLibrary, protocol_id: str) -> ProtocolEntry:
    return library.get_protocol(protocol_id)


def dose(
    library: ProtocolLibrary,
    protocol_id: str,
    weight_kg: float | None,
    *,
    dose_text: str | None = None,
    rate_text: str | None = None,
    duration_min: float | None = None,
) -> DosedSession:
    """One session as ``ketadose dose`` computes it, overrides parsed as the CLI parses them."""
    request = DoseRequest(
        patient=Patient(weight_kg=weight_kg),
        dose=override(dose_text, Kind.DOSE_PER_KG, Kind.DOSE),
        rate=override(rate_text, Kind.RATE_PER_KG, Kind.RATE),
        duration_min=duration_min,
    )
    return session_dose(entry_for(library, protocol_id), request)


def override(text: str | None, *kinds: Kind) -> Quantity | None:
    """The CLI's ``--dose`` / ``--rate`` parsing: text with a unit into a Quantity."""
    if text is None:
        return None
    kind, value = parse(text, *kinds)
    return Quantity(kind, value, text)


def approx_or_none(actual: float | None, expected: float | None, name: str) -> None:
    if expected is None:
        assert actual is None, f"{name}: expected None, got {actual}"
    else:
        assert actual is not None, f"{name}: expected {expected}, got None"
        assert actual == pytest.approx(expected, rel=REL), name


def assert_phase(
    phase: PhaseDose,
    *,
    kind: str,
    dose_mg: float,
    dose_mg_per_kg: float | None,
    duration_min: float | None,
    rate_mg_per_h: float | None,
    rate_mg_per_kg_per_h: float | None,
    pump_rate_ml_per_h: float | None,
    pump_rate_ml_per_h_rounded: float | None,
    volume_ml: float | None,
) -> None:
    assert phase.kind == kind
    assert phase.dose_mg == pytest.approx(dose_mg, rel=REL)
    approx_or_none(phase.dose_mg_per_kg, dose_mg_per_kg, "dose_mg_per_kg")
    assert phase.duration_min == duration_min  # exact: straight from the protocol's text
    approx_or_none(phase.rate_mg_per_h, rate_mg_per_h, "rate_mg_per_h")
    approx_or_none(phase.rate_mg_per_kg_per_h, rate_mg_per_kg_per_h, "rate_mg_per_kg_per_h")
    approx_or_none(phase.pump_rate_ml_per_h, pump_rate_ml_per_h, "pump_rate_ml_per_h")
    # exact: a rounded value is the float of a decimal with one place
    assert phase.pump_rate_ml_per_h_rounded == pump_rate_ml_per_h_rounded
    approx_or_none(phase.volume_ml, volume_ml, "volume_ml")


def assert_totals(
    result: DosedSession,
    *,
    total_dose_mg: float,
    total_dose_mg_per_kg: float | None,
    total_duration_min: float | None,
) -> None:
    assert result.total_dose_mg == pytest.approx(total_dose_mg, rel=REL)
    approx_or_none(result.total_dose_mg_per_kg, total_dose_mg_per_kg, "total_dose_mg_per_kg")
    assert result.total_duration_min == total_duration_min


def assert_preparation(
    preparation: Preparation | None,
    *,
    draw_ml: float,
    draw_ml_rounded: float,
    final_volume_ml: float,
    final_mg_per_ml: float,
    diluent_ml: float,
) -> None:
    assert preparation is not None
    assert preparation.vial_mg_per_ml == 10.0  # default vial, 10 mg/mL
    assert preparation.draw_ml == pytest.approx(draw_ml, rel=REL)
    assert preparation.draw_ml_rounded == draw_ml_rounded
    assert preparation.final_volume_ml == pytest.approx(final_volume_ml, rel=REL)
    assert preparation.final_mg_per_ml == pytest.approx(final_mg_per_ml, rel=REL)
    if diluent_ml == 0:
        assert preparation.diluent_ml == 0
    else:
        assert preparation.diluent_ml == pytest.approx(diluent_ml, rel=REL)


def codes(result: DosedSession) -> set[str]:
    return {finding.code for finding in result.findings}


class TestLibraryContents:
    """The shipped library holds exactly the twenty-one protocols worked through below."""

    def test_ids(self, library: ProtocolLibrary) -> None:
        assert sorted(library) == sorted(BUILTIN_IDS)

    def test_shipped_library_is_an_unapproved_example(self, library: ProtocolLibrary) -> None:
        for protocol_id in BUILTIN_IDS:
            assert entry_for(library, protocol_id).library.approved is False


# ---------------------------------------------------------------------------------------------
# Psychiatric, IV, 0.5 mg/kg over 40 min (clinical.md 1.1, 1.5-1.8, 1.10)
# ---------------------------------------------------------------------------------------------


class TestDepression:
    """TRD: 0.5 mg/kg over 40 min in 100 mL NS (clinical.md 1.1, 8) gives 150 mL/h."""

    def test_70kg(self, library: ProtocolLibrary) -> None:
        result = dose(library, "depression", 70)
        (phase,) = result.phases
        # 0.5 mg/kg x 70 kg = 35 mg; 35 mg / (40/60 h) = 52.5 mg/h; 0.5 / (2/3 h) = 0.75 mg/kg/h
        # 35 mg in 100 mL = 0.35 mg/mL; 52.5 / 0.35 = 150 mL/h; 35 / 0.35 = 100 mL
        assert_phase(
            phase,
            kind="timed",
            dose_mg=35.0,
            dose_mg_per_kg=0.5,
            duration_min=40.0,
            rate_mg_per_h=52.5,
            rate_mg_per_kg_per_h=0.75,
            pump_rate_ml_per_h=150.0,
            pump_rate_ml_per_h_rounded=150.0,
            volume_ml=100.0,
        )
        assert_totals(result, total_dose_mg=35.0, total_dose_mg_per_kg=0.5, total_duration_min=40)
        # clinical.md 8: 35 mg = 3.5 mL of 10 mg/mL; 100 - 3.5 = 96.5 mL NS
        assert_preparation(
            result.preparation,
            draw_ml=3.5,
            draw_ml_rounded=3.5,
            final_volume_ml=100.0,
            final_mg_per_ml=0.35,
            diluent_ml=96.5,
        )
        assert codes(result) == {"protocol-library-unapproved"}


class TestBipolarDepression:
    """Bipolar depression: 0.5 mg/kg over 40 min from a 50-mL syringe (Zarate 2012): 75 mL/h."""

    def test_70kg(self, library: ProtocolLibrary) -> None:
        result = dose(library, "bipolar-depression", 70)
        (phase,) = result.phases
        # 0.5 x 70 = 35 mg; 35 / (2/3 h) = 52.5 mg/h; 0.75 mg/kg/h
        # 35 mg in 50 mL = 0.7 mg/mL; 52.5 / 0.7 = 75 mL/h (clinical.md 8: "in 50 mL -> 75 mL/h")
        assert_phase(
            phase,
            kind="timed",
            dose_mg=35.0,
            dose_mg_per_kg=0.5,
            duration_min=40.0,
            rate_mg_per_h=52.5,
            rate_mg_per_kg_per_h=0.75,
            pump_rate_ml_per_h=75.0,
            pump_rate_ml_per_h_rounded=75.0,
            volume_ml=50.0,
        )
        assert_totals(result, total_dose_mg=35.0, total_dose_mg_per_kg=0.5, total_duration_min=40)
        # draw 35 / 10 = 3.5 mL; 50 - 3.5 = 46.5 mL NS
        assert_preparation(
            result.preparation,
            draw_ml=3.5,
            draw_ml_rounded=3.5,
            final_volume_ml=50.0,
            final_mg_per_ml=0.7,
            diluent_ml=46.5,
        )
        assert codes(result) == {"protocol-library-unapproved"}


class TestSuicidalIdeation:
    """Suicidal ideation (Grunebaum 2018): 0.5 mg/kg over 40 min in 100 mL."""

    def test_64kg(self, library: ProtocolLibrary) -> None:
        result = dose(library, "suicidal-ideation", 64)
        (phase,) = result.phases
        # 0.5 x 64 = 32 mg; 32 / (2/3 h) = 48 mg/h; 0.75 mg/kg/h
        # 32 mg in 100 mL = 0.32 mg/mL; 48 / 0.32 = 150 mL/h; 32 / 0.32 = 100 mL
        assert_phase(
            phase,
            kind="timed",
            dose_mg=32.0,
            dose_mg_per_kg=0.5,
            duration_min=40.0,
            rate_mg_per_h=48.0,
            rate_mg_per_kg_per_h=0.75,
            pump_rate_ml_per_h=150.0,
            pump_rate_ml_per_h_rounded=150.0,
            volume_ml=100.0,
        )
        assert_totals(result, total_dose_mg=32.0, total_dose_mg_per_kg=0.5, total_duration_min=40)
        # draw 32 / 10 = 3.2 mL; 100 - 3.2 = 96.8 mL
        assert_preparation(
            result.preparation,
            draw_ml=3.2,
            draw_ml_rounded=3.2,
            final_volume_ml=100.0,
            final_mg_per_ml=0.32,
            diluent_ml=96.8,
        )
        assert codes(result) == {"protocol-library-unapproved"}


class TestPtsd:
    """PTSD (Feder 2021): 0.5 mg/kg over 40 min in 100 mL."""

    def test_85kg(self, library: ProtocolLibrary) -> None:
        result = dose(library, "ptsd", 85)
        (phase,) = result.phases
        # 0.5 x 85 = 42.5 mg; 42.5 / (2/3 h) = 63.75 mg/h; 0.75 mg/kg/h
        # 42.5 mg in 100 mL = 0.425 mg/mL; 63.75 / 0.425 = 150 mL/h; 42.5 / 0.425 = 100 mL
        assert_phase(
            phase,
            kind="timed",
            dose_mg=42.5,
            dose_mg_per_kg=0.5,
            duration_min=40.0,
            rate_mg_per_h=63.75,
            rate_mg_per_kg_per_h=0.75,
            pump_rate_ml_per_h=150.0,
            pump_rate_ml_per_h_rounded=150.0,
            volume_ml=100.0,
        )
        assert_totals(result, total_dose_mg=42.5, total_dose_mg_per_kg=0.5, total_duration_min=40)
        # draw 42.5 / 10 = 4.25 mL; 100 - 4.25 = 95.75 mL
        assert_preparation(
            result.preparation,
            draw_ml=4.25,
            draw_ml_rounded=4.25,
            final_volume_ml=100.0,
            final_mg_per_ml=0.425,
            diluent_ml=95.75,
        )
        assert codes(result) == {"protocol-library-unapproved"}


class TestOcd:
    """OCD (Rodriguez 2013): 0.5 mg/kg over 40 min in 100 mL."""

    def test_58kg(self, library: ProtocolLibrary) -> None:
        result = dose(library, "ocd", 58)
        (phase,) = result.phases
        # 0.5 x 58 = 29 mg; 29 / (2/3 h) = 43.5 mg/h; 0.75 mg/kg/h
        # 29 mg in 100 mL = 0.29 mg/mL; 43.5 / 0.29 = 150 mL/h; 29 / 0.29 = 100 mL
        assert_phase(
            phase,
            kind="timed",
            dose_mg=29.0,
            dose_mg_per_kg=0.5,
            duration_min=40.0,
            rate_mg_per_h=43.5,
            rate_mg_per_kg_per_h=0.75,
            pump_rate_ml_per_h=150.0,
            pump_rate_ml_per_h_rounded=150.0,
            volume_ml=100.0,
        )
        assert_totals(result, total_dose_mg=29.0, total_dose_mg_per_kg=0.5, total_duration_min=40)
        # draw 29 / 10 = 2.9 mL; 100 - 2.9 = 97.1 mL
        assert_preparation(
            result.preparation,
            draw_ml=2.9,
            draw_ml_rounded=2.9,
            final_volume_ml=100.0,
            final_mg_per_ml=0.29,
            diluent_ml=97.1,
        )
        assert codes(result) == {"protocol-library-unapproved"}


class TestSocialAnxiety:
    """Social anxiety (Taylor 2018): IV 0.5 mg/kg over 40 min in 100 mL."""

    def test_112kg(self, library: ProtocolLibrary) -> None:
        result = dose(library, "social-anxiety", 112)
        (phase,) = result.phases
        # 0.5 x 112 = 56 mg; 56 / (2/3 h) = 84 mg/h; 0.75 mg/kg/h
        # 56 mg in 100 mL = 0.56 mg/mL; 84 / 0.56 = 150 mL/h; 56 / 0.56 = 100 mL
        assert_phase(
            phase,
            kind="timed",
            dose_mg=56.0,
            dose_mg_per_kg=0.5,
            duration_min=40.0,
            rate_mg_per_h=84.0,
            rate_mg_per_kg_per_h=0.75,
            pump_rate_ml_per_h=150.0,
            pump_rate_ml_per_h_rounded=150.0,
            volume_ml=100.0,
        )
        assert_totals(result, total_dose_mg=56.0, total_dose_mg_per_kg=0.5, total_duration_min=40)
        # draw 56 / 10 = 5.6 mL; 100 - 5.6 = 94.4 mL
        assert_preparation(
            result.preparation,
            draw_ml=5.6,
            draw_ml_rounded=5.6,
            final_volume_ml=100.0,
            final_mg_per_ml=0.56,
            diluent_ml=94.4,
        )
        assert codes(result) == {"protocol-library-unapproved"}


# ---------------------------------------------------------------------------------------------
# Substance use, IV (Dakwar): 0.71 mg/kg = 0.11 over 2 min + 0.6 over 50 min (clinical.md 1.9)
# ---------------------------------------------------------------------------------------------


class TestAlcoholUseDisorder:
    """Alcohol (Dakwar 2020): 0.71 mg/kg over 52 min from a 50-mL syringe, two phases."""

    def test_80kg(self, library: ProtocolLibrary) -> None:
        result = dose(library, "alcohol-use-disorder", 80)
        loading, infusion = result.phases
        # Session: 0.71 x 80 = 56.8 mg in 50 mL = 1.136 mg/mL; draw 5.68 mL; 50 - 5.68 = 44.32 mL
        # loading: 0.11 x 80 = 8.8 mg over 2 min: 8.8 x 30 = 264 mg/h; 0.11 x 30 = 3.3 mg/kg/h
        #   volume 8.8 / 1.136 = 7.746478873239437 mL (= 50 x 0.11/0.71, "about 8 mL")
        #   pump 264 / 1.136 = 232.3943661971831 mL/h -> 232.4
        assert_phase(
            loading,
            kind="bolus",
            dose_mg=8.8,
            dose_mg_per_kg=0.11,
            duration_min=2.0,
            rate_mg_per_h=264.0,
            rate_mg_per_kg_per_h=3.3,
            pump_rate_ml_per_h=232.3943661971831,
            pump_rate_ml_per_h_rounded=232.4,
            volume_ml=7.746478873239437,
        )
        # infusion: 0.6 x 80 = 48 mg over 50 min: 48 x 1.2 = 57.6 mg/h; 0.6 x 1.2 = 0.72 mg/kg/h
        #   volume 48 / 1.136 = 42.25352112676056 mL (= 50 x 0.6/0.71)
        #   pump 57.6 / 1.136 = 50.70422535211268 mL/h -> 50.7
        assert_phase(
            infusion,
            kind="timed",
            dose_mg=48.0,
            dose_mg_per_kg=0.6,
            duration_min=50.0,
            rate_mg_per_h=57.6,
            rate_mg_per_kg_per_h=0.72,
            pump_rate_ml_per_h=50.70422535211268,
            pump_rate_ml_per_h_rounded=50.7,
            volume_ml=42.25352112676056,
        )
        # 8.8 + 48 = 56.8 mg = 0.71 mg/kg; 2 + 50 = 52 min
        assert_totals(result, total_dose_mg=56.8, total_dose_mg_per_kg=0.71, total_duration_min=52)
        assert_preparation(
            result.preparation,
            draw_ml=5.68,
            draw_ml_rounded=5.68,
            final_volume_ml=50.0,
            final_mg_per_ml=1.136,
            diluent_ml=44.32,
        )
        assert codes(result) == {"protocol-library-unapproved"}


class TestCocaineUseDisorder:
    """Cocaine (Dakwar 2014, higher dose): 0.71 mg/kg over 52 min from a 50-mL syringe."""

    def test_70kg(self, library: ProtocolLibrary) -> None:
        result = dose(library, "cocaine-use-disorder", 70)
        loading, infusion = result.phases
        # Session: 0.71 x 70 = 49.7 mg in 50 mL = 0.994 mg/mL; draw 4.97 mL; 50 - 4.97 = 45.03 mL
        # loading: 0.11 x 70 = 7.7 mg over 2 min: 7.7 x 30 = 231 mg/h; 3.3 mg/kg/h
        #   volume 7.7 / 0.994 = 7.746478873239437 mL; pump 231 / 0.994 = 232.3943661971831 mL/h
        assert_phase(
            loading,
            kind="bolus",
            dose_mg=7.7,
            dose_mg_per_kg=0.11,
            duration_min=2.0,
            rate_mg_per_h=231.0,
            rate_mg_per_kg_per_h=3.3,
            pump_rate_ml_per_h=232.3943661971831,
            pump_rate_ml_per_h_rounded=232.4,
            volume_ml=7.746478873239437,
        )
        # infusion: 0.6 x 70 = 42 mg over 50 min: 42 x 1.2 = 50.4 mg/h; 0.72 mg/kg/h
        #   volume 42 / 0.994 = 42.25352112676056 mL; pump 50.4 / 0.994 = 50.70422535211268 mL/h
        assert_phase(
            infusion,
            kind="timed",
            dose_mg=42.0,
            dose_mg_per_kg=0.6,
            duration_min=50.0,
            rate_mg_per_h=50.4,
            rate_mg_per_kg_per_h=0.72,
            pump_rate_ml_per_h=50.70422535211268,
            pump_rate_ml_per_h_rounded=50.7,
            volume_ml=42.25352112676056,
        )
        # 7.7 + 42 = 49.7 mg = 0.71 mg/kg; 52 min
        assert_totals(result, total_dose_mg=49.7, total_dose_mg_per_kg=0.71, total_duration_min=52)
        assert_preparation(
            result.preparation,
            draw_ml=4.97,
            draw_ml_rounded=4.97,
            final_volume_ml=50.0,
            final_mg_per_ml=0.994,
            diluent_ml=45.03,
        )
        assert codes(result) == {"protocol-library-unapproved"}


# ---------------------------------------------------------------------------------------------
# Psychiatric, other routes (clinical.md 3, 4)
# ---------------------------------------------------------------------------------------------


class TestDepressionIm:
    """IM 0.5 mg/kg (Chilukuri 2014): an undiluted draw, no duration, no pump programme."""

    def test_90kg(self, library: ProtocolLibrary) -> None:
        result = dose(library, "depression-im", 90)
        (phase,) = result.phases
        # 0.5 mg/kg x 90 kg = 45 mg; IM injection: no duration, so no mg/h and no pump
        assert_phase(
            phase,
            kind="bolus",
            dose_mg=45.0,
            dose_mg_per_kg=0.5,
            duration_min=None,
            rate_mg_per_h=None,
            rate_mg_per_kg_per_h=None,
            pump_rate_ml_per_h=None,
            pump_rate_ml_per_h_rounded=None,
            volume_ml=4.5,  # injected volume: 45 mg / 10 mg/mL
        )
        assert_totals(result, total_dose_mg=45.0, total_dose_mg_per_kg=0.5, total_duration_min=None)
        # undiluted: draw 45 / 10 = 4.5 mL of 10 mg/mL, final volume = the draw, no diluent
        assert_preparation(
            result.preparation,
            draw_ml=4.5,
            draw_ml_rounded=4.5,
            final_volume_ml=4.5,
            final_mg_per_ml=10.0,
            diluent_ml=0.0,
        )
        assert codes(result) == {"protocol-library-unapproved"}


class TestEsketamineNasal:
    """Esketamine: a fixed 56 mg (two 28-mg devices), no weight, no preparation."""

    def test_without_weight(self, library: ProtocolLibrary) -> None:
        result = dose(library, "esketamine-nasal", None)
        (phase,) = result.phases
        # fixed 56 mg = 2 x 28 mg; no weight so no mg/kg; no duration, rate or pump
        assert_phase(
            phase,
            kind="fixed",
            dose_mg=56.0,
            dose_mg_per_kg=None,
            duration_min=None,
            rate_mg_per_h=None,
            rate_mg_per_kg_per_h=None,
            pump_rate_ml_per_h=None,
            pump_rate_ml_per_h_rounded=None,
            volume_ml=None,
        )
        assert result.dosing_weight is None
        assert_totals(
            result, total_dose_mg=56.0, total_dose_mg_per_kg=None, total_duration_min=None
        )
        assert result.preparation is None
        assert codes(result) == {"protocol-library-unapproved", "no-preparation"}

    def test_with_weight_reports_mg_per_kg(self, library: ProtocolLibrary) -> None:
        result = dose(library, "esketamine-nasal", 80)
        (phase,) = result.phases
        # still 56 mg (not weight-based); 56 / 80 = 0.7 mg/kg for information
        assert_phase(
            phase,
            kind="fixed",
            dose_mg=56.0,
            dose_mg_per_kg=0.7,
            duration_min=None,
            rate_mg_per_h=None,
            rate_mg_per_kg_per_h=None,
            pump_rate_ml_per_h=None,
            pump_rate_ml_per_h_rounded=None,
            volume_ml=None,
        )
        assert_totals(result, total_dose_mg=56.0, total_dose_mg_per_kg=0.7, total_duration_min=None)
        assert result.preparation is None
        assert codes(result) == {"protocol-library-unapproved", "no-preparation"}


class TestDepressionScKads:
    """KADS SC 0.5 mg/kg, drawn undiluted from the 100 mg/mL vial (the SC default)."""

    def test_80kg(self, library: ProtocolLibrary) -> None:
        result = dose(library, "depression-sc-kads", 80)
        (phase,) = result.phases
        # 0.5 mg/kg x 80 kg = 40 mg; one SC injection: no duration, rate or pump
        assert_phase(
            phase,
            kind="bolus",
            dose_mg=40.0,
            dose_mg_per_kg=0.5,
            duration_min=None,
            rate_mg_per_h=None,
            rate_mg_per_kg_per_h=None,
            pump_rate_ml_per_h=None,
            pump_rate_ml_per_h_rounded=None,
            volume_ml=0.4,  # 40 mg / 100 mg/mL
        )
        assert_totals(result, total_dose_mg=40.0, total_dose_mg_per_kg=0.5, total_duration_min=None)
        # undiluted: 40 / 100 = 0.4 mL of 100 mg/mL (not assert_preparation: its vial is 10)
        preparation = result.preparation
        assert preparation is not None
        assert preparation.vial_mg_per_ml == 100.0
        assert preparation.draw_ml == pytest.approx(0.4, rel=REL)
        assert preparation.draw_ml_rounded == 0.4
        assert preparation.final_volume_ml == pytest.approx(0.4, rel=REL)
        assert preparation.final_mg_per_ml == 100.0
        assert preparation.diluent_ml == 0
        assert result.measured is None
        assert codes(result) == {"protocol-library-unapproved"}


def measured_dose(
    library: ProtocolLibrary,
    protocol_id: str,
    weight_kg: float | None,
    strength: str | None = None,
) -> DosedSession:
    """A sublingual or oral session, ``--strength`` parsed as the CLI parses it."""
    request = DoseRequest(
        patient=Patient(weight_kg=weight_kg),
        strength=override(strength, Kind.CONCENTRATION, Kind.DOSE),
    )
    return session_dose(entry_for(library, protocol_id), request)


class TestDepressionSublingual:
    """Lara 2013: a fixed 10 mg measured from the 100 mg/mL solution, no preparation."""

    def test_without_weight(self, library: ProtocolLibrary) -> None:
        result = measured_dose(library, "depression-sublingual", None)
        (phase,) = result.phases
        assert (phase.kind, phase.dose_mg, phase.dose_mg_per_kg) == ("fixed", 10.0, None)
        assert result.preparation is None
        measured = result.measured
        assert measured is not None
        # 10 mg / 100 mg/mL = 0.1 mL, a whole number of 0.01-mL steps: nothing to round
        assert (measured.form, measured.strength, measured.unit) == ("solution", 100.0, "mL")
        assert measured.amount == pytest.approx(0.1, rel=REL)
        assert measured.amount_rounded == 0.1
        assert measured.step == 0.01
        assert measured.delivered_mg == pytest.approx(10.0, rel=REL)
        assert result.delivered_total_mg == pytest.approx(10.0, rel=REL)
        # about 30 % systemic (Chong 2006; Rolan 2014): 10 x 0.30 = 3 mg, shown, never dosed on
        systemic = result.systemic
        assert systemic is not None
        assert (systemic.percent, systemic.percent_high) == (30.0, None)
        assert systemic.mg == pytest.approx(3.0, rel=REL)
        assert codes(result) == {"protocol-library-unapproved"}


class TestDepressionOral:
    """Al Shirawi 2017: a fixed 50 mg measured from an oral solution (50 or 10 mg/mL)."""

    def test_50mg_per_ml(self, library: ProtocolLibrary) -> None:
        result = measured_dose(library, "depression-oral", 80)
        (phase,) = result.phases
        # fixed 50 mg; 50 / 80 = 0.625 mg/kg for information
        assert (phase.kind, phase.dose_mg, phase.dose_mg_per_kg) == ("fixed", 50.0, 0.625)
        measured = result.measured
        assert measured is not None
        # the first listed strength: 50 mg / 50 mg/mL = 1 mL (0.1-mL steps)
        assert (measured.strength, measured.amount_rounded, measured.step) == (50.0, 1.0, 0.1)
        assert measured.delivered_mg == pytest.approx(50.0, rel=REL)
        # 20-25 % systemic: 50 x 0.20 = 10 mg to 50 x 0.25 = 12.5 mg
        systemic = result.systemic
        assert systemic is not None
        assert (systemic.percent, systemic.percent_high) == (20.0, 25.0)
        assert systemic.mg == pytest.approx(10.0, rel=REL)
        assert systemic.mg_high == pytest.approx(12.5, rel=REL)
        assert systemic.equivalence is not None
        assert codes(result) == {"protocol-library-unapproved"}

    def test_10mg_per_ml(self, library: ProtocolLibrary) -> None:
        measured = measured_dose(library, "depression-oral", 80, "10mg/mL").measured
        assert measured is not None
        # 50 mg / 10 mg/mL = 5 mL
        assert (measured.strength, measured.amount_rounded) == (10.0, 5.0)

    def test_a_strength_not_listed_is_refused(self, library: ProtocolLibrary) -> None:
        with pytest.raises(InputError, match="5 mg/mL is not a strength this protocol lists"):
            measured_dose(library, "depression-oral", 80, "5mg/mL")

    def test_a_tablet_strength_for_a_solution_is_refused(self, library: ProtocolLibrary) -> None:
        # Regression: "10mg" (a tablet's strength) was taken as the listed 10 mg/mL.
        with pytest.raises(InputError, match="strength 10mg is not in mg/mL"):
            measured_dose(library, "depression-oral", 80, "10mg")


# ---------------------------------------------------------------------------------------------
# Pain, IV (clinical.md 2)
# ---------------------------------------------------------------------------------------------


class TestCrps:
    """CRPS (Schwartzman 2009): 0.35 mg/kg/h for 4 h, capped at 25 mg/h, 100 mL at 25 mL/h."""

    def test_80kg_is_capped(self, library: ProtocolLibrary) -> None:
        result = dose(library, "crps", 80)
        (phase,) = result.phases
        # 0.35 x 80 = 28 mg/h > 25 mg/h cap -> 25 mg/h = 25/80 = 0.3125 mg/kg/h
        # 25 mg/h x 4 h = 100 mg = 1.25 mg/kg (Schwartzman: "100 mg per 4 h")
        # 100 mg in 100 mL = 1 mg/mL; 25 / 1 = 25 mL/h; 100 mL
        assert_phase(
            phase,
            kind="rate",
            dose_mg=100.0,
            dose_mg_per_kg=1.25,
            duration_min=240.0,
            rate_mg_per_h=25.0,
            rate_mg_per_kg_per_h=0.3125,
            pump_rate_ml_per_h=25.0,
            pump_rate_ml_per_h_rounded=25.0,
            volume_ml=100.0,
        )
        assert_totals(
            result, total_dose_mg=100.0, total_dose_mg_per_kg=1.25, total_duration_min=240
        )
        # draw 100 / 10 = 10 mL; 100 - 10 = 90 mL
        assert_preparation(
            result.preparation,
            draw_ml=10.0,
            draw_ml_rounded=10.0,
            final_volume_ml=100.0,
            final_mg_per_ml=1.0,
            diluent_ml=90.0,
        )
        assert codes(result) == {"protocol-library-unapproved", "protocol-cap-applied"}

    def test_60kg_is_under_the_cap(self, library: ProtocolLibrary) -> None:
        result = dose(library, "crps", 60)
        (phase,) = result.phases
        # 0.35 x 60 = 21 mg/h <= 25 mg/h: not capped; 21 x 4 = 84 mg = 0.35 x 4 = 1.4 mg/kg
        # 84 mg in 100 mL = 0.84 mg/mL; 21 / 0.84 = 25 mL/h; 84 / 0.84 = 100 mL
        assert_phase(
            phase,
            kind="rate",
            dose_mg=84.0,
            dose_mg_per_kg=1.4,
            duration_min=240.0,
            rate_mg_per_h=21.0,
            rate_mg_per_kg_per_h=0.35,
            pump_rate_ml_per_h=25.0,
            pump_rate_ml_per_h_rounded=25.0,
            volume_ml=100.0,
        )
        assert_totals(result, total_dose_mg=84.0, total_dose_mg_per_kg=1.4, total_duration_min=240)
        # draw 84 / 10 = 8.4 mL; 100 - 8.4 = 91.6 mL
        assert_preparation(
            result.preparation,
            draw_ml=8.4,
            draw_ml_rounded=8.4,
            final_volume_ml=100.0,
            final_mg_per_ml=0.84,
            diluent_ml=91.6,
        )
        assert codes(result) == {"protocol-library-unapproved"}


class TestChronicPain:
    """Chronic pain (Cohen 2018 low end): 0.5 mg/kg/h for 4 h, uncapped, in 100 mL."""

    def test_140kg(self, library: ProtocolLibrary) -> None:
        result = dose(library, "chronic-pain", 140)
        (phase,) = result.phases
        # 0.5 x 140 = 70 mg/h (no cap in this protocol); 70 x 4 = 280 mg = 0.5 x 4 = 2 mg/kg
        # (>= the consensus' 80 mg over > 2 h)
        # 280 mg in 100 mL = 2.8 mg/mL; 70 / 2.8 = 25 mL/h; 280 / 2.8 = 100 mL
        assert_phase(
            phase,
            kind="rate",
            dose_mg=280.0,
            dose_mg_per_kg=2.0,
            duration_min=240.0,
            rate_mg_per_h=70.0,
            rate_mg_per_kg_per_h=0.5,
            pump_rate_ml_per_h=25.0,
            pump_rate_ml_per_h_rounded=25.0,
            volume_ml=100.0,
        )
        assert_totals(result, total_dose_mg=280.0, total_dose_mg_per_kg=2.0, total_duration_min=240)
        # draw 280 / 10 = 28 mL; 100 - 28 = 72 mL
        assert_preparation(
            result.preparation,
            draw_ml=28.0,
            draw_ml_rounded=28.0,
            final_volume_ml=100.0,
            final_mg_per_ml=2.8,
            diluent_ml=72.0,
        )
        assert codes(result) == {"protocol-library-unapproved"}

    def test_40kg_reaches_the_consensus_80mg(self, library: ProtocolLibrary) -> None:
        result = dose(library, "chronic-pain", 40)
        # 0.5 x 40 = 20 mg/h x 4 h = 80 mg: the toml's "reaches 80 mg at >= 40 kg"
        assert result.total_dose_mg == pytest.approx(80.0, rel=REL)


class TestNeuropathicPain:
    """Neuropathic pain (Rema 2012): day 1 at 0.2 mg/kg/h for 4 h in 100 mL."""

    def test_75kg(self, library: ProtocolLibrary) -> None:
        result = dose(library, "neuropathic-pain", 75)
        (phase,) = result.phases
        # 0.2 x 75 = 15 mg/h; 15 x 4 = 60 mg = 0.2 x 4 = 0.8 mg/kg
        # 60 mg in 100 mL = 0.6 mg/mL; 15 / 0.6 = 25 mL/h; 100 mL
        assert_phase(
            phase,
            kind="rate",
            dose_mg=60.0,
            dose_mg_per_kg=0.8,
            duration_min=240.0,
            rate_mg_per_h=15.0,
            rate_mg_per_kg_per_h=0.2,
            pump_rate_ml_per_h=25.0,
            pump_rate_ml_per_h_rounded=25.0,
            volume_ml=100.0,
        )
        assert_totals(result, total_dose_mg=60.0, total_dose_mg_per_kg=0.8, total_duration_min=240)
        # draw 60 / 10 = 6 mL; 100 - 6 = 94 mL
        assert_preparation(
            result.preparation,
            draw_ml=6.0,
            draw_ml_rounded=6.0,
            final_volume_ml=100.0,
            final_mg_per_ml=0.6,
            diluent_ml=94.0,
        )
        assert codes(result) == {"protocol-library-unapproved"}


class TestFibromyalgia:
    """Fibromyalgia (Graven-Nielsen 2000): 0.3 mg/kg over 30 min in 100 mL gives 200 mL/h."""

    def test_70kg(self, library: ProtocolLibrary) -> None:
        result = dose(library, "fibromyalgia", 70)
        (phase,) = result.phases
        # 0.3 x 70 = 21 mg over 30 min: 21 x 2 = 42 mg/h; 0.3 x 2 = 0.6 mg/kg/h
        # 21 mg in 100 mL = 0.21 mg/mL; 42 / 0.21 = 200 mL/h; 100 mL
        assert_phase(
            phase,
            kind="timed",
            dose_mg=21.0,
            dose_mg_per_kg=0.3,
            duration_min=30.0,
            rate_mg_per_h=42.0,
            rate_mg_per_kg_per_h=0.6,
            pump_rate_ml_per_h=200.0,
            pump_rate_ml_per_h_rounded=200.0,
            volume_ml=100.0,
        )
        assert_totals(result, total_dose_mg=21.0, total_dose_mg_per_kg=0.3, total_duration_min=30)
        # draw 21 / 10 = 2.1 mL; 100 - 2.1 = 97.9 mL
        assert_preparation(
            result.preparation,
            draw_ml=2.1,
            draw_ml_rounded=2.1,
            final_volume_ml=100.0,
            final_mg_per_ml=0.21,
            diluent_ml=97.9,
        )
        assert codes(result) == {"protocol-library-unapproved"}


class TestMigraine:
    """Migraine (Lauritsen 2016): first 4-h titration step at 0.1 mg/kg/h in 100 mL."""

    def test_70kg(self, library: ProtocolLibrary) -> None:
        result = dose(library, "migraine", 70)
        (phase,) = result.phases
        # 0.1 x 70 = 7 mg/h; 7 x 4 = 28 mg = 0.1 x 4 = 0.4 mg/kg
        # 28 mg in 100 mL = 0.28 mg/mL; 7 / 0.28 = 25 mL/h; 100 mL
        assert_phase(
            phase,
            kind="rate",
            dose_mg=28.0,
            dose_mg_per_kg=0.4,
            duration_min=240.0,
            rate_mg_per_h=7.0,
            rate_mg_per_kg_per_h=0.1,
            pump_rate_ml_per_h=25.0,
            pump_rate_ml_per_h_rounded=25.0,
            volume_ml=100.0,
        )
        assert_totals(result, total_dose_mg=28.0, total_dose_mg_per_kg=0.4, total_duration_min=240)
        # draw 28 / 10 = 2.8 mL; 100 - 2.8 = 97.2 mL
        assert_preparation(
            result.preparation,
            draw_ml=2.8,
            draw_ml_rounded=2.8,
            final_volume_ml=100.0,
            final_mg_per_ml=0.28,
            diluent_ml=97.2,
        )
        assert codes(result) == {"protocol-library-unapproved"}


class TestAcutePain:
    """Acute pain (Schwenk 2018): 0.35 mg/kg over 5 min, then 0.1 mg/kg/h for 4 h, 50-mL syringe."""

    def test_70kg(self, library: ProtocolLibrary) -> None:
        result = dose(library, "acute-pain", 70)
        bolus, infusion = result.phases
        # Session: 24.5 + 28 = 52.5 mg in 50 mL = 1.05 mg/mL; draw 5.25 mL; 50 - 5.25 = 44.75 mL
        # bolus: 0.35 x 70 = 24.5 mg over 5 min: 24.5 x 12 = 294 mg/h; 0.35 x 12 = 4.2 mg/kg/h
        #   (0.07 mg/kg/min, under CHEO's 0.5 mg/kg/min)
        #   volume 24.5 / 1.05 = 23.333... mL; pump 294 / 1.05 = 280 mL/h (toml: "about 23 mL
        #   over 5 min (280 mL/h)")
        assert_phase(
            bolus,
            kind="bolus",
            dose_mg=24.5,
            dose_mg_per_kg=0.35,
            duration_min=5.0,
            rate_mg_per_h=294.0,
            rate_mg_per_kg_per_h=4.2,
            pump_rate_ml_per_h=280.0,
            pump_rate_ml_per_h_rounded=280.0,
            volume_ml=23.333333333333333,
        )
        # infusion: 0.1 x 70 = 7 mg/h x 4 h = 28 mg = 0.4 mg/kg
        #   volume 28 / 1.05 = 26.666... mL; pump 7 / 1.05 = 6.666... mL/h -> 6.7
        assert_phase(
            infusion,
            kind="rate",
            dose_mg=28.0,
            dose_mg_per_kg=0.4,
            duration_min=240.0,
            rate_mg_per_h=7.0,
            rate_mg_per_kg_per_h=0.1,
            pump_rate_ml_per_h=6.666666666666667,
            pump_rate_ml_per_h_rounded=6.7,
            volume_ml=26.666666666666667,
        )
        # 52.5 mg = 0.35 + 0.4 = 0.75 mg/kg; 5 + 240 = 245 min
        assert_totals(result, total_dose_mg=52.5, total_dose_mg_per_kg=0.75, total_duration_min=245)
        assert_preparation(
            result.preparation,
            draw_ml=5.25,
            draw_ml_rounded=5.25,
            final_volume_ml=50.0,
            final_mg_per_ml=1.05,
            diluent_ml=44.75,
        )
        assert codes(result) == {"protocol-library-unapproved"}


# ---------------------------------------------------------------------------------------------
# Series and escalation steps, as data (checked against clinical.md by hand)
# ---------------------------------------------------------------------------------------------

# (id, sessions, per_week, min_interval in minutes or None)
SERIES = [
    ("depression", 6, (2, 3), None),  # 1.2: 6 infusions, 2-3/week
    ("bipolar-depression", 1, (1, 1), None),  # 1.7: single infusion
    ("suicidal-ideation", 1, (1, 1), None),  # 1.5: single infusion
    ("ptsd", 6, (3, 3), None),  # 1.6: six over 2 weeks, 3/week
    ("ocd", 1, (1, 1), None),  # 1.8: single infusion
    ("social-anxiety", 1, (1, 1), None),  # 1.10: single infusion
    ("alcohol-use-disorder", 1, (1, 1), None),  # 1.9: one infusion in week 2 of MET
    ("cocaine-use-disorder", 1, (1, 1), None),  # 1.9: one 0.71 mg/kg session
    ("depression-im", 1, (1, 1), None),  # 4: no IM series given
    ("anxiety-sc", 3, (1, 1), None),  # 1.10 (Glue 2017): weekly 0.25 -> 0.5 -> 1 mg/kg
    ("depression-sc", 8, (2, 2), None),  # 1.3 (registry): twice weekly for 1 month
    ("depression-sc-kads", 8, (2, 2), None),  # KADS (Loo 2023): twice weekly for 4 weeks
    # Lara 2013: every 2-3 days or weekly; 48 h = 2 x 24 x 60 = 2880 min
    ("depression-sublingual", 8, (1, 3), 2880.0),
    # Al Shirawi 2017: every 3 days; 72 h = 3 x 24 x 60 = 4320 min
    ("depression-oral", 12, (2, 3), 4320.0),
    ("esketamine-nasal", 8, (2, 2), None),  # 3: twice weekly x 4 weeks
    ("crps", 10, (7, 7), 1440.0),  # 2.3: daily x 10 days; 1 d = 24 x 60 = 1440 min
    ("chronic-pain", 1, (1, 1), None),  # site policy
    ("neuropathic-pain", 3, (7, 7), 1440.0),  # 2.4: daily, one day per step
    ("fibromyalgia", 1, (1, 1), None),  # site policy
    ("migraine", 1, (1, 1), None),  # 2.4: one inpatient stay; its [titration] steps within it
    ("acute-pain", 1, (1, 1), None),  # site policy
]

# (id, [(from_session, dose (kind, value) or None, rate (kind, value) or None, duration min)])
Step = tuple[int, tuple[Kind, float] | None, tuple[Kind, float] | None, float | None]
ESCALATION: list[tuple[str, list[Step]]] = [
    # 1.3 (Cusin 2017): 3 at 0.5 mg/kg, then 0.75 mg/kg over 45 min from infusion 4
    ("depression", [(4, (Kind.DOSE_PER_KG, 0.75), None, 45.0)]),
    ("bipolar-depression", []),
    ("suicidal-ideation", []),
    ("ptsd", []),
    ("ocd", []),
    ("social-anxiety", []),
    ("alcohol-use-disorder", []),
    ("cocaine-use-disorder", []),
    ("depression-im", []),
    # 1.10 (Glue 2017): SC 0.25 -> 0.5 -> 1 mg/kg weekly
    (
        "anxiety-sc",
        [(2, (Kind.DOSE_PER_KG, 0.5), None, None), (3, (Kind.DOSE_PER_KG, 1.0), None, None)],
    ),
    # 1.3 (registry): 0.5 -> 0.75 -> 1.0 mg/kg SC, response-guided
    (
        "depression-sc",
        [(3, (Kind.DOSE_PER_KG, 0.75), None, None), (5, (Kind.DOSE_PER_KG, 1.0), None, None)],
    ),
    # KADS (Loo 2023; step list LOW): 0.5 -> 0.6 -> 0.75 -> 0.9 mg/kg SC, two sessions a step
    (
        "depression-sc-kads",
        [
            (3, (Kind.DOSE_PER_KG, 0.6), None, None),
            (5, (Kind.DOSE_PER_KG, 0.75), None, None),
            (7, (Kind.DOSE_PER_KG, 0.9), None, None),
        ],
    ),
    # Lara 2013 gives no dose increase
    ("depression-sublingual", []),
    # Al Shirawi 2017: 50 mg, +25 mg each session (every 3 days) to 300 mg (Andrade 2019):
    # session n is 50 + 25 (n - 1) mg, so 75 mg at 2 ... 300 mg at 11
    ("depression-oral", [(n, (Kind.DOSE, 50.0 + 25 * (n - 1)), None, None) for n in range(2, 12)]),
    # 3: day 1 = 56 mg, then 56 or 84 mg
    ("esketamine-nasal", [(2, (Kind.DOSE, 84.0), None, None)]),
    ("crps", []),
    ("chronic-pain", []),
    # 2.4 (Rema 2012): 0.2 -> 0.4 -> 0.6 mg/kg/h daily
    (
        "neuropathic-pain",
        [(2, None, (Kind.RATE_PER_KG, 0.4), None), (3, None, (Kind.RATE_PER_KG, 0.6), None)],
    ),
    ("fibromyalgia", []),
    # 2.4 (Lauritsen 2016): one stay, stepped by its [titration], not by session steps
    ("migraine", []),
    ("acute-pain", []),
]


def as_pair(quantity: Quantity | None) -> tuple[Kind, float] | None:
    return None if quantity is None else (quantity.kind, quantity.value)


class TestSeriesData:
    """Each protocol's series is the one clinical.md gives (or the documented site policy)."""

    def test_every_protocol_is_listed(self) -> None:
        assert sorted(row[0] for row in SERIES) == sorted(BUILTIN_IDS)

    @pytest.mark.parametrize(("protocol_id", "sessions", "per_week", "min_interval"), SERIES)
    def test_series(
        self,
        library: ProtocolLibrary,
        protocol_id: str,
        sessions: int,
        per_week: tuple[int, int],
        min_interval: float | None,
    ) -> None:
        series = entry_for(library, protocol_id).protocol.series
        assert series.sessions == sessions
        assert series.per_week == per_week
        if min_interval is None:
            assert series.min_interval is None
        else:
            assert series.min_interval is not None
            assert series.min_interval.value == min_interval


class TestEscalationData:
    """Each protocol's escalation steps are the published steps, and only those."""

    def test_every_protocol_is_listed(self) -> None:
        assert sorted(row[0] for row in ESCALATION) == sorted(BUILTIN_IDS)

    @pytest.mark.parametrize(("protocol_id", "steps"), ESCALATION)
    def test_steps(self, library: ProtocolLibrary, protocol_id: str, steps: list[Step]) -> None:
        escalation = entry_for(library, protocol_id).protocol.escalation
        actual = [
            (
                step.from_session,
                as_pair(step.dose),
                as_pair(step.rate),
                None if step.duration is None else step.duration.value,
            )
            for step in escalation
        ]
        assert actual == steps

    def test_migraine_rungs_are_0_1_apart(self, library: ProtocolLibrary) -> None:
        # Lauritsen: +0.1 mg/kg/h per step from 0.1 mg/kg/h; Pomeroy's maximum 1 mg/kg/h
        protocol = entry_for(library, "migraine").protocol
        assert protocol.titration is not None
        assert protocol.phases[0].rate is not None
        assert protocol.phases[0].rate.value == protocol.titration.start.rate.value == 0.1
        assert protocol.titration.rungs == pytest.approx(
            [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
        )
        assert protocol.titration.maximum.rate.value == 1.0


class TestEscalatedDoses:
    """An escalation step given through the --dose/--rate override path doses as worked by hand."""

    def test_depression_step_4_at_80kg(self, library: ProtocolLibrary) -> None:
        result = dose(library, "depression", 80, dose_text="0.75mg/kg", duration_min=45)
        (phase,) = result.phases
        # 0.75 x 80 = 60 mg over 45 min: 60 / 0.75 h = 80 mg/h; 0.75 / 0.75 h = 1 mg/kg/h
        # 60 mg in 100 mL = 0.6 mg/mL; 80 / 0.6 = 133.333... mL/h -> 133.3; 100 mL
        assert_phase(
            phase,
            kind="timed",
            dose_mg=60.0,
            dose_mg_per_kg=0.75,
            duration_min=45.0,
            rate_mg_per_h=80.0,
            rate_mg_per_kg_per_h=1.0,
            pump_rate_ml_per_h=133.33333333333334,
            pump_rate_ml_per_h_rounded=133.3,
            volume_ml=100.0,
        )
        assert_totals(result, total_dose_mg=60.0, total_dose_mg_per_kg=0.75, total_duration_min=45)
        # draw 60 / 10 = 6 mL; 100 - 6 = 94 mL
        assert_preparation(
            result.preparation,
            draw_ml=6.0,
            draw_ml_rounded=6.0,
            final_volume_ml=100.0,
            final_mg_per_ml=0.6,
            diluent_ml=94.0,
        )
        assert codes(result) == {
            "protocol-library-unapproved",
            "dose-override",
            "duration-override",
        }

    def test_neuropathic_day_2_at_75kg(self, library: ProtocolLibrary) -> None:
        result = dose(library, "neuropathic-pain", 75, rate_text="0.4mg/kg/h")
        (phase,) = result.phases
        # 0.4 x 75 = 30 mg/h x 4 h = 120 mg = 1.6 mg/kg
        # 120 mg in 100 mL = 1.2 mg/mL; 30 / 1.2 = 25 mL/h
        assert_phase(
            phase,
            kind="rate",
            dose_mg=120.0,
            dose_mg_per_kg=1.6,
            duration_min=240.0,
            rate_mg_per_h=30.0,
            rate_mg_per_kg_per_h=0.4,
            pump_rate_ml_per_h=25.0,
            pump_rate_ml_per_h_rounded=25.0,
            volume_ml=100.0,
        )
        assert_totals(result, total_dose_mg=120.0, total_dose_mg_per_kg=1.6, total_duration_min=240)
        # draw 120 / 10 = 12 mL; 100 - 12 = 88 mL
        assert_preparation(
            result.preparation,
            draw_ml=12.0,
            draw_ml_rounded=12.0,
            final_volume_ml=100.0,
            final_mg_per_ml=1.2,
            diluent_ml=88.0,
        )
        assert codes(result) == {"protocol-library-unapproved", "rate-override"}

    def test_neuropathic_day_3_at_75kg(self, library: ProtocolLibrary) -> None:
        result = dose(library, "neuropathic-pain", 75, rate_text="0.6mg/kg/h")
        (phase,) = result.phases
        # 0.6 x 75 = 45 mg/h x 4 h = 180 mg = 2.4 mg/kg
        # 180 mg in 100 mL = 1.8 mg/mL; 45 / 1.8 = 25 mL/h
        assert_phase(
            phase,
            kind="rate",
            dose_mg=180.0,
            dose_mg_per_kg=2.4,
            duration_min=240.0,
            rate_mg_per_h=45.0,
            rate_mg_per_kg_per_h=0.6,
            pump_rate_ml_per_h=25.0,
            pump_rate_ml_per_h_rounded=25.0,
            volume_ml=100.0,
        )
        assert_totals(result, total_dose_mg=180.0, total_dose_mg_per_kg=2.4, total_duration_min=240)
        # draw 180 / 10 = 18 mL; 100 - 18 = 82 mL
        assert_preparation(
            result.preparation,
            draw_ml=18.0,
            draw_ml_rounded=18.0,
            final_volume_ml=100.0,
            final_mg_per_ml=1.8,
            diluent_ml=82.0,
        )
        assert codes(result) == {"protocol-library-unapproved", "rate-override"}

    def test_migraine_step_4_at_70kg(self, library: ProtocolLibrary) -> None:
        result = dose(library, "migraine", 70, rate_text="0.4mg/kg/h")
        (phase,) = result.phases
        # 0.4 x 70 = 28 mg/h x 4 h = 112 mg = 1.6 mg/kg
        # 112 mg in 100 mL = 1.12 mg/mL; 28 / 1.12 = 25 mL/h
        assert_phase(
            phase,
            kind="rate",
            dose_mg=112.0,
            dose_mg_per_kg=1.6,
            duration_min=240.0,
            rate_mg_per_h=28.0,
            rate_mg_per_kg_per_h=0.4,
            pump_rate_ml_per_h=25.0,
            pump_rate_ml_per_h_rounded=25.0,
            volume_ml=100.0,
        )
        assert_totals(result, total_dose_mg=112.0, total_dose_mg_per_kg=1.6, total_duration_min=240)
        # draw 112 / 10 = 11.2 mL; 100 - 11.2 = 88.8 mL
        assert_preparation(
            result.preparation,
            draw_ml=11.2,
            draw_ml_rounded=11.2,
            final_volume_ml=100.0,
            final_mg_per_ml=1.12,
            diluent_ml=88.8,
        )
        assert codes(result) == {"protocol-library-unapproved", "rate-override"}

    def test_migraine_step_10_maximum_at_70kg(self, library: ProtocolLibrary) -> None:
        result = dose(library, "migraine", 70, rate_text="1mg/kg/h")
        (phase,) = result.phases
        # 1 x 70 = 70 mg/h x 4 h = 280 mg = 4 mg/kg
        # 280 mg in 100 mL = 2.8 mg/mL; 70 / 2.8 = 25 mL/h
        assert_phase(
            phase,
            kind="rate",
            dose_mg=280.0,
            dose_mg_per_kg=4.0,
            duration_min=240.0,
            rate_mg_per_h=70.0,
            rate_mg_per_kg_per_h=1.0,
            pump_rate_ml_per_h=25.0,
            pump_rate_ml_per_h_rounded=25.0,
            volume_ml=100.0,
        )
        assert_totals(result, total_dose_mg=280.0, total_dose_mg_per_kg=4.0, total_duration_min=240)
        # draw 280 / 10 = 28 mL; 100 - 28 = 72 mL
        assert_preparation(
            result.preparation,
            draw_ml=28.0,
            draw_ml_rounded=28.0,
            final_volume_ml=100.0,
            final_mg_per_ml=2.8,
            diluent_ml=72.0,
        )
        assert codes(result) == {"protocol-library-unapproved", "rate-override"}

    def test_esketamine_session_2_84mg(self, library: ProtocolLibrary) -> None:
        result = dose(library, "esketamine-nasal", None, dose_text="84mg")
        (phase,) = result.phases
        # 84 mg = 3 x 28-mg devices; fixed, no weight, no pump
        assert_phase(
            phase,
            kind="fixed",
            dose_mg=84.0,
            dose_mg_per_kg=None,
            duration_min=None,
            rate_mg_per_h=None,
            rate_mg_per_kg_per_h=None,
            pump_rate_ml_per_h=None,
            pump_rate_ml_per_h_rounded=None,
            volume_ml=None,
        )
        assert_totals(
            result, total_dose_mg=84.0, total_dose_mg_per_kg=None, total_duration_min=None
        )
        assert result.preparation is None
        assert codes(result) == {"protocol-library-unapproved", "dose-override", "no-preparation"}
