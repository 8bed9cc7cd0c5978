"""The HTML plan and session sheets: real plans from the shipped libraries, read back as text."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import date, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from ketadose.dosing import DoseRequest, session_dose
from ketadose.gate import session as assess
from ketadose.libfile import Quantity
from ketadose.limits import LimitLibrary
from ketadose.limits import load_library as load_limits
from ketadose.models import CheckContext, MedicationUse, Patient, SessionDose, Sex, Vitals
from ketadose.planning import Plan, PlanRequest, plan
from ketadose.protocols import ProtocolEntry, load_library
from ketadose.render.html import plan_sheet, session_sheet
from ketadose.units import Kind
from tests.factories import TIMED, limits_library, protocol

ZONE = ZoneInfo("Europe/Berlin")

VOID = {"meta", "br", "col", "hr", "img", "input", "link", "wbr"}
#: Elements whose edges separate words when a sheet is read as text (not strong, code...).
BREAKS = {"br", "p", "div", "span", "h1", "h2", "h3", "li", "dt", "dd", "tr", "td", "th", "text"}
SHIPPED_LIMITS = load_limits(None)
DEPRESSION = load_library(None).get_protocol("depression")
OVERRIDE = "partial response at 0.5 mg/kg, reviewed by Dr A"


def example_plan(
    entry: ProtocolEntry = DEPRESSION,
    limits: LimitLibrary = SHIPPED_LIMITS,
    dose: str | None = None,
    patient: Patient | None = None,
    **request: Any,
) -> Plan:
    """The 80 kg, 178 cm patient's plan from Monday 2026-11-30 (P-0042, 400-800 USD)."""
    quantity = None if dose is None else Quantity(Kind.DOSE_PER_KG, float(dose), f"{dose}mg/kg")
    options: dict[str, Any] = {"patient_id": "P-0042", "price": (400.0, 800.0), **request}
    return plan(
        entry,
        PlanRequest(
            zone=ZONE,
            dose=DoseRequest(
                patient=patient or Patient(weight_kg=80.0, height_cm=178.0), dose=quantity
            ),
            start=date(2026, 11, 30),
            **options,
        ),
        limits,
    )


class Sheet(HTMLParser):
    """Reads a sheet: checks that every element is closed in order, and keeps the text."""

    def __init__(self, markup: str) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.chunks: list[str] = []
        self.classes: list[str] = []
        self.feed(markup)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.classes += (dict(attrs).get("class") or "").split()
        if tag in BREAKS:
            self.chunks.append(" ")
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.classes += (dict(attrs).get("class") or "").split()

    def handle_endtag(self, tag: str) -> None:
        assert self.stack, f"</{tag}> closes nothing"
        if tag in BREAKS:
            self.chunks.append(" ")
        opened = self.stack.pop()
        assert opened == tag, f"<{opened}> closed by </{tag}>"

    def handle_data(self, data: str) -> None:
        if self.stack and self.stack[-1] in ("style", "title"):
            return
        self.chunks.append(data)

    @property
    def text(self) -> str:
        """All visible text, whitespace collapsed."""
        return " ".join("".join(self.chunks).split())


def read(markup: str) -> Sheet:
    sheet = Sheet(markup)
    assert sheet.stack == [], f"unclosed: {sheet.stack}"
    return sheet


@pytest.fixture(scope="module")
def base_plan() -> Plan:
    return example_plan()


@pytest.fixture(scope="module")
def base_html(base_plan: Plan) -> str:
    return plan_sheet(base_plan)


