"""FHIR R4 Bundles for a session and a plan, validated with fhir.resources (R4B)."""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.careplan import CarePlan
from fhir.resources.R4B.medicationrequest import MedicationRequest
from hypothesis import given
from hypothesis import strategies as st

from ketadose.dosing import DoseRequest
from ketadose.gate import session as assess
from ketadose.libfile import Quantity
from ketadose.limits import LimitLibrary
from ketadose.limits import load_library as load_limits
from ketadose.models import CheckContext, Patient, SessionDose
from ketadose.planning import Plan, PlanRequest, plan
from ketadose.protocols import ProtocolLibrary, load_library
from ketadose.render.fhir import plan_bundle, session_bundle
from ketadose.units import Kind

ZONE = ZoneInfo("Europe/Berlin")

PROTOCOLS: ProtocolLibrary = load_library(None)
LIMITS: LimitLibrary = load_limits(None)
START = date(2026, 11, 30)  # a Monday
SESSION_AT = datetime(2026, 11, 30, 9, 0, tzinfo=ZONE)
RESOURCES: dict[str, type[MedicationRequest] | type[CarePlan]] = {
    "MedicationRequest": MedicationRequest,
    "CarePlan": CarePlan,
}


def make_plan(
    protocol: str = "depression", weight_kg: float = 80.0, patient_id: str | None = "P-0042"
) -> Plan:
    request = PlanRequest(
        zone=ZONE,
        dose=DoseRequest(patient=Patient(weight_kg=weight_kg)),
        start=START,
        patient_id=patient_id,
    )
    return plan(PROTOCOLS.get_protocol(protocol), request, LIMITS)


def make_session(
    protocol: str = "depression",
    weight_kg: float | None = 80.0,
    dose: Quantity | None = None,
    at: datetime | None = SESSION_AT,
    override_reason: str | None = None,
) -> SessionDose:
    request = DoseRequest(patient=Patient(weight_kg=weight_kg), dose=dose)
    entry = PROTOCOLS.get_protocol(protocol)
    return assess(entry, request, LIMITS, CheckContext(at=at), override_reason)


def validate(text: str) -> Any:
    """The Bundle and each resource in it, validated as R4B (R4-compatible) models.

    Returned as Any: every element of the fhir.resources models is Optional, so the tests
    navigate the parsed Bundle untyped (an absent element fails the test as an error).
    """
    data = json.loads(text)
    bundle = Bundle.model_validate(data)
    for entry in data["entry"]:
        resource = entry["resource"]
        RESOURCES[resource["resourceType"]].model_validate(resource)
    return bundle


def requests(bundle: Any) -> list[Any]:
    return [
        e.resource for e in bundle.entry if e.resource.get_resource_type() == "MedicationRequest"
    ]


def by_type(dosage: Any, code: str) -> Any:
    (found,) = [d for d in dosage.doseAndRate if d.type.coding[0].code == code]
    return found


def quantity(value: Any) -> tuple[float, str, str, str]:
    assert isinstance(value.value, Decimal)
    return float(value.value), value.unit, value.system, value.code


def notes(request: Any) -> list[str]:
    return [str(note.text) for note in request.note]


UCUM = "http://unitsofmeasure.org"


