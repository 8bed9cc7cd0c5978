"""Library approval stated once per record of many sessions, and still shown in every format."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Sequence
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console
from typer.testing import CliRunner

from ketadose.approval import APPROVAL_CODES, shared_approval, without
from ketadose.batch import BatchRecord
from ketadose.cli import app
from ketadose.dosing import DoseRequest
from ketadose.limits import load_library as load_limits
from ketadose.models import Finding, Patient, Severity
from ketadose.planning import Plan, PlanRequest, plan, record_findings
from ketadose.protocols import ProtocolEntry, load_library
from ketadose.render import csv as csv_render
from ketadose.render import fhir, markdown, table
from ketadose.render.batch import jsonl
from ketadose.render.html import plan_sheet
from ketadose.render.json import document
from tests.factories import TIMED, limits_library, protocol


def slim(
    findings: Sequence[Sequence[Finding]],
) -> tuple[tuple[Finding, ...], tuple[tuple[Finding, ...], ...]]:
    """A record's findings stated once, as a plan states them: the shared, and each one's rest."""
    shared = shared_approval(findings)
    return shared, tuple(without(each, shared) for each in findings)


ZONE = ZoneInfo("Europe/Berlin")
DEPRESSION = load_library().get_protocol("depression")
SHIPPED_LIMITS = load_limits()
WORDS = "UNAPPROVED EXAMPLE LIBRARY"
LIMITS_UNAPPROVED = Finding(
    severity=Severity.INFO, code="library-unapproved", message=f"{WORDS}: limits L 1"
)
PROTOCOLS_UNAPPROVED = Finding(
    severity=Severity.INFO, code="protocol-library-unapproved", message=f"{WORDS}: protocols P 1"
)
#: The same code from another library file: not the same finding.
OTHER_LIMITS_UNAPPROVED = Finding(
    severity=Severity.INFO, code="library-unapproved", message=f"{WORDS}: limits M 2"
)
SOFT = Finding(severity=Severity.SOFT, code="systolic-high", message="150 mmHg", value=150)
CAP = Finding(severity=Severity.INFO, code="protocol-cap-applied", message="capped")
POOL = (LIMITS_UNAPPROVED, PROTOCOLS_UNAPPROVED, OTHER_LIMITS_UNAPPROVED, SOFT, CAP)


def depression_plan(limits: Any = SHIPPED_LIMITS, entry: ProtocolEntry = DEPRESSION) -> Plan:
    """The 80 kg patient's six-session depression plan from Monday 2026-11-30."""
    request = PlanRequest(
        zone=ZONE, dose=DoseRequest(patient=Patient(weight_kg=80.0)), start=date(2026, 11, 30)
    )
    return plan(entry, request, limits)


def codes(findings: list[dict[str, Any]]) -> list[str]:
    return [f["code"] for f in findings]


def checked(document_: dict[str, Any]) -> list[dict[str, Any]]:
    """A plan document's sessions and escalation steps."""
    return [*document_["sessions"], *document_["escalation_checks"]]


class TestSharedApproval:
    """The approval findings every session carries identically are the record's."""

    def test_both_shared(self) -> None:
        sessions = [
            (LIMITS_UNAPPROVED, PROTOCOLS_UNAPPROVED),
            (PROTOCOLS_UNAPPROVED, SOFT, LIMITS_UNAPPROVED),
        ]
        assert shared_approval(sessions) == (LIMITS_UNAPPROVED, PROTOCOLS_UNAPPROVED)

    def test_one_session_without_it_keeps_it_per_session(self) -> None:
        sessions = [(LIMITS_UNAPPROVED, PROTOCOLS_UNAPPROVED), (PROTOCOLS_UNAPPROVED,)]
        shared, rest = slim(sessions)
        assert shared == (PROTOCOLS_UNAPPROVED,)
        assert rest == ((LIMITS_UNAPPROVED,), ())

    def test_a_different_message_is_a_different_finding(self) -> None:
        # Two limit libraries (per profile, say): neither finding is every session's.
        shared, rest = slim([(LIMITS_UNAPPROVED,), (OTHER_LIMITS_UNAPPROVED,)])
        assert shared == ()
        assert rest == ((LIMITS_UNAPPROVED,), (OTHER_LIMITS_UNAPPROVED,))

    def test_other_findings_every_session_carries_stay_on_the_sessions(self) -> None:
        shared, rest = slim([(CAP, SOFT), (CAP, SOFT)])
        assert shared == ()
        assert rest == ((CAP, SOFT), (CAP, SOFT))

    def test_no_sessions(self) -> None:
        assert slim([]) == ((), ())

    def test_without_removes_one_occurrence_and_keeps_the_order(self) -> None:
        findings = (SOFT, LIMITS_UNAPPROVED, CAP, LIMITS_UNAPPROVED)
        assert without(findings, (LIMITS_UNAPPROVED,)) == (SOFT, CAP, LIMITS_UNAPPROVED)
        assert without(findings, ()) == findings