class TestPlanContent:
    """The sheet shows the plan's real numbers, clinically formatted, in the documented order."""

    def test_parses_with_every_element_closed(self, base_html: str) -> None:
        assert base_html.startswith("<!DOCTYPE html>")
        read(base_html)

    def test_header_names_protocol_and_libraries(self, base_plan: Plan, base_html: str) -> None:
        text = read(base_html).text
        assert text.startswith(
            "ketadose treatment plan Treatment-resistant depression, IV induction series "
            "protocol depression · category psychiatric · route IV"
        )
        assert "ketadose example limit library 2026.12.3" in text
        assert "ketadose shipped protocols (example) 2026.12.1" in text
        assert base_plan.library.sha256 in text
        assert base_plan.protocol_library.sha256 in text

    def test_patient_and_dosing_weight(self, base_html: str) -> None:
        text = read(base_html).text
        assert "Patient id P-0042 Weight 80 kg Height 178 cm Sex not given Age not given" in text
        assert "BMI 25.2 kg/m²" in text  # 80 / 1.78² = 25.249
        assert "Dosing weight 80 kg (actual body weight)" in text

    def test_every_session_with_dose_date_and_pump(self, base_html: str) -> None:
        text = read(base_html).text
        # 0.5 mg/kg x 80 kg = 40 mg over 40 min; 100 mL bag -> 150 mL/h; 4 mL of 10 mg/mL.
        days = ["2026-11-30 Mon", "2026-12-02 Wed", "2026-12-04 Fri"]
        days += ["2026-12-07 Mon", "2026-12-09 Wed", "2026-12-11 Fri"]
        for number, day in enumerate(days, 1):
            row = (
                f"{number} {day} 09:00 CET 40 mg 0.5 mg/kg 40 min infusion (timed): 40 mg over 40 min "
                "0.75 mg/kg/h pump 150 mL/h · 100 mL draw 4 mL of 10 mg/mL (40 mg), add 96 mL "
                "0.9% sodium chloride to make 100 mL of 0.4 mg/mL arrive 09:00 "
                "infusion 09:20–10:00 discharge ≥ 10:30 (observation 30 min) ok "
                f"{40 * number} mg"
            )
            assert row in text

    def test_conditions_on_the_sessions_they_apply_to(self, base_html: str) -> None:
        text = read(base_html).text
        assert text.count("Condition: from session 4: 0.75 mg/kg over 45 min if") == 3

    def test_sections_in_order(self, base_html: str) -> None:
        text = read(base_html).text
        order = [
            "UNAPPROVED EXAMPLE LIBRARY",
            "Libraries",
            "Patient id",
            "Protocol sources",
            "Sessions",
            "Dose per session (mg)",
            "Findings",
            "Escalation conditions",
            "Evaluation",
            "Maintenance options",
            "Adjuncts",
            "Before each session",
            "Discharge criteria",
            "Cost estimate",
            "Status ok",
            "Prescriber: name signature date",
            "Nurse: name signature date",
            "Decision support for licensed clinicians",
        ]
        positions = [text.index(heading) for heading in order]
        assert positions == sorted(positions)

    def test_protocol_notes_show_their_source(self, base_plan: Plan, base_html: str) -> None:
        text = read(base_html).text
        for reference in base_plan.references:
            assert reference in text
        for note in (*base_plan.maintenance, *base_plan.before, *base_plan.discharge):
            assert f"{note.text} Source: {note.source} · evidence {note.evidence}" in text
        ondansetron = base_plan.adjuncts[0]
        assert f"ondansetron: {ondansetron.dose}; {ondansetron.purpose}" in text
        assert f"Source: {ondansetron.source} · evidence LOW" in text
        assert base_plan.evaluation in text

    def test_cost_per_session_and_series(self, base_html: str) -> None:
        text = read(base_html).text
        assert "400 USD to 800 USD per session; 2400 USD to 4800 USD for 6 sessions" in text

    def test_no_cost_section_without_a_price(self) -> None:
        assert "Cost estimate" not in plan_sheet(example_plan(price=None))

    def test_status_and_readiness(self, base_html: str) -> None:
        text = read(base_html).text
        assert "Status ok: within the limit library. Ready: nothing stops the series." in text
        assert "Override reason: none given" in text

    def test_chart_has_one_bar_per_session(self, base_html: str) -> None:
        assert base_html.count('class="bar"') == 6
        assert len(re.findall(r'<text class="value" [^>]*>40</text>', base_html)) == 6

    def test_info_findings_listed_once_with_their_sessions(self, base_html: str) -> None:
        text = read(base_html).text
        assert "1–6 info library-unapproved UNAPPROVED EXAMPLE LIBRARY: limits" in text
        assert "1–6 info protocol-library-unapproved" in text

    def test_numbers_never_show_float_noise(self) -> None:
        # 176 lb = 79.83225712 kg: the dose is 39.91612856 mg, shown to 0.01 mg.
        sheet = plan_sheet(example_plan(patient=Patient(weight_kg=79.83225712, height_cm=178)))
        text = read(sheet).text
        assert "Weight 79.8 kg" in text
        assert "Dosing weight 79.83 kg" in text
        assert "39.92 mg 0.5 mg/kg" in text
        assert not re.search(r"\d\.\d{4,} ?(mg|mL|kg|cm|min|h|USD)\b", text)

    def test_patient_details_when_known(self) -> None:
        patient = Patient(weight_kg=62.5, height_cm=165.0, sex=Sex.FEMALE, age_years=44)
        text = read(plan_sheet(example_plan(patient=patient))).text
        assert "Weight 62.5 kg Height 165 cm Sex female Age 44 y BMI 23 kg/m²" in text

    def test_missing_patient_id_is_said(self) -> None:
        text = read(plan_sheet(example_plan(patient_id=None))).text
        assert "Patient id not given" in text

    def test_letter_paper(self, base_plan: Plan) -> None:
        letter = plan_sheet(base_plan, paper="letter")
        assert '<html lang="en" class="letter">' in letter
        assert "@page letter { size: letter; margin: 15mm; }" in letter
        assert '<html lang="en" class="a4">' in plan_sheet(base_plan)