class TestPlanBundle:
    """A depression plan is a valid collection: a draft CarePlan and one draft proposal each."""

    def test_validates_as_r4b(self) -> None:
        bundle = validate(plan_bundle(make_plan(), LIMITS))
        assert bundle.type == "collection"
        types = [e.resource.get_resource_type() for e in bundle.entry]
        assert types == ["CarePlan"] + ["MedicationRequest"] * 6

    def test_medication_requests_are_unapproved_proposals(self) -> None:
        for request in requests(validate(plan_bundle(make_plan(), LIMITS))):
            assert (request.status, request.intent) == ("draft", "proposal")
            coding = request.medicationCodeableConcept.coding[0]
            assert (coding.system, coding.code, coding.display) == (
                "http://www.nlm.nih.gov/research/umls/rxnorm",
                "6130",
                "ketamine",
            )
            assert request.subject.identifier.value == "P-0042"
            assert request.authoredOn is None  # no clock is read

    def test_dose_route_pump_and_duration_survive(self) -> None:
        # 0.5 mg/kg x 80 kg = 40 mg, made up to 100 mL (0.4 mg/mL) over 40 min:
        # 100 mL / (40/60 h) = 150 mL/h.
        bundle = validate(plan_bundle(make_plan(), LIMITS))
        for request in requests(bundle):
            (dosage,) = request.dosageInstruction
            assert dosage.sequence == 1
            assert dosage.text == "infusion: 0.5 mg/kg (40 mg) IV over 40 min at 150 mL/h"
            route = dosage.route.coding[0]
            assert (route.system, route.code) == ("http://snomed.info/sct", "47625008")
            ordered = by_type(dosage, "ordered")
            assert ordered.type.coding[0].system == (
                "http://terminology.hl7.org/CodeSystem/dose-rate-type"
            )
            assert quantity(ordered.doseQuantity) == (0.5, "mg/kg", UCUM, "mg/kg")
            assert ordered.rateQuantity is None
            calculated = by_type(dosage, "calculated")
            assert quantity(calculated.doseQuantity) == (40, "mg", UCUM, "mg")
            assert quantity(calculated.rateQuantity) == (150, "mL/h", UCUM, "mL/h")
            assert (dosage.timing.repeat.duration, dosage.timing.repeat.durationUnit) == (40, "min")

    def test_session_dates_and_infusion_start_survive(self) -> None:
        # Mon/Wed/Fri from Monday 30 Nov 2026; infusion at 09:00 + 20 min intake.
        result = make_plan()
        bundle = validate(plan_bundle(result, LIMITS))
        events = [r.dosageInstruction[0].timing.event[0] for r in requests(bundle)]
        expected = [
            f"{day}T09:20:00+01:00"
            for day in (
                "2026-11-30",
                "2026-12-02",
                "2026-12-04",
                "2026-12-07",
                "2026-12-09",
                "2026-12-11",
            )
        ]
        assert [d.isoformat() for d in events] == expected
        assert [e.date() for e in events] == [s.date for s in result.sessions]
        for request in requests(bundle):  # the time is in the event, with its offset
            assert request.dosageInstruction[0].timing.repeat.timeOfDay is None

    def test_care_plan_references_every_request(self) -> None:
        bundle = validate(plan_bundle(make_plan(), LIMITS))
        care_plan = bundle.entry[0].resource
        urls = [e.fullUrl for e in bundle.entry[1:]]
        assert [a.reference.reference for a in care_plan.activity] == urls
        assert len(set(urls)) == 6
        assert all(url.startswith("urn:uuid:") for url in urls)
        for entry in bundle.entry:
            assert entry.fullUrl == f"urn:uuid:{entry.resource.id}"
        for request in requests(bundle):
            assert request.basedOn[0].reference == bundle.entry[0].fullUrl

    def test_care_plan_is_a_draft_over_the_series(self) -> None:
        care_plan = validate(plan_bundle(make_plan(), LIMITS)).entry[0].resource
        assert (care_plan.status, care_plan.intent) == ("draft", "proposal")
        assert care_plan.period.start.isoformat() == "2026-11-30"
        assert care_plan.period.end.isoformat() == "2026-12-11"
        assert "Treatment-resistant depression, IV induction series" in care_plan.description
        assert care_plan.subject.identifier.value == "P-0042"

    def test_max_dose_is_the_per_kg_hard_limit_times_weight(self) -> None:
        # default profile: total_dose_per_kg upper_hard 1.5 mg/kg x 80 kg = 120 mg; no mg limit.
        for request in requests(validate(plan_bundle(make_plan(), LIMITS))):
            maximum = request.dosageInstruction[0].maxDosePerAdministration
            assert quantity(maximum) == (120, "mg", UCUM, "mg")

    def test_notes_name_the_library_and_the_escalation_condition(self) -> None:
        bundle = validate(plan_bundle(make_plan(), LIMITS))
        sha = LIMITS.ref.sha256
        for number, request in enumerate(requests(bundle), 1):
            text = "\n".join(notes(request))
            assert f"Session {number} of 6." in text
            assert f"sha256 {sha} (UNAPPROVED EXAMPLE LIBRARY)" in text
            assert LIMITS.ref.version in text
            assert ("0.75 mg/kg over 45 min" in text) == (number >= 4)
        care_notes = [n.text for n in bundle.entry[0].resource.note]
        assert any("UNAPPROVED EXAMPLE LIBRARY" in n and sha in n for n in care_notes)

    def test_no_patient_id_is_said(self) -> None:
        bundle = validate(plan_bundle(make_plan(patient_id=None), LIMITS))
        for entry in bundle.entry:
            assert entry.resource.subject.display == "patient (id not given)"
            assert entry.resource.subject.identifier is None