session_findings = st.lists(st.sampled_from(POOL), max_size=6).map(tuple)


class TestSlimProperties:
    """Over generated finding lists: nothing lost, nothing doubled, the rest in order."""

    @given(st.lists(session_findings, max_size=8))
    def test_nothing_lost_nothing_duplicated(self, sessions: list[tuple[Finding, ...]]) -> None:
        shared, rest = slim(sessions)
        assert len(set(shared)) == len(shared)
        assert len(rest) == len(sessions)
        for original, kept in zip(sessions, rest, strict=True):
            assert Counter(kept) + Counter(shared) == Counter(original)

    @given(st.lists(session_findings, max_size=8))
    def test_the_rest_keeps_its_order(self, sessions: list[tuple[Finding, ...]]) -> None:
        _, rest = slim(sessions)
        for original, kept in zip(sessions, rest, strict=True):
            remaining = iter(original)
            assert all(any(f == g for g in remaining) for f in kept)  # a subsequence

    @given(st.lists(session_findings, min_size=1, max_size=8))
    def test_shared_is_the_intersection_of_approval_findings(
        self, sessions: list[tuple[Finding, ...]]
    ) -> None:
        shared, _ = slim(sessions)
        approval = [{f for f in s if f.code in APPROVAL_CODES} for s in sessions]
        assert set(shared) == set.intersection(*approval)
        first = [f for f in dict.fromkeys(sessions[0]) if f in set(shared)]
        assert list(shared) == first  # in the first session's order


class TestPlanDocument:
    """plan --json and batch records state the shared approval once, beside ``library``."""

    def test_stated_once_and_left_out_of_sessions_and_steps(self) -> None:
        result = depression_plan()
        data = json.loads(document(result))
        assert data["schema_version"] == 2
        keys = list(data)
        assert keys.index("library_findings") == keys.index("protocol_library") + 1
        assert codes(data["library_findings"]) == [
            "library-unapproved",
            "protocol-library-unapproved",
        ]
        assert all(WORDS in f["message"] for f in data["library_findings"])
        assert data["library"]["approved"] is False
        assert [codes(s["findings"]) for s in checked(data)] == [[]] * 6 + [
            ["dose-override", "duration-override"]
        ]

    def test_the_checked_sessions_in_memory_keep_their_findings(self) -> None:
        # Only the document is slimmer: every renderer and the status checks read these.
        result = depression_plan()
        every = [s.findings for s in result.sessions] + [
            s.findings for s in result.escalation_checks
        ]
        assert len(every) == 7
        for findings in every:
            assert {"library-unapproved", "protocol-library-unapproved"} <= {
                f.code for f in findings
            }

    def test_a_titration_stay_too(self) -> None:
        migraine = load_library().get_protocol("migraine")
        data = json.loads(document(depression_plan(entry=migraine)))
        assert data["titration"] is not None
        assert codes(data["library_findings"]) == [
            "library-unapproved",
            "protocol-library-unapproved",
        ]
        assert not any(f["code"] in APPROVAL_CODES for s in data["sessions"] for f in s["findings"])

    def test_a_batch_record_is_slim_too(self) -> None:
        result = depression_plan()
        record = BatchRecord(line=2, id=None, status=result.status, error=None, plan=result)
        data = json.loads(jsonl(record))
        assert data["schema_version"] == 2
        assert codes(data["plan"]["library_findings"]) == [
            "library-unapproved",
            "protocol-library-unapproved",
        ]
        assert not any(
            f["code"] in APPROVAL_CODES for s in checked(data["plan"]) for f in s["findings"]
        )
        assert "UNAPPROVED" not in json.dumps(checked(data["plan"]))

    def test_approved_libraries_have_none(self) -> None:
        result = depression_plan(limits_library(), protocol(TIMED))
        assert result.library.approved and result.protocol_library.approved
        data = json.loads(document(result))
        assert data["library_findings"] == []
        assert "UNAPPROVED" not in json.dumps(data)

    def test_approved_limits_leave_the_protocol_library_finding(self) -> None:
        data = json.loads(document(depression_plan(limits_library())))
        assert codes(data["library_findings"]) == ["protocol-library-unapproved"]
        assert not any(f["code"] in APPROVAL_CODES for s in checked(data) for f in s["findings"])

    def test_a_finding_not_every_session_carries_stays_on_those_that_do(self) -> None:
        # Approval per profile, as a future library might give it: session 1's profile is
        # approved, the others' not. The plan is rebuilt as the planner would build it.
        result = depression_plan()
        first, *others = result.sessions
        approved_first = first.model_copy(
            update={"findings": tuple(f for f in first.findings if f.code != "library-unapproved")}
        )
        sessions = (approved_first, *others)
        mixed = result.model_copy(
            update={
                "sessions": sessions,
                "library_findings": record_findings(sessions, result.escalation_checks),
            }
        )
        data = json.loads(document(mixed))
        assert codes(data["library_findings"]) == ["protocol-library-unapproved"]
        assert [codes(s["findings"]) for s in data["sessions"]] == [[]] + [
            ["library-unapproved"]
        ] * 5
        assert codes(data["escalation_checks"][0]["findings"])[0] == "library-unapproved"

    def test_a_document_never_loses_a_finding(self) -> None:
        # Even a record that over-states (a finding session 1 does not carry): each session
        # leaves out only what the record states and the session carries.
        result = depression_plan()
        first, *others = result.sessions
        kept = tuple(f for f in first.findings if f.code != "library-unapproved")
        sessions = (first.model_copy(update={"findings": kept}), *others)
        over = result.model_copy(
            update={"sessions": sessions, "library_findings": result.library_findings}
        )
        data = json.loads(document(over))
        assert codes(data["sessions"][0]["findings"]) == []
        for written, session in zip(data["sessions"], sessions, strict=True):
            stated = {f["code"] for f in written["findings"]} | set(codes(data["library_findings"]))
            assert {f.code for f in session.findings} <= stated


