"""ketadose simulate, predicted peaks on plans and the predicted-peak limit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from typer.testing import CliRunner

from ketadose.cli import app
from ketadose.render.plot import chart
from ketadose.render.schema import schema
from tests.factories import complete

runner = CliRunner()
ONE = ("simulate", "-p", "depression", "--weight", "70kg")


def document(*args: str) -> dict[str, Any]:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    Draft202012Validator(schema("simulate")).validate(data)
    return data


class TestSession:
    """One session: 0.5 mg/kg over 40 min at 70 kg (35 mg), the default model Clements250."""

    def test_summary(self) -> None:
        data = document(*ONE, "--threshold", "100ng/mL")
        assert data["model"]["id"] == "clements250"
        assert data["peak_ng_per_ml"] == pytest.approx(177.31, abs=0.01)  # field.md: 0.1773
        assert data["peak_time_min"] == 40
        assert data["end_of_infusion_ng_per_ml"] == data["peak_ng_per_ml"]
        # depression: 30 min observation after the infusion, so discharge at 70 min.
        assert data["discharge_min"] == 70
        assert data["discharge_ng_per_ml"] == pytest.approx(97.53, abs=0.01)
        assert data["time_above_threshold_min"] == pytest.approx(50.6, abs=0.1)

    def test_series(self) -> None:
        data = document(*ONE, "--model", "domino", "--until", "2h", "--step", "1min")
        series = data["series"]
        assert len(series) == 121
        assert [p["time_min"] for p in series[:3]] == [0, 1, 2]
        at = {p["time_min"]: p["concentration_ng_per_ml"] for p in series}
        # field.md golden values for Domino (ug/mL): 0.24033, 0.05511, 0.03583.
        assert at[40] == pytest.approx(240.33, abs=0.01)
        assert at[60] == pytest.approx(55.11, abs=0.01)
        assert at[120] == pytest.approx(35.83, abs=0.01)

    def test_weight_does_not_change_a_per_kg_curve(self) -> None:
        light = document(*ONE[:-1], "50kg")["peak_ng_per_ml"]
        heavy = document(*ONE[:-1], "110kg")["peak_ng_per_ml"]
        assert light == pytest.approx(heavy, rel=1e-9)

    def test_table_and_chart(self) -> None:
        result = runner.invoke(app, list(ONE))
        assert result.exit_code == 0
        assert "Peak 177.3 ng/mL at 40 min" in result.stdout
        assert "└" in result.stdout
        assert "no validated effect-site model" in result.stdout.lower() or "ke0" in result.stdout

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (("-p", "esketamine-nasal", "--weight", "70kg"), "IV racemic ketamine"),
            (("-p", "depression", "--weight", "70kg", "--step", "0.001min"), "--step"),
            (("-p", "depression", "--weight", "70kg", "--until", "400d"), "points"),
            (("-p", "depression", "--weight", "70kg", "--threshold", "100"), "no unit"),
            (("-p", "depression", "--weight", "70kg", "--start", "2026-11-30"), "--plan"),
            (("-p", "depression", "--weight", "70kg", "--plan"), "--plan needs --start"),
        ],
    )
    def test_refusals(self, args: tuple[str, ...], message: str) -> None:
        result = runner.invoke(app, ["simulate", *args])
        assert result.exit_code == 2
        assert message in result.stderr

    def test_a_refused_dose_exits_4(self) -> None:
        result = runner.invoke(app, [*ONE, "--dose", "3mg/kg"])
        assert result.exit_code == 4


class TestSeries:
    """A planned series is simulated superposed, and plans carry each session's peak."""

    def test_crps_series_accumulates(self) -> None:
        data = document(
            "simulate", "-p", "crps", "--weight", "70kg", "--plan", "--start", "2026-11-30",
            "--step", "10min",
        )  # fmt: skip
        assert data["sessions"] == 10
        plan = json.loads(
            runner.invoke(
                app, ["plan", "-p", "crps", "--weight", "70kg", "--start", "2026-11-30", "--json"]
            ).stdout
        )
        peaks = [s["predicted_peak_ng_per_ml"] for s in plan["sessions"]]
        assert plan["pk_model"] == "clements250"
        assert peaks == sorted(peaks)  # each day's residue adds to the next
        assert max(peaks) == pytest.approx(data["peak_ng_per_ml"], rel=1e-6)

    def test_the_model_takes_body_weight_not_the_dosing_weight(self) -> None:
        # Dosed on ideal weight (Devine, male 178 cm: 73.0 kg) but 110 kg of body: the dose is
        # smaller, and so, per kg of body, is the concentration.
        args = ("-p", "depression", "--weight", "110kg", "--height", "178cm", "--sex", "male",
                "--dosing-weight", "ideal")  # fmt: skip
        data = document("simulate", *args)
        assert data["weight_kg"] == 110
        plan = json.loads(
            runner.invoke(app, ["plan", *args, "--start", "2026-11-30", "--json"]).stdout
        )
        assert plan["sessions"][0]["predicted_peak_ng_per_ml"] == pytest.approx(
            data["peak_ng_per_ml"], rel=1e-9
        )
        assert data["peak_ng_per_ml"] < 177.31 * 0.7

    def test_non_iv_plans_have_no_peak(self) -> None:
        plan = json.loads(
            runner.invoke(
                app,
                [
                    "plan",
                    "-p",
                    "esketamine-nasal",
                    "--weight",
                    "70kg",
                    "--start",
                    "2026-11-30",
                    "--json",
                ],
            ).stdout
        )
        assert plan["pk_model"] is None
        assert {s["predicted_peak_ng_per_ml"] for s in plan["sessions"]} == {None}