class TestRateProtocol:
    """A rate phase orders mg/kg/h and calculates mL/h; the max dose is the smaller limit."""

    def test_crps_orders_mg_per_kg_per_h(self) -> None:
        # 0.35 mg/kg/h x 60 kg = 21 mg/h (under the 25 mg/h cap) for 4 h = 84 mg, in 100 mL
        # (0.84 mg/mL): 21 / 0.84 = 25 mL/h.
        bundle = validate(plan_bundle(make_plan("crps", 60.0), LIMITS))
        assert len(requests(bundle)) == 10
        for request in requests(bundle):
            (dosage,) = request.dosageInstruction
            ordered = by_type(dosage, "ordered")
            assert quantity(ordered.rateQuantity) == (0.35, "mg/kg/h", UCUM, "mg/kg/h")
            assert ordered.doseQuantity is None
            calculated = by_type(dosage, "calculated")
            assert quantity(calculated.doseQuantity) == (84, "mg", UCUM, "mg")
            assert quantity(calculated.rateQuantity) == (25, "mL/h", UCUM, "mL/h")
            assert dosage.timing.repeat.duration == 240
            # crps: total_dose upper_hard 100 mg; total_dose_per_kg 1.4 mg/kg x 60 = 84 mg.
            assert quantity(dosage.maxDosePerAdministration) == (84, "mg", UCUM, "mg")
            assert dosage.text == (
                "4-h infusion: 0.35 mg/kg/h (21 mg/h) IV for 240 min (84 mg) at 25 mL/h"
            )

    def test_crps_capped_rate_and_mg_limit(self) -> None:
        # 0.35 x 80 = 28 mg/h capped at 25 mg/h = 0.3125 mg/kg/h; 100 mg in 100 mL = 1 mg/mL:
        # 25 mL/h. Max: 100 mg beats 1.4 mg/kg x 80 = 112 mg.
        session = make_session("crps", 80.0)
        (request,) = requests(validate(session_bundle(session, LIMITS)))
        (dosage,) = request.dosageInstruction
        assert quantity(by_type(dosage, "ordered").rateQuantity)[0] == 0.3125
        calculated = by_type(dosage, "calculated")
        assert quantity(calculated.doseQuantity)[0] == 100
        assert quantity(calculated.rateQuantity)[0] == 25
        assert quantity(dosage.maxDosePerAdministration)[0] == 100