class TestApproval:
    """The UNAPPROVED EXAMPLE LIBRARY banner appears exactly when a library names no approver."""

    def test_banner_for_the_shipped_libraries(self, base_html: str) -> None:
        sheet = read(base_html)
        assert "banner" in sheet.classes
        assert (
            "UNAPPROVED EXAMPLE LIBRARY Limit library “ketadose example limit library” 2026.12.3, "
            "Protocol library “ketadose shipped protocols (example)” 2026.12.1 are shipped as an "
            "example and name no approver. A clinic must review and approve its own library"
        ) in sheet.text

    def test_no_banner_when_both_libraries_are_approved(self) -> None:
        approved = limits_library()
        assert approved.ref.approved
        sheet = read(plan_sheet(example_plan(protocol(TIMED), approved)))
        assert "banner" not in sheet.classes
        assert "UNAPPROVED" not in sheet.text
        assert "NOT APPROVED" not in sheet.text

    def test_approved_limits_with_shipped_protocols_still_warns(self) -> None:
        sheet = read(plan_sheet(example_plan(DEPRESSION, limits_library())))
        assert "banner" in sheet.classes
        assert "UNAPPROVED EXAMPLE LIBRARY Protocol library “ketadose shipped protocols" in (
            sheet.text
        )


class TestLimits:
    """Soft findings show with their override; a hard finding withholds the pump programme."""

    def test_soft_findings_overridden_with_the_reason(self) -> None:
        # 1.2 mg/kg: above the shipped soft 1 mg/kg and 1.5 mg/kg/h, below the hard 1.5 / 2.
        html = plan_sheet(example_plan(dose="1.2", override_reason=OVERRIDE))
        text = read(html).text
        assert "96 mg 1.2 mg/kg" in text  # 1.2 x 80
        assert (
            "1–6 SOFT total-dose-per-kg-high total dose 1.2 mg/kg exceeds the soft maximum 1 mg/kg"
        ) in text
        assert "SOFT rate-per-kg-high rate (infusion) 1.8 mg/kg/h" in text
        assert f"overridden: {OVERRIDE}" in text
        assert f"Plan override reason: {OVERRIDE}" in text
        assert "Status soft: soft limits are exceeded and overridden with a reason. Ready" in text

    def test_soft_findings_without_a_reason_are_not_ready(self) -> None:
        text = read(plan_sheet(example_plan(dose="1.2"))).text
        assert "not overridden" in text
        assert "NOT READY: the series must not go ahead as it stands." in text
        assert "Plan override reason: none given" in text

    def test_hard_limit_withholds_the_programme(self) -> None:
        html = plan_sheet(example_plan(dose="3"))
        text = read(html).text
        # programme and preparation of each of the 6 sessions
        assert text.count("withheld: hard limit") == 12
        assert "mL/h" not in text.split("Findings")[0].split("Sessions")[-1]
        assert "HARD total-dose-per-kg-high total dose 3 mg/kg exceeds the hard maximum" in text
        assert "240 mg 3 mg/kg 40 min refused" in text
        assert "* refused: a hard limit is exceeded" in text
        assert "S1*" in html
        assert "NOT READY" in text

    def test_intranasal_has_no_preparation_but_is_not_withheld(self) -> None:
        entry = load_library(None).get_protocol("esketamine-nasal")
        text = read(
            plan_sheet(example_plan(entry, patient=Patient(weight_kg=80.0, age_years=40)))
        ).text
        assert "no preparation (not drawn from a vial)" in text
        assert "withheld" not in text
        assert "intranasal dose (2 x 28-mg devices) (fixed): 56 mg" in text


