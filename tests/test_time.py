"""Real time: the clinic's zone, local times made aware, elapsed intervals across DST changes.

Every value here is worked by hand. Europe/Berlin changes on Sun 2026-03-29 (02:00 CET ->
03:00 CEST, the night is an hour shorter) and Sun 2026-10-25 (03:00 CEST -> 02:00 CET, an hour
longer); America/New_York on 2026-03-08 and 2026-11-01.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from contextlib import closing
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, available_timezones

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from typer.testing import CliRunner, Result

from ketadose import clock
from ketadose.cli import app
from ketadose.clock import NaiveTimeError
from ketadose.dosing import DoseRequest
from ketadose.errors import InputError, StoreError
from ketadose.escalation import decide
from ketadose.inputs import moment
from ketadose.limits import LimitLibrary, check, load_file
from ketadose.limits import load_library as load_limits
from ketadose.models import CheckContext, Finding, Patient, PreviousSession, Severity
from ketadose.planning import PlanRequest, plan
from ketadose.protocols import load_library
from ketadose.records import PatientRecord, SessionRecord
from ketadose.store import MIGRATIONS, Store
from tests.factories import TEST_LIMITS, TIMED, dose_for, protocol

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
PROTOCOLS = load_library()


def interval_library(lower_hard: str, lower_soft: str = "40 h") -> LimitLibrary:
    """The test library with its default interval limits replaced."""
    text = TEST_LIMITS.read_text(encoding="utf-8")
    old = '[profiles.default.series.interval]\nlower_hard = "20 h"\nlower_soft = "40 h"'
    assert old in text
    new = (
        f'[profiles.default.series.interval]\nlower_hard = "{lower_hard}"\n'
        f'lower_soft = "{lower_soft}"'
    )
    return load_file(text.replace(old, new).encode(), "interval-test.toml")


def interval(findings: list[Finding]) -> Finding:
    return next(f for f in findings if f.code == "interval-low")


def checked(
    at: datetime, *previous: datetime, library: LimitLibrary | None = None
) -> list[Finding]:
    history = tuple(PreviousSession(at=p, dose_mg=40) for p in previous)
    return check(
        dose_for(protocol(TIMED), 80),
        library or load_limits(TEST_LIMITS),
        CheckContext(at=at, history=history),
    )


def run(*args: str, env: dict[str, str | None] | None = None) -> Result:
    return CliRunner().invoke(app, list(args), env=env)


class TestIntervalAcrossDaylightSaving:
    """The series interval is elapsed time: the spring night is an hour short, autumn's long."""

    def test_spring_forward_is_16_hours_not_17(self) -> None:
        # 16:00 CET (15:00 UTC) -> 09:00 CEST (07:00 UTC): 16 h; the wall clock says 17 h.
        library = interval_library("16.5 h")
        findings = checked(
            datetime(2026, 3, 29, 9, 0, tzinfo=BERLIN),
            datetime(2026, 3, 28, 16, 0, tzinfo=BERLIN),
            library=library,
        )
        found = interval(findings)
        assert found.value == 16 * 60
        assert found.severity is Severity.HARD  # below 16.5 h; 17 h would only be soft

    def test_fall_back_is_18_hours_not_17(self) -> None:
        # 16:00 CEST (14:00 UTC) -> 09:00 CET (08:00 UTC): 18 h; the wall clock says 17 h.
        library = interval_library("17.5 h")
        found = interval(
            checked(
                datetime(2026, 10, 25, 9, 0, tzinfo=BERLIN),
                datetime(2026, 10, 24, 16, 0, tzinfo=BERLIN),
                library=library,
            )
        )
        assert found.value == 18 * 60
        assert found.severity is Severity.SOFT  # above 17.5 h, below 40 h; 17 h would be hard

    def test_new_york_spring_forward(self) -> None:
        # 16:00 EST (21:00 UTC) -> 09:00 EDT (13:00 UTC): 16 h.
        found = interval(
            checked(
                datetime(2026, 3, 8, 9, 0, tzinfo=NEW_YORK),
                datetime(2026, 3, 7, 16, 0, tzinfo=NEW_YORK),
                library=interval_library("16.5 h"),
            )
        )
        assert (found.value, found.severity) == (16 * 60, Severity.HARD)

    def test_shipped_crps_18_hour_hard_minimum_spring(self) -> None:
        # 14:30 CET -> 09:00 CEST: 17.5 h elapsed (18.5 h on the wall): below the 18 h hard
        # minimum, so refused (exit 4).
        result = run(
            "check", "-p", "crps", "--weight", "70kg", "--at", "2026-03-29T09:00",
            "--previous", "2026-03-28T14:30=1.4mg/kg", "--json", "--tz", "Europe/Berlin",
        )  # fmt: skip
        assert result.exit_code == 4, result.stderr
        found = next(
            f for f in json.loads(result.stdout)["findings"] if f["code"] == "interval-low"
        )
        assert (found["value"], found["severity"]) == (17.5 * 60, "hard")

    def test_shipped_crps_18_hour_hard_minimum_fall(self) -> None:
        # 15:30 CEST -> 09:00 CET: 18.5 h elapsed (17.5 h on the wall): soft (below 20 h), not
        # refused.
        result = run(
            "check", "-p", "crps", "--weight", "70kg", "--at", "2026-10-25T09:00",
            "--previous", "2026-10-24T15:30=1.4mg/kg", "--json", "--tz", "Europe/Berlin",
        )  # fmt: skip
        assert result.exit_code == 3, result.stderr
        found = next(
            f for f in json.loads(result.stdout)["findings"] if f["code"] == "interval-low"
        )
        assert (found["value"], found["severity"]) == (18.5 * 60, "soft")

    def test_same_moment_in_two_offsets_is_no_interval(self) -> None:
        at = datetime(2026, 11, 30, 9, 0, tzinfo=BERLIN)
        found = interval(checked(at, at.astimezone(UTC), library=interval_library("1 min")))
        assert (found.value, found.severity) == (0, Severity.HARD)