class TestSessionBundle:
    """One checked session is a Bundle with one MedicationRequest."""

    def test_single_dose_with_its_time(self) -> None:
        bundle = validate(session_bundle(make_session(), LIMITS))
        assert [e.resource.get_resource_type() for e in bundle.entry] == ["MedicationRequest"]
        (request,) = requests(bundle)
        assert request.subject.display == "patient (id not given)"
        timing = request.dosageInstruction[0].timing
        assert [e.isoformat() for e in timing.event] == ["2026-11-30T09:00:00+01:00"]
        assert timing.repeat.timeOfDay is None

    def test_aware_time_is_a_full_datetime(self) -> None:
        at = datetime.fromisoformat("2026-11-30T09:00:00+01:00")
        text = session_bundle(make_session(at=at), LIMITS)
        (request,) = requests(validate(text))
        timing = request.dosageInstruction[0].timing
        assert timing.event[0] == at
        assert timing.repeat.timeOfDay is None

    def test_no_time_gives_duration_only(self) -> None:
        (request,) = requests(validate(session_bundle(make_session(at=None), LIMITS)))
        timing = request.dosageInstruction[0].timing
        assert timing.event is None
        assert timing.repeat.duration == 40

    def test_phases_are_sequenced_and_timed(self) -> None:
        # 0.11 mg/kg x 80 = 8.8 mg over 2 min, then 0.6 mg/kg x 80 = 48 mg over 50 min from 09:02.
        (request,) = requests(
            validate(session_bundle(make_session("alcohol-use-disorder"), LIMITS))
        )
        loading, infusion = request.dosageInstruction
        assert (loading.sequence, infusion.sequence) == (1, 2)
        assert quantity(by_type(loading, "ordered").doseQuantity)[:2] == (0.11, "mg/kg")
        assert quantity(by_type(loading, "calculated").doseQuantity)[:2] == (8.8, "mg")
        assert quantity(by_type(infusion, "calculated").doseQuantity)[:2] == (48, "mg")
        assert infusion.timing.event[0].isoformat() == "2026-11-30T09:02:00+01:00"

    def test_hard_limit_withholds_the_pump_rate(self) -> None:
        # 3 mg/kg is twice the 1.5 mg/kg hard maximum: refused, no pump programme.
        session = make_session(dose=Quantity(Kind.DOSE_PER_KG, 3.0, "3 mg/kg"))
        assert session.status == "hard"
        (request,) = requests(validate(session_bundle(session, LIMITS)))
        (dosage,) = request.dosageInstruction
        calculated = by_type(dosage, "calculated")
        assert calculated.rateQuantity is None
        assert quantity(calculated.doseQuantity)[0] == 240
        assert "no pump rate: withheld, a hard limit is exceeded" in dosage.text
        text = "\n".join(notes(request))
        assert "Pump programme and preparation withheld: a hard limit is exceeded." in text
        assert "HARD total-dose-per-kg-high:" in text
        assert "Preparation:" not in text

    def test_soft_override_reason_is_noted(self) -> None:
        # 1.2 mg/kg is above the 1 mg/kg soft maximum, below the 1.5 mg/kg hard one.
        dose = Quantity(Kind.DOSE_PER_KG, 1.2, "1.2 mg/kg")
        session = make_session(dose=dose, override_reason="responder at 1.2 mg/kg")
        assert (session.status, session.ready) == ("soft", True)
        (request,) = requests(validate(session_bundle(session, LIMITS)))
        text = "\n".join(notes(request))
        assert (
            "SOFT total-dose-per-kg-high: total dose 1.2 mg/kg exceeds the soft maximum 1 mg/kg"
            in text
        )
        assert "Overridden, reason: responder at 1.2 mg/kg" in text
        assert (
            "Preparation: draw 9.6 mL of 10 mg/mL (96 mg), add 90.4 mL 0.9% sodium chloride "
            "to make 100 mL of 0.96 mg/mL." in text
        )

    def test_intramuscular_has_no_pump_rate_and_no_withholding(self) -> None:
        (request,) = requests(validate(session_bundle(make_session("depression-im"), LIMITS)))
        (dosage,) = request.dosageInstruction
        assert dosage.route.coding[0].code == "78421000"
        assert by_type(dosage, "calculated").rateQuantity is None
        assert dosage.text == "IM injection: 0.5 mg/kg (40 mg) IM"
        assert dosage.timing.repeat is None  # no duration, and the time is the event

    def test_esketamine_is_text_only_and_fixed_in_mg(self) -> None:
        (request,) = requests(validate(session_bundle(make_session("esketamine-nasal"), LIMITS)))
        # A non-IV request references a contained Medication that carries the dose form.
        assert request.medicationReference.reference == "#medication"
        (medication,) = request.contained
        assert medication.code.coding is None
        assert medication.code.text == "esketamine"
        assert (medication.form.coding[0].code, medication.form.text) == (
            "385157007",
            "Conventional release nasal spray",
        )
        (dosage,) = request.dosageInstruction
        assert dosage.route.coding[0].code == "46713006"
        assert quantity(by_type(dosage, "ordered").doseQuantity)[:2] == (56, "mg")
        # esketamine-nasal: total_dose upper_hard 84 mg.
        assert quantity(dosage.maxDosePerAdministration)[0] == 84