class TestSafety:
    """The sheet is one self-contained, script-free, deterministic file."""

    @pytest.mark.parametrize(
        "forbidden", ["http://", "https://", "<script", "src=", "url(", "@import", "<link", "href="]
    )
    def test_no_external_reference_or_script(self, base_html: str, forbidden: str) -> None:
        assert forbidden not in base_html.lower()

    def test_no_event_handler_attributes(self, base_html: str) -> None:
        assert not re.search(r"\son[a-z]+=", base_html)

    def test_deterministic(self, base_html: str) -> None:
        assert plan_sheet(example_plan()) == base_html

    def test_patient_id_is_escaped(self) -> None:
        html = plan_sheet(example_plan(patient_id="<b>x</b>"))
        assert "<b>x</b>" not in html
        assert "&lt;b&gt;x&lt;/b&gt;" in html
        assert "Patient id <b>x</b>" in read(html).text

    def test_override_reason_is_escaped(self) -> None:
        html = plan_sheet(example_plan(dose="1.2", override_reason='<img src=x onerror="y">'))
        assert "<img" not in html
        assert "overridden: &lt;img src=x onerror=&#34;y&#34;&gt;" in html

    def test_import_does_not_load_jinja2(self) -> None:
        code = "import sys, ketadose.render.html; print('jinja2' in sys.modules)"
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert done.stdout.strip() == "False", done.stderr


class TestSessionSheet:
    """One checked session on a sheet, from the same building blocks as the plan."""

    @pytest.fixture(scope="class")
    @classmethod
    def checked(cls) -> str:
        context = CheckContext(
            at=datetime(2026, 11, 30, 9, 0, tzinfo=ZONE),
            vitals=Vitals(systolic=130, diastolic=80, heart_rate=72, spo2=98),
            medications=(MedicationUse("lorazepam", 30),),
        )
        request = DoseRequest(patient=Patient(weight_kg=80.0, height_cm=178.0))
        return session_sheet(assess(DEPRESSION, request, SHIPPED_LIMITS, context))

    def test_programme_and_preparation(self, checked: str) -> None:
        text = read(checked).text
        assert text.startswith("ketadose session sheet Treatment-resistant depression")
        assert "session 2026-11-30 Mon 09:00 CET · dose 40 mg (0.5 mg/kg) · status ok" in text
        assert (
            "infusion timed 40 mg 0.5 mg/kg 40 min 60 mg/h 0.75 mg/kg/h 150 mL/h 100 mL –" in text
        )
        assert "Total 40 mg 0.5 mg/kg 40 min" in text
        assert "programmed in steps of 0.1 mL/h; volumes are drawn in steps of 0.01 mL" in text
        assert "draw 4 mL of 10 mg/mL (40 mg), add 96 mL 0.9% sodium chloride to make" in text

    def test_what_it_was_checked_with(self, checked: str) -> None:
        text = read(checked).text
        assert "Session time 2026-11-30 Mon 09:00" in text
        assert "before the session: BP 130/80 mmHg, heart rate 72 bpm, SpO2 98 %" in text
        assert "Medications lorazepam (last 30 h ago)" in text
        assert "medication-benzodiazepines-held" in text

    def test_shared_blocks(self, checked: str) -> None:
        sheet = read(checked)
        assert "banner" in sheet.classes
        assert "Patient id (write in)" in sheet.text
        assert "Prescriber: name signature date Nurse: name signature date" in sheet.text
        assert f"Limit library sha256 {SHIPPED_LIMITS.ref.sha256[:16]}" in sheet.text
        assert "http" not in checked

    def test_an_unchecked_session_cannot_be_rendered(self) -> None:
        # Only the gate makes the checked type the sheet takes: the dosed session as computed
        # cannot be turned into one, by construction or by validation.
        unchecked = session_dose(DEPRESSION, DoseRequest(patient=Patient(weight_kg=80.0)))
        fields = {**unchecked.model_dump(), "status": "ok", "ready": True}
        fields["library"] = SHIPPED_LIMITS.ref.model_dump()
        with pytest.raises(ValidationError, match="made only by ketadose.gate"):
            SessionDose.model_validate(fields)
        with pytest.raises(ValidationError, match="made only by ketadose.gate"):
            SessionDose(**fields)

    def test_hard_session_is_withheld(self) -> None:
        request = DoseRequest(
            patient=Patient(weight_kg=80.0), dose=Quantity(Kind.DOSE_PER_KG, 3.0, "3mg/kg")
        )
        text = read(session_sheet(assess(DEPRESSION, request, SHIPPED_LIMITS))).text
        assert "withheld: hard limit" in text
        assert "150 mL/h" not in text
        assert "Status hard: a hard limit is exceeded; the session is refused" in text
        assert text.index("REFUSED the dose exceeds a hard limit") < text.index("Libraries")
        assert "Nurse:" not in text and "Refused: not signed, not administered." in text

    def test_im_session_is_undiluted(self) -> None:
        entry = load_library(None).get_protocol("depression-im")
        result = assess(entry, DoseRequest(patient=Patient(weight_kg=80.0)), SHIPPED_LIMITS)
        text = read(session_sheet(result)).text
        assert "draw 4 mL of 10 mg/mL (40 mg), undiluted" in text


