"""The sublingual and oral protocols of issue 13, and depression-sc-kads, worked by hand.

Every expected number is a literal worked out by hand in the comment beside it, never computed
by ketadose. A sublingual or oral dose is measured out of the protocol's ``[protocol.form]``:
``amount = mg / strength`` mL (a solution, in steps of ``step`` mL) or tablets (in ``1 / split``
tablets), and ``delivered = amount measured x strength``. The systemic estimate is the delivered
dose times the protocol's bioavailability, shown and never dosed on. Limits are the shipped
``[routes.sublingual...]`` and ``[routes.oral...]`` sections of ketadose/data/limits.toml:

- sublingual: total 25 mg soft / 200 mg hard, first session 10 mg soft / 25 mg hard, liquid
  0.5 mL soft / 2 mL hard, tablets 2 soft / 4 hard, step 10 mg soft / 25 mg hard;
- oral: total 300 mg hard, first session 50 mg soft / 100 mg hard, liquid 10 mL soft / 30 mL
  hard, tablets 4 soft / 8 hard, step 25 mg soft / 50 mg hard, interval 72 h soft;
- weight for both: 30 kg and 300 kg hard only (no 115-kg soft maximum: a fixed dose).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ketadose.cli import app

runner = CliRunner()


def run(*args: str) -> tuple[int, dict[str, Any]]:
    result = runner.invoke(app, [*args, "--json"])
    assert result.stdout, (args, result.exit_code, result.stderr)
    return result.exit_code, json.loads(result.stdout)


def fail(*args: str) -> Any:
    return runner.invoke(app, list(args))


def not_info(data: dict[str, Any]) -> dict[str, str]:
    """The findings past a limit, by code: their severity."""
    return {f["code"]: f["severity"] for f in data["findings"] if f["severity"] != "info"}


HEADER = '[library]\nname = "clinic"\nversion = "1"\n\n'
SRC = 'source = "clinic policy"\nevidence = "SITE-POLICY"\n'


def clinic_protocol(
    tmp_path: Path,
    *,
    route: str,
    dose: str,
    form: str,
    extra: str = "",
    name: str = "clinic.toml",
) -> Path:
    """A one-protocol clinic file ``clinic-x`` of a fixed or per-kg dose measured from ``form``."""
    text = (
        HEADER
        + f'[[protocol]]\nid = "clinic-x"\nname = "Clinic {route}"\ncategory = "psychiatric"\n'
        f'route = "{route}"\nsetting = "take-home"\nsummary = "clinic"\nreferences = ["clinic"]\n\n'
        f'[[protocol.phases]]\nkind = "{"fixed" if dose.endswith(" mg") else "bolus"}"\n'
        f'dose = "{dose}"\n{SRC}\n'
        f"[protocol.form]\n{form}\n{SRC}\n"
        f"[protocol.series]\nsessions = 4\nper_week = [1, 2]\n{SRC}\n{extra}"
    )
    path = tmp_path / name
    path.write_text(text)
    return path


# --- dose: mg, mg/kg, what is measured, the systemic estimate ----------------------------------


@pytest.mark.parametrize(
    ("kg", "per_kg"),
    [
        (50, 0.2),  # 10 mg / 50 kg
        (80, 0.125),  # 10 mg / 80 kg
        (130, 10 / 130),  # 10 / 130 = 0.0769... mg/kg
    ],
)
def test_sublingual_10mg_is_0_1ml_and_3mg_systemic(kg: float, per_kg: float) -> None:
    code, data = run("dose", "-p", "depression-sublingual", "--weight", f"{kg}kg")
    # Lara 2013: 10 mg, fixed, whatever the weight; 130 kg is within 30-300 kg (no soft limit)
    assert code == 0
    assert data["total_dose_mg"] == 10
    assert data["total_dose_mg_per_kg"] == pytest.approx(per_kg)
    measured = data["measured"]
    # 10 mg / 100 mg/mL = 0.1 mL, a whole number (10) of 0.01-mL steps
    assert measured["form"] == "solution"
    assert measured["strength"] == 100
    assert measured["step"] == 0.01
    assert measured["unit"] == "mL"
    assert measured["amount"] == pytest.approx(0.1)
    assert measured["amount_rounded"] == pytest.approx(0.1)
    assert measured["delivered_mg"] == pytest.approx(10)
    assert data["delivered_total_mg"] == pytest.approx(10)
    # 10 mg x 30 % = 3 mg systemic (Chong 2006; Rolan 2014), no range
    systemic = data["systemic"]
    assert systemic["percent"] == 30
    assert systemic["percent_high"] is None
    assert systemic["mg"] == pytest.approx(3.0)
    assert systemic["mg_high"] is None
    assert systemic["cite"] == "Chong 2006; Rolan 2014"
    assert systemic["library"] == "ketadose/data/protocols.toml"
    # the estimate never changes the dose
    assert data["phases"][0]["dose_mg"] == 10


# (kg, mg, strength, mL, liquid finding): the oral ladder's rungs measured out by hand.
ORAL = [
    (50, 50, 50, 1.0, None),  # 50 / 50 = 1 mL
    (50, 50, 10, 5.0, None),  # 50 / 10 = 5 mL
    (80, 75, 50, 1.5, None),  # 75 / 50 = 1.5 mL
    (80, 75, 10, 7.5, None),  # 75 / 10 = 7.5 mL
    (80, 100, 10, 10.0, None),  # 100 / 10 = 10 mL: at the 10-mL soft maximum, which passes
    (130, 125, 10, 12.5, "soft"),  # 125 / 10 = 12.5 mL > 10 mL soft
    (130, 300, 50, 6.0, None),  # 300 / 50 = 6 mL
    (130, 300, 10, 30.0, "soft"),  # 300 / 10 = 30 mL: at the 30-mL hard maximum (passes), soft
]


@pytest.mark.parametrize(("kg", "mg", "strength", "ml", "finding"), ORAL)
def test_oral_rungs_measured(
    kg: float, mg: float, strength: float, ml: float, finding: str | None
) -> None:
    # The previous rung 3 days before: the step is +25 mg (at the 25-mg soft step, passes),
    # and the first-session limit (50 mg soft) does not apply. 50 mg is the first rung.
    previous = [] if mg == 50 else ["--previous", f"2026-12-04T09:00={mg - 25:g}mg"]
    code, data = run(
        "dose", "-p", "depression-oral", "--weight", f"{kg}kg", "--dose", f"{mg}mg",
        "--strength", f"{strength}mg/mL", "--at", "2026-12-07T09:00", *previous,
    )  # fmt: skip
    assert data["total_dose_mg"] == mg
    assert data["total_dose_mg_per_kg"] == pytest.approx(mg / kg)  # e.g. 75 / 80 = 0.9375
    measured = data["measured"]
    assert measured["strength"] == strength
    assert measured["step"] == 0.1
    assert measured["amount_rounded"] == pytest.approx(ml)
    assert measured["delivered_mg"] == pytest.approx(mg)  # whole 0.1-mL steps: nothing lost
    assert not_info(data) == ({} if finding is None else {"liquid-volume-high": finding})
    assert code == (0 if finding is None else 3)


@pytest.mark.parametrize(
    ("mg", "low", "high"),
    [
        (50, 10.0, 12.5),  # 50 x 20 % = 10; 50 x 25 % = 12.5
        (100, 20.0, 25.0),  # 100 x 20 % = 20; 100 x 25 % = 25
        (300, 60.0, 75.0),  # 300 x 20 % = 60; 300 x 25 % = 75
    ],
)
def test_oral_systemic_range(mg: float, low: float, high: float) -> None:
    previous = [] if mg == 50 else ["--previous", "2026-12-04T09:00=275mg"]
    _, data = run(
        "dose", "-p", "depression-oral", "--weight", "80kg", "--dose", f"{mg}mg",
        "--at", "2026-12-07T09:00", *previous,
    )  # fmt: skip
    systemic = data["systemic"]
    assert (systemic["percent"], systemic["percent_high"]) == (20, 25)
    assert systemic["mg"] == pytest.approx(low)
    assert systemic["mg_high"] == pytest.approx(high)
    assert "never a conversion ketadose applies" in systemic["equivalence"]
    assert data["total_dose_mg"] == mg  # never changed by the estimate


def test_oral_default_strength_is_the_first_listed() -> None:
    # [protocol.form] strengths = ["50 mg/mL", "10 mg/mL"]: 50 mg = 1 mL of 50 mg/mL
    code, data = run("dose", "-p", "depression-oral", "--weight", "80kg")
    assert code == 0
    assert data["measured"]["strength"] == 50
    assert data["measured"]["amount_rounded"] == pytest.approx(1.0)


# (kg, mg/kg, mg, mL of 100 mg/mL, exit): the KADS SC ladder, drawn undiluted.
KADS = [
    (50, 0.5, 25.0, 0.25, 0),  # 0.5 x 50 = 25 mg; / 100 = 0.25 mL
    (50, 0.6, 30.0, 0.3, 0),  # 0.6 x 50 = 30 mg
    (50, 0.9, 45.0, 0.45, 0),  # 0.9 x 50 = 45 mg
    (80, 0.5, 40.0, 0.4, 0),  # 0.5 x 80 = 40 mg
    (80, 0.6, 48.0, 0.48, 0),  # 0.6 x 80 = 48 mg
    (80, 0.75, 60.0, 0.6, 0),  # 0.75 x 80 = 60 mg
    (80, 0.9, 72.0, 0.72, 0),  # 0.9 x 80 = 72 mg
    (130, 0.5, 65.0, 0.65, 3),  # 0.5 x 130 = 65 mg; 130 kg > 115 kg soft weight
    (130, 0.6, 78.0, 0.78, 3),  # 0.6 x 130 = 78 mg = 0.78 mL
    (130, 0.9, 117.0, 1.17, 3),  # 0.9 x 130 = 117 mg = 1.17 mL (< 1.5 mL per site)
]


@pytest.mark.parametrize(("kg", "per_kg", "mg", "ml", "code"), KADS)
def test_sc_kads_rungs(kg: float, per_kg: float, mg: float, ml: float, code: int) -> None:
    # Each rung given after the one below 3-4 days earlier (steps of 0.1-0.15 mg/kg, within
    # the default 0.25 mg/kg soft step), so the first-session rule is not what is tested.
    below = {0.5: None, 0.6: 0.5, 0.75: 0.6, 0.9: 0.75}[per_kg]
    previous = [] if below is None else ["--previous", f"2026-12-04T09:00={below * kg:g}mg"]
    exit_code, data = run(
        "dose", "-p", "depression-sc-kads", "--weight", f"{kg}kg", "--dose", f"{per_kg}mg/kg",
        "--at", "2026-12-07T09:00", *previous,
    )  # fmt: skip
    assert data["total_dose_mg"] == pytest.approx(mg)
    assert data["preparation"]["vial_mg_per_ml"] == 100  # SC default vial
    assert data["preparation"]["draw_ml_rounded"] == pytest.approx(ml)
    assert data["measured"] is None  # SC is drawn from a vial, not measured from a form
    assert data["systemic"] is None  # no SC bioavailability in the sources
    assert exit_code == code
    if code == 3:
        assert not_info(data) == {"weight-high": "soft"}


# --- plan: the ladder across sessions ------------------------------------------------------------


def test_oral_plan_every_3_days_at_the_start_dose_with_checked_steps() -> None:
    code, data = run("plan", "-p", "depression-oral", "--weight", "80kg", "--start", "2026-12-07")
    assert code == 0
    sessions = data["sessions"]
    # take-home: any day of the week, every 72 h (3 in 7 days at most): 12 doses
    assert [s["date"] for s in sessions] == [
        "2026-12-07", "2026-12-10", "2026-12-13", "2026-12-16", "2026-12-19", "2026-12-22",
        "2026-12-25", "2026-12-28", "2026-12-31", "2027-01-03", "2027-01-06", "2027-01-09",
    ]  # fmt: skip
    # the steps are response-dependent: the plan keeps every session at 50 mg = 1 mL of 50 mg/mL
    assert all(s["total_dose_mg"] == 50 for s in sessions)
    assert all(s["measured"]["amount_rounded"] == pytest.approx(1.0) for s in sessions)
    assert all(s["systemic"]["mg"] == pytest.approx(10.0) for s in sessions)  # 50 x 20 %
    assert sessions[1]["condition"].startswith("from session 2: 75 mg if not yet responding")
    assert data["accumulated_dose_mg"] == 600  # 12 x 50
    # each of the ten steps 75 ... 300 mg is checked and within the limits
    checks = data["escalation_checks"]
    assert [c["from_session"] for c in checks] == list(range(2, 12))
    assert [c["total_dose_mg"] for c in checks] == [75 + 25 * n for n in range(10)]
    assert all(c["status"] == "ok" for c in checks)
    # 300 mg = 6 mL of 50 mg/mL; 300 x 20-25 % = 60-75 mg systemic
    assert checks[-1]["measured"]["amount_rounded"] == pytest.approx(6.0)
    assert checks[-1]["systemic"]["mg"] == pytest.approx(60.0)
    assert checks[-1]["systemic"]["mg_high"] == pytest.approx(75.0)


def test_oral_plan_from_10mg_per_ml_flags_the_volume_of_the_high_steps() -> None:
    # 125 mg / 10 mg/mL = 12.5 mL > 10 mL soft; 300 mg = 30 mL (at the hard maximum, passes)
    code, data = run(
        "plan", "-p", "depression-oral", "--weight", "80kg", "--start", "2026-12-07",
        "--strength", "10mg/mL",
    )  # fmt: skip
    # the sessions (50 mg = 5 mL) are ok; a soft step is listed, and only a hard one sets the
    # plan's status (planning.plan)
    assert code == 0
    assert all(s["measured"]["amount_rounded"] == pytest.approx(5.0) for s in data["sessions"])
    statuses = {c["total_dose_mg"]: c["status"] for c in data["escalation_checks"]}
    assert statuses[75] == statuses[100] == "ok"  # 7.5 and 10 mL
    assert all(statuses[mg] == "soft" for mg in range(125, 301, 25))


def test_sublingual_plan_every_2_days_at_most_3_in_7() -> None:
    code, data = run(
        "plan", "-p", "depression-sublingual", "--weight", "80kg", "--start", "2026-12-07"
    )
    assert code == 0
    # 48 h apart, at most 3 in any 7 days (per_week [1, 3]): Dec 13 would be the 4th since Dec 7
    assert [s["date"] for s in data["sessions"]] == [
        "2026-12-07", "2026-12-09", "2026-12-11", "2026-12-14",
        "2026-12-16", "2026-12-18", "2026-12-21", "2026-12-23",
    ]  # fmt: skip
    assert all(s["total_dose_mg"] == 10 for s in data["sessions"])
    assert data["escalation_checks"] == []  # Lara 2013 gives no steps


@pytest.mark.parametrize(
    ("kg", "mgs"),
    [
        (50, [25.0, 30.0, 37.5, 45.0]),  # x 0.5, 0.6, 0.75, 0.9
        (80, [40.0, 48.0, 60.0, 72.0]),
        (130, [65.0, 78.0, 97.5, 117.0]),
    ],
)
def test_sc_kads_plan_stays_at_0_5_and_checks_each_step(kg: float, mgs: list[float]) -> None:
    code, data = run(
        "plan", "-p", "depression-sc-kads", "--weight", f"{kg}kg", "--start", "2026-12-07"
    )
    sessions = data["sessions"]
    assert len(sessions) == 8
    # a clinic protocol: Mon-Fri only, two in any 7 days, the first open days (Mon, Wed)
    assert [s["date"] for s in sessions[:4]] == [
        "2026-12-07", "2026-12-09", "2026-12-14", "2026-12-16",
    ]  # fmt: skip
    assert all(s["total_dose_mg"] == pytest.approx(mgs[0]) for s in sessions)
    checks = data["escalation_checks"]
    assert [c["from_session"] for c in checks] == [3, 5, 7]
    assert [c["total_dose_mg"] for c in checks] == pytest.approx(mgs[1:])
    assert code == (0 if kg <= 115 else 3)


# --- next: the oral ladder from the store --------------------------------------------------------

TOLERATED = ("--bp-peak", "130/80", "--hr", "80", "--spo2", "98", "--reported")


def ok(*args: str) -> Any:
    result = fail(*args)
    assert result.exit_code == 0, (args, result.stdout, result.stderr)
    return result


def next_json(day: str, code: int = 0) -> dict[str, Any]:
    result = fail("next", "P1", "--date", f"{day}T09:00", "--json")
    assert result.exit_code == code, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


DAYS = [f"2026-12-{d:02d}" for d in range(7, 32, 3)] + ["2027-01-03", "2027-01-06", "2027-01-09"]


def test_next_climbs_the_oral_ladder_one_rung_per_dose() -> None:
    """Below response (30 -> 28 or so), no adverse event, summary vitals in limits: +25 mg."""
    ok("patient", "add", "P1", "-p", "depression-oral", "--weight", "80kg", "--baseline", "30")
    assert next_json(DAYS[0])["decision"] == "start"
    for number, day in enumerate(DAYS[:11]):
        mg = 50 + 25 * number  # session n (from 1) at 50 + 25 (n - 1) mg
        ok("session", "record", "P1", "--date", f"{day}T09:00", "--dose", f"{mg}mg",
           "--score", "27", *TOLERATED)  # fmt: skip
        data = next_json(DAYS[number + 1])
        if mg < 300:
            assert (data["decision"], data["total_dose_mg"]) == ("escalate", mg + 25), data
            assert data["ready"] is True
            measured = data["session"]["measured"]
            assert measured["amount_rounded"] == pytest.approx((mg + 25) / 50)  # mL of 50 mg/mL
            assert data["session"]["systemic"]["mg"] == pytest.approx((mg + 25) * 0.2)
        else:  # 300 mg (session 11) is the top rung
            assert (data["rule"], data["total_dose_mg"]) == ("hold-top", 300), data
    # session 12 at 300 mg completes the series of 12 without response: reassess
    ok("session", "record", "P1", "--date", f"{DAYS[11]}T09:00", "--dose", "300mg",
       "--score", "27", *TOLERATED)  # fmt: skip
    # (exit 3: review before the next session)
    assert next_json("2027-01-12", code=3)["rule"] == "reassess-series"


def test_next_holds_a_take_home_dose_without_the_patients_report() -> None:
    """Nobody measures a dose taken at home: without the patient's report (``--reported``)
    its tolerability is not in evidence, so ``next`` holds at 50 mg; never from silence."""
    ok("patient", "add", "P1", "-p", "depression-oral", "--weight", "80kg", "--baseline", "30")
    ok("session", "record", "P1", "--date", "2026-12-07T09:00", "--dose", "50mg", "--score", "28")
    data = next_json("2026-12-10")
    assert (data["decision"], data["rule"], data["total_dose_mg"]) == (
        "hold",
        "hold-not-tolerated",
        50,
    )
    assert "the take-home dose of 2026-12-07 has no report" in data["reasons"][-1]


@pytest.mark.parametrize("events", [(), ("--ae", "dizziness:mild")])
def test_next_escalates_a_reported_take_home_dose(events: tuple[str, ...]) -> None:
    # Reported with no adverse event, or a mild one only: tolerated; 28/30 = 6.7 % < 50 %.
    ok("patient", "add", "P1", "-p", "depression-oral", "--weight", "80kg", "--baseline", "30")
    ok("session", "record", "P1", "--date", "2026-12-07T09:00", "--dose", "50mg",
       "--score", "28", "--reported", *events)  # fmt: skip
    data = next_json("2026-12-10")
    assert (data["decision"], data["total_dose_mg"]) == ("escalate", 75)
    assert data["session"]["measured"]["amount_rounded"] == 1.5  # 75 mg / 50 mg/mL


def test_next_holds_a_reported_moderate_event() -> None:
    ok("patient", "add", "P1", "-p", "depression-oral", "--weight", "80kg", "--baseline", "30")
    ok("session", "record", "P1", "--date", "2026-12-07T09:00", "--dose", "50mg",
       "--score", "28", "--reported", "--ae", "nausea:moderate")  # fmt: skip
    data = next_json("2026-12-10")
    assert data["decision"] != "escalate"
    assert data["total_dose_mg"] in (None, 50)


def test_next_holds_an_oral_responder() -> None:
    ok("patient", "add", "P1", "-p", "depression-oral", "--weight", "80kg", "--baseline", "30")
    ok("session", "record", "P1", "--date", "2026-12-07T09:00", "--dose", "50mg",
       "--score", "14", *TOLERATED)  # fmt: skip
    data = next_json("2026-12-10")  # 30 -> 14 = 53.3 % >= 50 %: responding
    assert (data["rule"], data["total_dose_mg"]) == ("hold-responding", 50)


# --- the gate: each route's out-of-range doses and volumes ---------------------------------------


def test_oral_325mg_is_refused() -> None:
    # 325 mg > 300 mg hard (total, 24 h); also > 100 mg hard as a first session
    code, data = run("dose", "-p", "depression-oral", "--weight", "80kg", "--dose", "325mg")
    assert code == 4
    assert not_info(data) == {
        "total-dose-high": "hard",
        "dose-per-24h-high": "hard",
        "first-session-dose-high": "hard",
    }
    assert data["measured"] is None  # withheld: nothing to measure out
    assert data["ready"] is False


def test_oral_325mg_after_300mg_is_still_refused() -> None:
    code, data = run(
        "dose", "-p", "depression-oral", "--weight", "80kg", "--dose", "325mg",
        "--at", "2026-12-07T09:00", "--previous", "2026-12-04T09:00=300mg",
    )  # fmt: skip
    assert code == 4
    assert not_info(data)["total-dose-high"] == "hard"
    assert "escalation-step-high" not in not_info(data)  # +25 mg: at the 25-mg soft step


def test_sublingual_30mg_is_soft_after_a_previous_dose() -> None:
    # 30 mg > 25 mg soft total; step 30 - 10 = 20 mg > 10 mg soft (< 25 mg hard); 0.3 mL
    code, data = run(
        "dose", "-p", "depression-sublingual", "--weight", "80kg", "--dose", "30mg",
        "--at", "2026-12-07T09:00", "--previous", "2026-12-04T09:00=10mg",
    )  # fmt: skip
    assert code == 3
    assert not_info(data) == {"total-dose-high": "soft", "escalation-step-high": "soft"}
    assert data["measured"]["amount_rounded"] == pytest.approx(0.3)
    code, _ = run(
        "dose", "-p", "depression-sublingual", "--weight", "80kg", "--dose", "30mg",
        "--at", "2026-12-07T09:00", "--previous", "2026-12-04T09:00=10mg",
        "--override-reason", "titrated by the clinic",
    )  # fmt: skip
    assert code == 0


def test_sublingual_30mg_as_a_first_dose_is_hard() -> None:
    # no previous session: 30 mg > 25 mg hard first-session dose
    code, data = run("dose", "-p", "depression-sublingual", "--weight", "80kg", "--dose", "30mg")
    assert code == 4
    assert not_info(data) == {"total-dose-high": "soft", "first-session-dose-high": "hard"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["-p", "depression-oral", "--strength", "25mg/mL"],
            "oral solution: 25 mg/mL is not a strength this protocol lists; use 50 mg/mL, 10 mg/mL",
        ),
        (
            ["-p", "depression-sublingual", "--strength", "10mg/mL"],
            "sublingual solution: 10 mg/mL is not a strength this protocol lists; use 100 mg/mL",
        ),
        (["-p", "depression-oral", "--vial", "50mg/mL"], "--vial does not apply to the oral route"),
        (["-p", "depression-oral", "--bag", "100mL"], "--bag does not apply to the oral route"),
        (
            ["-p", "depression", "--strength", "10mg/mL"],
            "--strength does not apply to the iv route: use --vial",
        ),
        (
            ["-p", "depression-sc-kads", "--strength", "100mg/mL"],
            "--strength does not apply to the sc route: use --vial",
        ),
    ],
)
def test_options_that_do_not_apply_exit_2_with_one_line(args: list[str], message: str) -> None:
    result = fail("dose", "--weight", "80kg", *args, "--json")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == f"ketadose: error: {message}\n"


def test_clinic_sublingual_10mg_per_ml_makes_25mg_too_much_to_hold(tmp_path: Path) -> None:
    path = clinic_protocol(
        tmp_path,
        route="sublingual",
        dose="25 mg",
        form='kind = "solution"\nname = "sublingual solution"\nstrengths = ["10 mg/mL"]\n'
        'step = "0.1 mL"',
    )
    # 25 mg / 10 mg/mL = 2.5 mL > 2 mL hard (liquid_volume); 25 mg is at the 25-mg soft total
    # and at the 25-mg hard first-session dose, which pass; above the 10-mg soft first dose.
    code, data = run("dose", "-p", "clinic-x", "--protocols", str(path), "--weight", "80kg")
    assert code == 4
    assert not_info(data) == {"liquid-volume-high": "hard", "first-session-dose-high": "soft"}
    volume = next(f for f in data["findings"] if f["code"] == "liquid-volume-high")
    assert volume["value"] == pytest.approx(2.5)
    assert data["measured"] is None


def test_clinic_oral_tablets_past_the_count(tmp_path: Path) -> None:
    path = clinic_protocol(
        tmp_path,
        route="oral",
        dose="50 mg",
        form='kind = "tablet"\nname = "oral tablet"\nstrengths = ["5 mg", "25 mg"]\nsplit = 2',
    )
    # 50 mg / 5 mg = 10 tablets > 8 hard (tablet_count); 50 mg is at the 50-mg soft first dose
    code, data = run("dose", "-p", "clinic-x", "--protocols", str(path), "--weight", "80kg")
    assert code == 4
    assert not_info(data) == {"tablet-count-high": "hard"}
    # 50 mg / 25 mg = 2 tablets
    code, data = run(
        "dose", "-p", "clinic-x", "--protocols", str(path), "--weight", "80kg",
        "--strength", "25mg",
    )  # fmt: skip
    assert code == 0
    measured = data["measured"]
    assert (measured["unit"], measured["amount_rounded"], measured["step"]) == ("tablet", 2, 0.5)
    # 60 mg / 25 mg = 2.4 tablets; halves: 2.5 nearest (62.5 mg); 60 > 50 soft first dose
    code, data = run(
        "dose", "-p", "clinic-x", "--protocols", str(path), "--weight", "80kg",
        "--strength", "25mg", "--dose", "60mg",
    )  # fmt: skip
    assert data["measured"]["amount_rounded"] == pytest.approx(2.5)
    assert data["delivered_total_mg"] == pytest.approx(62.5)
    assert code == 3


def test_clinic_bioavailability_replaces_the_routes(tmp_path: Path) -> None:
    path = tmp_path / "bio.toml"
    path.write_text(
        HEADER + '[[bioavailability]]\nroute = "oral"\npercent = 16\ncite = "Clinic 2026"\n' + SRC
    )
    code, data = run("dose", "-p", "depression-oral", "--weight", "80kg", "--protocols", str(path))
    assert code == 0
    systemic = data["systemic"]
    # 50 mg x 16 % = 8 mg; no range now (the clinic gives one value)
    assert systemic["percent"] == 16
    assert systemic["percent_high"] is None
    assert systemic["mg"] == pytest.approx(8.0)
    assert systemic["cite"] == "Clinic 2026"
    assert systemic["library"] == str(path)
    assert data["total_dose_mg"] == 50  # the dose is the protocol's, unchanged
    assert data["protocol_library"]["path"] == "ketadose/data/protocols.toml"
    # another route keeps its own
    _, other = run(
        "dose", "-p", "depression-sublingual", "--weight", "80kg", "--protocols", str(path)
    )
    assert other["systemic"]["percent"] == 30
    assert other["systemic"]["library"] == "ketadose/data/protocols.toml"