@pytest.mark.parametrize(
    ("protocol", "route", "form"),
    [
        ("depression-im", "78421000", ("385219001", "Conventional release solution for injection")),
        ("anxiety-sc", "34206005", ("385219001", "Conventional release solution for injection")),
        ("depression-oral", "26643006", ("385023001", "Conventional release oral solution")),
        # No SNOMED code for a sublingual solution was confirmed: the form is text only.
        ("depression-sublingual", "37839007", (None, "sublingual solution")),
    ],
)
def test_every_route_has_its_route_code_and_dose_form(
    protocol: str, route: str, form: tuple[str | None, str]
) -> None:
    (request,) = requests(validate(session_bundle(make_session(protocol), LIMITS)))
    (medication,) = request.contained
    assert medication.code.coding[0].code == "6130"  # RxNorm ketamine
    code = None if medication.form.coding is None else medication.form.coding[0].code
    assert (code, medication.form.text) == form
    (dosage,) = request.dosageInstruction
    assert dosage.route.coding[0].code == route
    notes = " ".join(note.text for note in request.note)
    if protocol == "depression-oral":
        # 50 mg = 1 mL of 50 mg/mL; 20-25 % of 50 mg = 10-12.5 mg.
        assert "Measure 1 mL of oral solution 50 mg/mL (50 mg)." in notes
        assert "about 10-12.5 mg systemic at 20-25 %" in notes
    if protocol == "anxiety-sc":
        assert "Systemic: not estimated (no sc bioavailability in the sources)." in notes


def test_an_iv_request_keeps_its_medication_code() -> None:
    (request,) = requests(validate(session_bundle(make_session("depression"), LIMITS)))
    assert request.medicationCodeableConcept.coding[0].code == "6130"
    assert request.contained is None


def literals(text: str) -> list[str]:
    """Every JSON number in the text, as written."""
    found: list[str] = []

    def keep(literal: str) -> float:
        found.append(literal)
        return float(literal)

    json.loads(text, parse_float=keep, parse_int=keep)
    return found


def significant(literal: str) -> int:
    """Significant digits of a number literal (leading and trailing zeros not counted)."""
    mantissa = re.split("[eE]", literal)[0]
    return len(re.sub("[^0-9]", "", mantissa).strip("0"))


class TestDeterminism:
    """Same plan, same bytes; ids follow the content; numbers carry no float noise."""

    def test_two_renders_are_identical(self) -> None:
        assert plan_bundle(make_plan(), LIMITS) == plan_bundle(make_plan(), LIMITS)
        assert session_bundle(make_session(), LIMITS) == session_bundle(make_session(), LIMITS)

    def test_text_shape(self) -> None:
        text = plan_bundle(make_plan(), LIMITS)
        assert text.endswith("}\n")
        assert text.startswith('{\n  "resourceType": "Bundle",')

    def test_ids_follow_the_content(self) -> None:
        one = json.loads(plan_bundle(make_plan(patient_id="P-1"), LIMITS))
        two = json.loads(plan_bundle(make_plan(patient_id="P-2"), LIMITS))
        assert one["id"] != two["id"]
        assert {e["fullUrl"] for e in one["entry"]}.isdisjoint(e["fullUrl"] for e in two["entry"])

    def test_no_float_noise(self) -> None:
        # 0.35 mg/kg/h x 70.3 kg x 4 h is 98.41999999999999 in binary floats; the core keeps
        # 15 significant digits (98.42), as does the Bundle.
        session = make_session("crps", 70.3)
        assert session.total_dose_mg == 98.42
        text = session_bundle(session, LIMITS)
        assert '"value": 98.42,' in text
        assert "9999" not in text
        for literal in literals(text) + literals(plan_bundle(make_plan("crps", 73.7), LIMITS)):
            assert significant(literal) <= 15, literal


class TestProperties:
    """Any plausible weight gives a valid Bundle whose mg is the ordered mg/kg times the weight."""

    @given(weight=st.floats(min_value=30, max_value=200, allow_nan=False))
    def test_depression_plan(self, weight: float) -> None:
        result = make_plan(weight_kg=weight)
        assert result.dosing_weight is not None
        kg = result.dosing_weight.kg
        for request in requests(validate(plan_bundle(result, LIMITS))):
            for dosage in request.dosageInstruction:
                per_kg = float(by_type(dosage, "ordered").doseQuantity.value)
                mg = float(by_type(dosage, "calculated").doseQuantity.value)
                assert mg == pytest.approx(per_kg * kg, rel=1e-9)