class TestSevenDayWindow:
    """Sessions per 7 days and the 7-day dose count elapsed days, not wall-clock ones."""

    def test_spring_counts_a_session_7_wall_days_ago(self) -> None:
        # Tue 24 Mar 08:30 CET -> Tue 31 Mar 09:00 CEST: 7 d 0.5 h on the wall, but 6 d 23.5 h
        # elapsed: inside the window. With two more that makes 4 in 7 days (soft maximum 3).
        at = datetime(2026, 3, 31, 9, 0, tzinfo=BERLIN)
        findings = checked(
            at,
            datetime(2026, 3, 24, 8, 30, tzinfo=BERLIN),
            at - timedelta(days=4),
            at - timedelta(days=2),
        )
        week = next(f for f in findings if f.code == "sessions-per-7d-high")
        assert (week.value, week.severity) == (4, Severity.SOFT)

    def test_fall_leaves_out_a_session_under_7_wall_days_ago(self) -> None:
        # Tue 20 Oct 09:30 CEST -> Tue 27 Oct 09:00 CET: 6 d 23.5 h on the wall, 7 d 0.5 h
        # elapsed: outside the window, so 3 in 7 days: no finding.
        at = datetime(2026, 10, 27, 9, 0, tzinfo=BERLIN)
        findings = checked(
            at,
            datetime(2026, 10, 20, 9, 30, tzinfo=BERLIN),
            at - timedelta(days=4),
            at - timedelta(days=2),
        )
        assert "sessions-per-7d-high" not in [f.code for f in findings]


class TestNaiveRefused:
    """The core never guesses a zone: a naive time is refused with a clear message."""

    def test_checker(self) -> None:
        with pytest.raises(NaiveTimeError, match="has no time zone"):
            checked(datetime(2026, 11, 30, 9), datetime(2026, 11, 28, 9, tzinfo=BERLIN))

    def test_checker_naive_previous(self) -> None:
        with pytest.raises(NaiveTimeError, match="a previous session"):
            checked(datetime(2026, 11, 30, 9, tzinfo=BERLIN), datetime(2026, 11, 28, 9))

    def test_elapsed(self) -> None:
        with pytest.raises(NaiveTimeError):
            clock.elapsed(datetime(2026, 1, 2), datetime(2026, 1, 1, tzinfo=UTC))

    def test_store_refuses_to_write_naive(self, tmp_path: Path) -> None:
        with Store.open(tmp_path / "s.db") as db, pytest.raises(NaiveTimeError):
            db.add_patient(
                PatientRecord(id="p", protocol="depression", baseline=30, weight_kg=80),
                at=datetime(2026, 11, 30, 9),
            )


