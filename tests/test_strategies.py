"""ketadose.strategies is sound: what a valid strategy yields is accepted, the rest refused."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import tempfile
from typing import Any
from unittest.mock import patch
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from ketadose import strategies as ks
from ketadose.dosing import DoseRequest, session_dose
from ketadose.errors import ConfigError, ExitCode, QuantityError
from ketadose.escalation import decide
from ketadose.limits import check, check_vitals, load_file
from ketadose.limits import load_library as load_limits
from ketadose.models import CheckContext, MedicationUse, Patient, Vitals
from ketadose.protocols import Protocol, ProtocolEntry, load_library
from ketadose.records import PatientRecord, SessionRecord
from ketadose.units import Kind, parse, parse_as
from tests.factories import REF

LIBRARY = load_library()
LIMITS = load_limits()
runner = CliRunner()


class TestQuantities:
    """Every accepted spelling reads exactly; every hostile text is refused."""

    @pytest.mark.parametrize("kind", list(Kind), ids=lambda k: k.name)
    @given(data=st.data())
    def test_valid_spellings_read_exactly(self, kind: Kind, data: st.DataObject) -> None:
        text, value = data.draw(ks.quantities(kind))
        assert parse_as(text, kind) == value

    @pytest.mark.parametrize("kind", list(Kind), ids=lambda k: k.name)
    @given(data=st.data())
    def test_hostile_texts_are_refused(self, kind: Kind, data: st.DataObject) -> None:
        text, why = data.draw(ks.hostile_quantities(kind))
        with pytest.raises(QuantityError):
            parse(text, kind)
        assert why

    def test_every_kind_has_spellings(self) -> None:
        assert set(ks.SPELLINGS) == set(Kind)


class TestPatientsAndContext:
    """Patients, vitals and medications are ones the core and the shipped library accept."""

    @given(ks.patients() | ks.patients(extreme=True))
    def test_patients_are_dosed(self, patient: Patient) -> None:
        session = session_dose(LIBRARY.get_protocol("depression"), DoseRequest(patient=patient))
        assert session.total_dose_mg == pytest.approx(0.5 * (patient.weight_kg or 0))

    @given(ks.patients() | ks.patients(extreme=True))
    def test_patients_are_within_the_shipped_hard_limits(self, patient: Patient) -> None:
        # Soft findings are expected (over 115 kg, over 65 y); a hard one would mean the
        # strategy yields patients no clinic would dose (the shipped hard limits: 30-300 kg,
        # 18-120 y, BMI 10-90).
        session = session_dose(LIBRARY.get_protocol("depression"), DoseRequest(patient=patient))
        hard = [f.code for f in check(session, LIMITS) if f.severity == "hard"]
        assert not [code for code in hard if code.split("-")[0] in ("weight", "age", "bmi")]

    @given(ks.vitals() | ks.vitals(extreme=True))
    def test_vitals_are_checked(self, vitals: Vitals) -> None:
        for during in (False, True):
            findings = check_vitals(LIMITS, "depression", "iv", vitals, during=during)
            assert all(f.parameter and f.parameter.startswith("vitals_") for f in findings)

    @given(st.lists(ks.medications(LIMITS), min_size=1, max_size=3))
    def test_medications_are_known_to_the_library(self, uses: list[MedicationUse]) -> None:
        session = session_dose(
            LIBRARY.get_protocol("depression"), DoseRequest(patient=Patient(weight_kg=80))
        )
        findings = check(session, LIMITS, CheckContext(medications=tuple(uses)))
        assert "medication-unknown" not in {f.code for f in findings}


class TestDefinitions:
    """Generated protocols validate and dose; generated libraries load, broken ones are refused."""

    @given(ks.protocol_definitions(), ks.patients())
    def test_protocols_validate_and_dose(
        self, definition: dict[str, Any], patient: Patient
    ) -> None:
        entry = ProtocolEntry(Protocol.model_validate(definition), REF)
        session = session_dose(entry, DoseRequest(patient=patient))
        assert session.total_dose_mg > 0
        assert session.preparation is not None

    @given(ks.limit_tables(), st.booleans())
    def test_valid_libraries_load(self, tables: ks.LimitTables, approved: bool) -> None:
        library = load_file(ks.limits_toml(tables, approved=approved).encode(), "generated.toml")
        assert library.ref.approved is approved

    @given(ks.invalid_limit_libraries())
    def test_invalid_libraries_are_refused(self, case: tuple[bytes, str]) -> None:
        data, why = case
        with pytest.raises(ConfigError):
            load_file(data, "broken.toml")
        assert why in ks.BREAKAGES.values()

    @given(ks.protocol_ids())
    def test_protocol_ids_are_shipped(self, protocol_id: str) -> None:
        assert LIBRARY.get_protocol(protocol_id).protocol.id == protocol_id

    @settings(max_examples=100)
    @given(ks.session_histories())
    def test_histories_decide(self, history: tuple[PatientRecord, list[SessionRecord]]) -> None:
        patient, sessions = history
        last = sessions[-1].at if sessions else patient_created(patient)
        result = decide(LIBRARY.get_protocol("depression"), patient, sessions, LIMITS, at=last)
        assert result.decision in (
            "start",
            "escalate",
            "titrate",
            "hold",
            "reduce",
            "stop",
            "reassess",
        )


def patient_created(patient: PatientRecord) -> Any:
    from datetime import datetime

    return patient.created_at or datetime(2026, 11, 2, 9, 0, tzinfo=ZoneInfo("Europe/Berlin"))


DOCUMENTED = {int(code) for code in ExitCode}


def console(argv: list[str]) -> tuple[int, str, str]:
    """Run the console script's ``main`` (usage errors included) in-process."""
    from ketadose.cli import main

    with (
        tempfile.TemporaryDirectory() as directory,
        contextlib.chdir(directory),  # what a command writes (limits init) lands here
        runner.isolation() as (out, err, _),
        patch.object(sys, "argv", ["ketadose", *argv]),
    ):
        try:
            main()
            code = 0
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else 1
        return code, out.getvalue().decode(), err.getvalue().decode()


class TestCommandLine:
    """Random argument vectors for every command: a documented exit code, never a traceback."""

    @settings(max_examples=40, deadline=None)
    @pytest.mark.parametrize("command", ks.COMMANDS)
    @given(data=st.data())
    def test_any_arguments(self, command: str, data: st.DataObject) -> None:
        argv = data.draw(ks.argument_vectors(command))
        code, out, err = console(argv)
        assert code in DOCUMENTED - {1}, (argv, err)
        assert "Traceback" not in err
        if code != 0:
            # One line saying why (a usage error, a refusal or a limit), nothing else.
            assert err.startswith("ketadose: "), (argv, err)
        if ("--json" in argv and command != "limits init") or (command == "schema" and code == 0):
            assert out == "" or json.loads(out)


class TestImport:
    """Importing ketadose (and running a command) never imports hypothesis."""

    def test_no_hypothesis(self) -> None:
        code = (
            "import sys, ketadose, ketadose.cli, ketadose.batch, ketadose.planning\n"
            "print('hypothesis' in sys.modules)"
        )
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        assert done.stdout.strip() == "False"