class TestPeakLimit:
    """A limit library may limit the predicted peak; it is checked like any other limit."""

    def library(self, tmp_path: Path) -> Path:
        path = tmp_path / "peak.toml"
        path.write_text(
            complete(
                '[library]\nname = "peak"\nversion = "1"\n'
                '[profiles.default.session.predicted_peak]\nupper_soft = "170 ng/mL"\n'
                'upper_hard = "250 ng/mL"\nsource = "site policy"\nevidence = "SITE-POLICY"\n'
            )
        )
        return path

    def test_dose_is_checked(self, tmp_path: Path) -> None:
        result = runner.invoke(
            app,
            [
                "dose",
                "-p",
                "depression",
                "--weight",
                "70kg",
                "--limits",
                str(self.library(tmp_path)),
                "--json",
            ],
        )
        assert result.exit_code == 3
        (finding,) = [
            f
            for f in json.loads(result.stdout)["findings"]
            if f["parameter"] == "session.predicted_peak"
        ]
        assert finding["value"] == pytest.approx(177.31, abs=0.01)
        assert finding["unit"] == "ng/mL"

    def test_plan_is_checked_with_carry_over(self, tmp_path: Path) -> None:
        result = runner.invoke(
            app,
            ["plan", "-p", "depression", "--weight", "70kg", "--start", "2026-11-30", "--dose", "0.7mg/kg",
             "--limits", str(self.library(tmp_path)), "--json"],
        )  # fmt: skip
        data = json.loads(result.stdout)
        codes = {f["code"] for s in data["sessions"] for f in s["findings"]}
        assert "predicted-peak-high" in codes
        assert result.exit_code in (3, 4)


class TestLight:
    """dose and --help never load the PK code."""

    def test_imports(self) -> None:
        code = (
            "import sys\nsys.argv=['ketadose','dose','-p','depression','--weight','80kg','--json']\n"
            "from ketadose.cli import main\ntry:\n    main()\nexcept SystemExit:\n    pass\n"
            "print('ketadose.pk' in sys.modules, 'numpy' in sys.modules, file=sys.stderr)"
        )
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=False
        )
        assert done.stderr.strip().endswith("False False")


def test_chart_has_axes() -> None:
    text = chart([(0.0, 0.0), (40.0, 177.0), (280.0, 30.0)], width=20, height=5)
    lines = text.splitlines()
    assert len(lines) == 7
    assert lines[0].strip().startswith("177")
    assert lines[-1].rstrip().endswith("280 min")


class TestBatchPeaks:
    """A batch leaves predicted peaks out unless the library limits them, then checks them."""

    def test_only_where_limited(self, tmp_path: Path) -> None:
        rows = tmp_path / "p.csv"
        rows.write_text("id,weight\nA,70kg\n")
        base = ["batch", str(rows), "-p", "depression", "--start", "2026-11-30"]
        plain = json.loads(runner.invoke(app, base).stdout)
        assert plain["plan"]["pk_model"] is None
        limited = runner.invoke(app, [*base, "--limits", str(TestPeakLimit().library(tmp_path))])
        record = json.loads(limited.stdout)
        assert record["plan"]["pk_model"] == "clements250"
        # Each session's 177 ng/mL is above the 170 ng/mL soft maximum...
        assert {s["status"] for s in record["plan"]["sessions"]} == {"soft"}
        # ...and the conditional step to 0.75 mg/kg over 45 min peaks at 254 ng/mL, past the
        # 250 ng/mL hard maximum: the plan shows the step refused and exits 4.
        (step,) = record["plan"]["escalation_checks"]
        assert step["status"] == "hard"
        assert step["preparation"] is None
        assert record["status"] == "hard"
        assert limited.exit_code == 4