class TestLocalTimes:
    """A local time that the clocks skip or repeat is refused, never silently chosen."""

    def test_nonexistent(self) -> None:
        with pytest.raises(InputError, match="does not exist in Europe/Berlin"):
            moment("2026-03-29T02:30", field="--at", zone=BERLIN)

    def test_ambiguous_asks_for_an_offset(self) -> None:
        with pytest.raises(InputError, match=r"2026-10-25T02:30\+02:00 or 2026-10-25T02:30\+01:00"):
            moment("2026-10-25T02:30", field="--at", zone=BERLIN)

    def test_ambiguous_with_an_offset_is_accepted(self) -> None:
        first = moment("2026-10-25T02:30+02:00", field="--at", zone=BERLIN)
        second = moment("2026-10-25T02:30+01:00", field="--at", zone=BERLIN)
        assert clock.elapsed(second, first) == timedelta(hours=1)
        assert (first.fold, second.fold) == (0, 1)

    @pytest.mark.parametrize(
        ("at", "fragment"),
        [("2026-03-29T02:30", "does not exist"), ("2026-10-25T02:30", "happens twice")],
    )
    def test_cli_exit_2_with_one_line(self, at: str, fragment: str) -> None:
        result = run("dose", "-p", "depression", "--weight", "80kg", "--at", at)
        assert result.exit_code == 2
        assert fragment in result.stderr
        assert len(result.stderr.splitlines()) == 1

    def test_previous_and_session_record_and_next(self) -> None:
        for args in (
            ("check", "-p", "depression", "--weight", "80kg", "--at", "2026-03-30T09:00",
             "--previous", "2026-03-29T02:15=40mg"),
            ("session", "record", "P1", "--date", "2026-03-29T02:15"),
            ("next", "P1", "--date", "2026-10-25T02:15"),
        ):  # fmt: skip
            result = run(*args)
            assert result.exit_code == 2, (args, result.stderr)
            assert "does not exist" in result.stderr or "happens twice" in result.stderr

    def test_history_file_times_are_in_the_clinic_zone(self, tmp_path: Path) -> None:
        path = tmp_path / "h.json"
        history = {
            "patient": {"id": "X", "protocol": "depression", "baseline": 30, "weight_kg": 80},
            "sessions": [{"date": "2026-03-29T02:30:00", "total_dose_mg": 40}],
        }
        path.write_text(json.dumps(history), encoding="utf-8")
        result = run("next", "X", "--history", str(path), "--date", "2026-04-01T09:00")
        assert result.exit_code == 2
        assert "sessions[0].date 2026-03-29T02:30 does not exist" in result.stderr