class Columns(HTMLParser):
    """Each table of a sheet: its ``<col>`` classes and how many cells its header row has."""

    def __init__(self, markup: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[tuple[list[str], int]] = []
        self._in_head = False
        self.feed(markup)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.tables.append(([], 0))
        elif tag == "col" and self.tables:
            self.tables[-1][0].append(dict(attrs).get("class") or "")
        elif tag == "thead":
            self._in_head = True
        elif tag == "th" and self._in_head and self.tables:
            cols, cells = self.tables[-1]
            self.tables[-1] = (cols, cells + 1)

    def handle_endtag(self, tag: str) -> None:
        if tag == "thead":
            self._in_head = False


@pytest.mark.parametrize("status", ["ok", "hard"])
def test_every_column_of_a_sheet_has_its_width(status: str) -> None:
    """A table with widths gives every column one, 100 % in all: none is cut off the page."""
    from ketadose.render import html as html_module

    markup = plan_sheet(example_plan(dose="3") if status == "hard" else example_plan())
    css = (Path(html_module.__file__).with_name("templates") / "sheet.css").read_text()
    widths = {
        name: float(value) for name, value in re.findall(r"col\.([\w-]+) \{ width: ([\d.]+)%", css)
    }
    measured = [(cols, cells) for cols, cells in Columns(markup).tables if cols]
    assert measured, "the sessions table gives its widths"
    for cols, cells in measured:
        assert len(cols) == cells, f"{cells} columns, {len(cols)} widths"
        assert all(col in widths for col in cols), cols
        assert sum(widths[col] for col in cols) == pytest.approx(100.0)


def test_a_refused_sheet_leads_with_the_refusal_and_has_no_signature_lines() -> None:
    refused = read(plan_sheet(example_plan(dose="3"))).text
    assert refused.index("REFUSED") < refused.index("UNAPPROVED EXAMPLE LIBRARY")
    assert "6 of 6 sessions exceed a hard limit (sessions 1–6)" in refused
    assert "Refused: not signed, not administered." in refused
    assert "Prescriber:" not in refused and "Nurse:" not in refused
    given = read(plan_sheet(example_plan())).text
    assert "REFUSED" not in given
    assert "Prescriber:" in given and "Nurse:" in given