class TestSingleSessionDocuments:
    """One session is one record: dose, check and next keep the finding in ``findings``."""

    @pytest.mark.parametrize("command", ["dose", "check"])
    def test_dose_and_check(self, command: str) -> None:
        result = CliRunner().invoke(
            app,
            [command, "-p", "depression", "--weight", "80kg", "--at", "2026-11-30T09:00", "--json"],
            env={"KETADOSE_LIMITS": None},
        )
        assert result.exit_code == 0, result.stderr
        data = json.loads(result.stdout)
        assert "library_findings" not in data
        assert codes(data["findings"])[:2] == ["library-unapproved", "protocol-library-unapproved"]


def words(text: str) -> str:
    """Text as words, whatever the width it was wrapped at or the box drawn around it."""
    return " ".join(text.replace("│", " ").split())


class TestHumanFormatsShowIt:
    """Each human format of a plan still says UNAPPROVED EXAMPLE LIBRARY where one looks."""

    def test_table_header(self) -> None:
        buffer = io.StringIO()
        table.plan(depression_plan(), Console(file=buffer, width=80, color_system=None))
        text = words(buffer.getvalue())
        head = text[: text.index("Sessions")]
        assert (
            f"Limits: ketadose example limit library 2026.12.3 sha256 4f93b6a144154201 {WORDS}"
            in head
        )
        assert (
            f"Protocols: ketadose shipped protocols (example) 2026.12.1 sha256 cdbece46caa8e74e {WORDS}"
            in head
        )

    def test_markdown_header(self) -> None:
        lines = markdown.plan(depression_plan()).splitlines()
        limits = next(line for line in lines if line.startswith("- Limits:"))
        protocols = next(line for line in lines if line.startswith("- Protocols:"))
        assert limits.endswith(f"**{WORDS}**") and protocols.endswith(f"**{WORDS}**")
        assert lines.index(limits) < 10  # in the plan's head, before the sessions

    def test_html_banner_and_findings(self) -> None:
        sheet = plan_sheet(depression_plan())
        assert f'<p class="banner-title">{WORDS}</p>' in sheet
        assert sheet.index("banner-title") < sheet.index("<table")
        assert f"<td>{WORDS}: limits ketadose example limit library 2026.12.3" in sheet

    def test_csv_every_row(self) -> None:
        rows = list(csv.DictReader(io.StringIO(csv_render.plan(depression_plan()))))
        assert len(rows) == 6
        assert {row["findings"] for row in rows} == {
            "library-unapproved;protocol-library-unapproved"
        }

    def test_fhir_every_medication_request(self) -> None:
        bundle = json.loads(fhir.plan_bundle(depression_plan(), SHIPPED_LIMITS))
        requests = [
            e["resource"]
            for e in bundle["entry"]
            if e["resource"]["resourceType"] == "MedicationRequest"
        ]
        assert len(requests) == 6
        for request in requests:
            notes = [n["text"] for n in request["note"]]
            assert (
                f"INFO library-unapproved: {WORDS}: limits ketadose example limit library 2026.12.3 name no approver; a clinic must review and approve them"
                in notes
            )
            assert any(
                n.startswith("protocol library:") and n.endswith(f"({WORDS})") for n in notes
            )