class TestPlanAcrossDaylightSaving:
    """Sessions stay at the local session time; the UTC offset changes; gaps are elapsed."""

    def test_depression_series_keeps_9_local(self) -> None:
        # Mon-Wed-Fri, at most 3 in any 7 days. Mon 30 Mar 09:00 CEST is 6 d 23 h after Mon 23
        # 09:00 CET: a 4th session within 7 days, so the series goes on on Tue 31.
        request = PlanRequest(
            dose=DoseRequest(patient=Patient(weight_kg=80)), start=date(2026, 3, 23), zone=BERLIN
        )
        sessions = plan(PROTOCOLS["depression"], request, load_limits()).sessions
        starts = [s.start.isoformat() for s in sessions]
        assert starts == [
            "2026-03-23T09:00:00+01:00",
            "2026-03-25T09:00:00+01:00",
            "2026-03-27T09:00:00+01:00",
            "2026-03-31T09:00:00+02:00",
            "2026-04-02T09:00:00+02:00",
            "2026-04-06T09:00:00+02:00",
        ]
        # Fri 09:00 CET -> Tue 09:00 CEST: 95 h, not 96.
        assert clock.elapsed(sessions[3].start, sessions[2].start) == timedelta(hours=95)
        assert sessions[3].timeline.infusion_start.isoformat() == "2026-03-31T09:20:00+02:00"

    def test_autumn_mon_wed_fri_is_kept(self) -> None:
        # Mon 19 Oct 09:00 CEST -> Mon 26 Oct 09:00 CET is 7 d 1 h: the Monday stays.
        request = PlanRequest(
            dose=DoseRequest(patient=Patient(weight_kg=80)), start=date(2026, 10, 19), zone=BERLIN
        )
        sessions = plan(PROTOCOLS["depression"], request, load_limits()).sessions
        assert [s.start.isoformat() for s in sessions[2:4]] == [
            "2026-10-23T09:00:00+02:00",
            "2026-10-26T09:00:00+01:00",
        ]
        assert clock.elapsed(sessions[3].start, sessions[2].start) == timedelta(hours=73)

    def test_daily_series_keeps_24_elapsed_hours(self) -> None:
        # crps: daily, at least 1 d apart. 09:00 on Sun 29 Mar is only 23 h after 09:00 on
        # Sat 28: too soon, so the series goes on on Monday 30 (47 h).
        request = PlanRequest(
            dose=DoseRequest(patient=Patient(weight_kg=70)),
            start=date(2026, 3, 26),
            zone=BERLIN,
            sessions=5,
        )
        sessions = plan(PROTOCOLS["crps"], request, load_limits()).sessions
        assert [s.date.isoformat() for s in sessions] == [
            "2026-03-26",
            "2026-03-27",
            "2026-03-28",
            "2026-03-30",
            "2026-03-31",
        ]
        assert all(s.status != "hard" for s in sessions)

    def test_fall_night_is_25_hours(self) -> None:
        request = PlanRequest(
            dose=DoseRequest(patient=Patient(weight_kg=70)),
            start=date(2026, 10, 24),
            zone=BERLIN,
            sessions=3,
        )
        sessions = plan(PROTOCOLS["crps"], request, load_limits()).sessions
        assert [s.start.isoformat() for s in sessions] == [
            "2026-10-24T09:00:00+02:00",
            "2026-10-25T09:00:00+01:00",
            "2026-10-26T09:00:00+01:00",
        ]
        assert clock.elapsed(sessions[1].start, sessions[0].start) == timedelta(hours=25)

    def test_session_time_skipped_on_a_plan_day_is_refused(self) -> None:
        request = PlanRequest(
            dose=DoseRequest(patient=Patient(weight_kg=70)),
            start=date(2026, 3, 29),
            zone=BERLIN,
            session_time=time(2, 30),
            sessions=1,
        )
        with pytest.raises(
            InputError, match="time of day 02:30 does not exist on 2026-03-29 in Europe/Berlin"
        ):
            plan(PROTOCOLS["crps"], request, load_limits())
        autumn = dataclasses.replace(request, start=date(2026, 10, 25))
        with pytest.raises(InputError, match="time of day 02:30 happens twice on 2026-10-25"):
            plan(PROTOCOLS["crps"], autumn, load_limits())

    def test_cli_plan_json_and_csv_carry_offsets(self) -> None:
        args = ("plan", "-p", "depression", "--weight", "80kg", "--start", "2026-03-23")
        data = json.loads(run(*args, "--json", "--tz", "Europe/Berlin").stdout)
        assert data["sessions"][2]["start"] == "2026-03-27T09:00:00+01:00"
        assert data["sessions"][3]["timeline"]["arrive"] == "2026-03-31T09:00:00+02:00"
        csv = run(*args, "--format", "csv", "--tz", "America/New_York").stdout
        assert ",2026-03-23T09:00:00-04:00,2026-03-23T09:20:00-04:00," in csv


class TestNextEarliest:
    """next's earliest date is the minimum gap in elapsed time, shown in the clinic's zone."""

    def test_crps_earliest_after_spring_forward(self) -> None:
        patient = PatientRecord(id="P", protocol="crps", baseline=60, weight_kg=70)
        last = SessionRecord(
            patient_id="P",
            at=datetime(2026, 3, 28, 9, 0, tzinfo=BERLIN),
            protocol="crps",
            dose_mg=24.5,
            dose_mg_per_kg=0.35,
            score=50,
        )
        result = decide(
            PROTOCOLS["crps"],
            patient,
            [last],
            load_limits(),
            at=datetime(2026, 3, 28, 12, 0, tzinfo=BERLIN),
        )
        # 24 h after 09:00 CET (08:00 UTC) is 08:00 UTC on Sunday: 10:00 CEST.
        assert result.earliest_date.isoformat() == "2026-03-29T10:00:00+02:00"


class TestZoneChoice:
    """--tz (the command's, then the app's), else KETADOSE_TZ, else the system's zone."""

    DOSE = ("dose", "-p", "depression", "--weight", "80kg", "--at", "2026-11-30T09:00", "--json")

    def at(self, *args: str, env: dict[str, str | None] | None = None) -> str:
        result = run(*args, env=env)
        assert result.exit_code == 0, result.stderr
        return str(json.loads(result.stdout)["at"])

    def test_precedence(self) -> None:
        env: dict[str, str | None] = {"KETADOSE_TZ": "America/New_York"}
        assert self.at(*self.DOSE, env=env) == "2026-11-30T09:00:00-05:00"
        assert self.at("--tz", "Asia/Tokyo", *self.DOSE, env=env) == "2026-11-30T09:00:00+09:00"
        assert (
            self.at("--tz", "Asia/Tokyo", *self.DOSE, "--tz", "Asia/Kolkata", env=env)
            == "2026-11-30T09:00:00+05:30"
        )

    def test_system_zone_from_tz(self) -> None:
        env: dict[str, str | None] = {"KETADOSE_TZ": None, "TZ": "America/Chicago"}
        assert self.at(*self.DOSE, env=env) == "2026-11-30T09:00:00-06:00"

    def test_system_zone_unnamed_is_the_local_offset(self) -> None:
        # A POSIX TZ string names no IANA zone: the local UTC offset of now is used.
        env: dict[str, str | None] = {"KETADOSE_TZ": None, "TZ": "XYZ-3"}
        expected = datetime.now().astimezone().utcoffset()
        assert datetime.fromisoformat(self.at(*self.DOSE, env=env)).utcoffset() == expected

    @pytest.mark.parametrize(
        ("args", "env"),
        [
            (("--tz", "Mars/Olympus"), {}),
            ((), {"KETADOSE_TZ": "Mars/Olympus"}),
            ((), {"KETADOSE_TZ": " "}),
        ],
    )
    def test_unknown_or_blank_zone_exit_2(
        self, args: tuple[str, ...], env: dict[str, str | None]
    ) -> None:
        result = run(*self.DOSE, *args, env=env)
        assert result.exit_code == 2
        assert len(result.stderr.splitlines()) == 1
        assert "zone" in result.stderr or "KETADOSE_TZ" in result.stderr

    def test_table_shows_the_zone_abbreviation(self) -> None:
        result = run("next", "P0", "--tz", "Europe/Berlin")
        # The zone itself was fine: what is missing is the store (a read fails closed).
        assert result.exit_code == 6
        assert "no store at" in result.stderr
        out = run(
            "plan", "-p", "depression", "--weight", "80kg", "--start", "2026-11-30",
            "--format", "markdown",
        ).stdout  # fmt: skip
        assert "Mon 2026-11-30 09:00 CET" in out


def _v1_store(path: Path) -> None:
    """A store as schema version 1 kept it: naive local times everywhere."""
    Store._open(path, read_only=False, migrations=MIGRATIONS[:1]).close()
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute(
            "INSERT INTO patients VALUES ('P1', 'depression', 30.0, NULL, '2026-10-20T09:00:00')"
        )
        conn.execute(
            "INSERT INTO measurements (patient_id, at, weight_kg) "
            "VALUES ('P1', '2026-10-20T09:00:00', 80.0)"
        )
        for at in ("2026-10-28T09:00:00", "2026-11-01T01:30:00", "2026-11-02T09:00:00"):
            conn.execute(
                "INSERT INTO sessions (patient_id, at, protocol, dose_mg, dose_mg_per_kg, "
                "phases_json) VALUES ('P1', ?, 'depression', 40.0, 0.5, '[]')",
                (at,),
            )
        conn.execute(
            "INSERT INTO audit (at, user, command, patient_id, inputs_json, findings_json, "
            "status, override_reason, library_sha256) VALUES ('2026-10-28T09:05:00', 'nurse', "
            "'session record', 'P1', '{}', '[]', 'soft', 'reason', 'x')"
        )


class TestStoreMigration:
    """A version-1 store's naive times are read in the clinic's zone given when it migrates."""

    def test_naive_rows_get_offsets_audit_kept_and_append_only(self, tmp_path: Path) -> None:
        path = tmp_path / "store.db"
        _v1_store(path)
        with Store.open(path, zone=NEW_YORK) as db:
            notices = db.notices
            sessions = db.sessions("P1")
            entry = db.audit()[0]
            created = db.patient("P1").created_at
        # EDT (-04:00) until 2026-11-01 02:00, EST (-05:00) after; 01:30 that night happens
        # twice and is read as the first (EDT).
        assert [s.at.isoformat() for s in sessions] == [
            "2026-10-28T09:00:00-04:00",
            "2026-11-01T01:30:00-04:00",
            "2026-11-02T09:00:00-05:00",
        ]
        assert created is not None and created.isoformat() == "2026-10-20T09:00:00-04:00"
        assert entry.at.isoformat() == "2026-10-28T09:05:00-04:00"
        assert "read as America/New_York local time" in notices[0]
        assert "sessions 2 at 2026-11-01T01:30:00 (repeated" in notices[1]
        assert (tmp_path / "store.db.bak-v1").exists()
        with closing(sqlite3.connect(path)) as conn:
            assert conn.execute("SELECT at FROM sessions ORDER BY id").fetchall()[2] == (
                "2026-11-02T09:00:00-05:00",
            )
            # the audit entry keeps the text it was written with, and stays append-only
            assert conn.execute("SELECT at FROM audit").fetchone() == ("2026-10-28T09:05:00",)
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                conn.execute("UPDATE audit SET user = 'x'")
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                conn.execute("DELETE FROM audit")
        # opened again, in another zone: the same moments, shown in that zone; no new backup
        with Store.open(path, zone=BERLIN) as db:
            assert db.notices == ()
            assert db.sessions("P1")[0].at.isoformat() == "2026-10-28T14:00:00+01:00"
            assert db.audit()[0].at.isoformat() == "2026-10-28T14:05:00+01:00"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["store.db", "store.db.bak-v1"]

    def test_without_a_zone_nothing_changes(self, tmp_path: Path) -> None:
        path = tmp_path / "store.db"
        _v1_store(path)
        with pytest.raises(StoreError, match="without a time zone"):
            Store.open(path)
        with closing(sqlite3.connect(path)) as conn:
            assert conn.execute("PRAGMA user_version").fetchone() == (1,)
            assert conn.execute("SELECT at FROM sessions").fetchone() == ("2026-10-28T09:00:00",)

    def test_cli_says_so(self, tmp_path: Path) -> None:
        path = tmp_path / "store.db"
        _v1_store(path)
        result = run("--tz", "America/New_York", "history", "P1", "--json", "--store", str(path))
        assert result.exit_code == 0, result.stderr
        assert "migrated store" in result.stderr
        dates = [s["date"] for s in json.loads(result.stdout)["sessions"]]
        assert dates[-1] == "2026-11-02T09:00:00-05:00"


ZONES = sorted(available_timezones() - {"Factory", "localtime"})
#: Zones that change their clocks, north and south; the months around their changes.
CHANGING = ("Europe/Berlin", "America/New_York", "Australia/Sydney", "America/Santiago",
            "Pacific/Chatham", "Asia/Tehran", "Europe/London", "America/Havana")  # fmt: skip


@given(
    zone_name=st.sampled_from(CHANGING) | st.sampled_from(ZONES),
    first=st.builds(
        datetime,
        year=st.integers(2000, 2037),
        month=st.sampled_from((3, 4, 9, 10, 11)),
        day=st.integers(1, 28),
        hour=st.integers(0, 23),
        minute=st.integers(0, 59),
    ),
    minutes=st.integers(0, 60 * 24 * 10),
)
def test_checked_interval_is_the_utc_difference(
    zone_name: str, first: datetime, minutes: int
) -> None:
    """For any two local times in any zone, the interval checked is their UTC difference."""
    zone = ZoneInfo(zone_name)
    earlier = first
    later = earlier + timedelta(minutes=minutes)  # a wall-clock step: may cross a change
    assume(clock.problem(earlier, zone) is None and clock.problem(later, zone) is None)
    a, b = earlier.replace(tzinfo=zone), later.replace(tzinfo=zone)
    expected = (b.astimezone(UTC) - a.astimezone(UTC)).total_seconds() / 60
    assume(expected >= 0)
    found = interval(checked(b, a, library=interval_library("1 min", "20000 d")))
    assert found.value == expected
