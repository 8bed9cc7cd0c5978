"""Clinicians with roles, overrides by role, and the independent second clinician's co-signature.

Each test runs on both engines. Who is acting is who the system authenticated: on SQLite the OS
user (``env.os_user``), which each clinician plays by replacing it, as separate logins would
be; on PostgreSQL the database session user, so each clinician is a login role of their own
(``StoreTarget.clinician``) and the command line connects as them (``KETADOSE_STORE`` is their
URL): a co-signature by a second clinician is a second authenticated user.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ketadose.cli import app, env
from ketadose.store import Store
from tests.stores import (
    ON_POSTGRESQL,
    StoreTarget,
    clinician_connection,
    integrity_error,
    privilege_error,
    raw_sql,
    tamper,
)
from tests.test_store import WEIGHED

runner = CliRunner()


@pytest.fixture
def acting(store_target: StoreTarget, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``acting(name)``: the command line acts as ``name`` from then on.

    SQLite: the OS user is ``name``. PostgreSQL: the command line connects as the login role
    ``name`` (made on first use, in the clinicians' group role), its password in the test's
    pgpass file; the store's owner has made the schema and its grants first.
    """
    if not store_target.sqlite:
        Store.open(store_target.url).close()

    def become(name: str) -> None:
        if store_target.sqlite:
            monkeypatch.setattr(env, "os_user", lambda: name)
        else:
            monkeypatch.setenv("KETADOSE_STORE", store_target.clinician(name))

    return become


def run(*args: str) -> Any:
    return runner.invoke(app, list(args))


OVERDOSE = ("--dose", "1.2mg/kg", "--override-reason", "no response at 1 mg/kg, tolerated")


@pytest.fixture
def clinic(acting: Any, store_target: StoreTarget) -> StoreTarget:
    """A patient, P1, and five clinicians registered by admin1, the first admin."""
    acting("admin1")
    assert run("patient", "add", "P1", "-p", "depression", "--weight", "80kg", "--baseline", "30")
    first = run("clinician", "add", "admin1", "--role", "admin")
    assert first.exit_code == 0, first.stderr
    for name, role in (("dr_a", "prescriber"), ("dr_b", "prescriber"), ("rn_c", "nurse"),
                       ("ph_d", "pharmacist")):  # fmt: skip
        added = run("clinician", "add", name, "--role", role)
        assert added.exit_code == 0, added.stderr
    return store_target


def entries(clinic: StoreTarget) -> list[dict[str, Any]]:
    """The audit log's entries, read by whoever acts."""
    return json.loads(run("audit", "--json").stdout)["entries"]  # type: ignore[no-any-return]


class TestRegistration:
    def test_the_first_clinician_is_the_store_admin_by_themselves(
        self, acting: Any, store_target: StoreTarget
    ) -> None:
        acting("admin1")
        for name, role in (("dr_a", "prescriber"), ("admin1", "nurse"), ("someone", "admin")):
            refused = run("clinician", "add", name, "--role", role)
            assert refused.exit_code == 2
            assert "ketadose clinician add admin1 --role admin" in refused.stderr
        assert run("clinician", "add", "admin1", "--role", "admin").exit_code == 0
        listed = json.loads(run("clinician", "list", "--json").stdout)
        assert [(c["name"], c["role"], c["added_by"]) for c in listed["clinicians"]] == [
            ("admin1", "admin", "admin1")
        ]

    def test_only_an_admin_adds_and_a_role_is_set_once(
        self, clinic: StoreTarget, acting: Any
    ) -> None:
        acting("dr_a")
        refused = run("clinician", "add", "rn_e", "--role", "nurse")
        assert refused.exit_code == 2 and "dr_a is not a registered admin" in refused.stderr
        acting("admin1")
        again = run("clinician", "add", "dr_a", "--role", "admin")
        assert again.exit_code == 2 and "registered already" in again.stderr
        unknown = run("clinician", "add", "x", "--role", "surgeon")
        assert unknown.exit_code == 2 and "role must be one of" in unknown.stderr
        assert [e["command"] for e in entries(clinic)].count("clinician add") == 5

    def test_the_registry_cannot_be_edited_behind_the_tools_back(self, clinic: StoreTarget) -> None:
        promote = "UPDATE clinicians SET role = 'admin' WHERE name = 'rn_c'"
        with pytest.raises(integrity_error(clinic)):
            raw_sql(clinic, promote)
        tamper(clinic, promote)
        check = run("store", "check")
        assert check.exit_code == 6
        assert "clinicians entry 4 does not match its hash: edited" in check.stderr
        listed = run("clinician", "list")
        assert listed.exit_code == 6 and "clinicians row 4: hash" in listed.stderr


class TestOverrides:
    def test_a_nurse_may_not_override_a_dose_and_nothing_is_written(
        self, clinic: StoreTarget, acting: Any
    ) -> None:
        acting("rn_c")
        before = len(entries(clinic))
        result = run("dose", "-p", "depression", "--weight", "80kg", *OVERDOSE)
        assert result.exit_code == 3
        assert "rn_c (nurse) may not override a session finding: prescriber may" in result.stderr
        assert result.stdout == ""
        assert len(entries(clinic)) == before

    def test_someone_not_registered_may_not_override(
        self, clinic: StoreTarget, acting: Any
    ) -> None:
        acting("visitor")
        result = run("dose", "-p", "depression", "--weight", "80kg", *OVERDOSE)
        assert result.exit_code == 3
        assert "visitor (not a registered clinician) may not override" in result.stderr

    def test_a_prescriber_overrides_and_signs_it(self, clinic: StoreTarget, acting: Any) -> None:
        acting("dr_a")
        result = run("dose", "-p", "depression", "--weight", "80kg", *OVERDOSE, "--json")
        assert result.exit_code == 0, result.stderr
        assert json.loads(result.stdout)["ready"] is True
        last = entries(clinic)[-1]
        assert (last["command"], last["user"], last["status"]) == ("dose", "dr_a", "soft")
        signed = raw_sql(
            clinic, "SELECT signer, role, meaning FROM signatures WHERE audit_id = ?", (last["id"],)
        )
        assert signed == [("dr_a", "prescriber", "prescribed")]

    def test_a_pharmacist_clears_a_medication_but_not_a_dose(
        self, clinic: StoreTarget, acting: Any
    ) -> None:
        acting("ph_d")
        screened = run(
            "check", "-p", "depression", "--weight", "80kg", "--med", "unlisted-drug",
            "--override-reason", "checked the interaction",
        )  # fmt: skip
        assert screened.exit_code == 0, screened.stderr
        dose = run("check", "-p", "depression", "--weight", "80kg", *OVERDOSE)
        assert dose.exit_code == 3 and "ph_d (pharmacist)" in dose.stderr


class TestCosignature:
    def record(self, day: str, *extra: str) -> Any:
        return run("session", "record", "P1", "--date", f"{day}T09:00", *extra)

    def test_a_dose_override_waits_for_an_independent_second_clinician(
        self, clinic: StoreTarget, acting: Any
    ) -> None:
        acting("dr_a")
        recorded = self.record("2026-12-01", *OVERDOSE)
        assert recorded.exit_code == 0, recorded.stderr
        entry = entries(clinic)[-1]["id"]
        assert f"awaits an independent second clinician: ketadose override cosign {entry}" in (
            recorded.stderr
        )
        held = run("next", "P1", "--date", "2026-12-04T09:00", "--json")
        assert held.exit_code == 3
        decision = json.loads(held.stdout)
        assert decision["ready"] is False
        assert "override-awaiting-cosign" in {f["code"] for f in decision["findings"]}

        for who, why in (
            ("dr_a", "must be an independent second clinician's"),
            ("rn_c", "rn_c (nurse) may not co-sign"),
            ("ph_d", "ph_d (pharmacist) may not co-sign"),
            ("visitor", "visitor is not a registered clinician"),
        ):
            acting(who)
            refused = run("override", "cosign", str(entry))
            refusal = "may not co-sign" in why or "independent" in why
            assert refused.exit_code == (3 if refusal else 2), who
            assert why in refused.stderr
        acting("dr_b")
        signed = run("override", "cosign", str(entry))
        assert signed.exit_code == 0, signed.stderr
        again = run("override", "cosign", str(entry))
        assert again.exit_code == 2 and "was co-signed by dr_b" in again.stderr

        after = json.loads(run("next", "P1", "--date", "2026-12-04T09:00", "--json").stdout)
        assert "override-awaiting-cosign" not in {f["code"] for f in after["findings"]}
        with Store.open(clinic.url) as db:
            (session,) = db.sessions("P1")
            assert session.cosign
            signatures = [(s.signer, s.role, s.meaning) for s in db.signatures(session.id or 0)]
        assert signatures == [("dr_a", "prescriber", "administered"),
                              ("dr_b", "prescriber", "co-signed")]  # fmt: skip
        assert run("store", "check").exit_code == 0

    def test_a_session_without_such_an_override_needs_none(
        self, clinic: StoreTarget, acting: Any
    ) -> None:
        acting("rn_c")
        recorded = self.record("2026-12-01", "--dose", "0.5mg/kg")
        assert recorded.exit_code == 0, recorded.stderr
        assert "awaits" not in recorded.stderr
        entry = entries(clinic)[-1]["id"]
        acting("dr_b")
        refused = run("override", "cosign", str(entry))
        assert refused.exit_code == 2 and "needs no co-signature" in refused.stderr
        not_a_session = run("override", "cosign", "1")
        assert not_a_session.exit_code == 2 and "is not a recorded session" in not_a_session.stderr

    def test_a_nurse_may_not_record_a_session_with_a_dose_override(
        self, clinic: StoreTarget, acting: Any
    ) -> None:
        acting("rn_c")
        refused = self.record("2026-12-01", *OVERDOSE)
        assert refused.exit_code == 3 and "nothing was recorded" in refused.stderr
        with Store.open(clinic.url) as db:
            assert db.sessions("P1") == []

    def test_a_single_user_store_needs_no_role(
        self, acting: Any, store_target: StoreTarget
    ) -> None:
        acting("solo")
        add = ("patient", "add", "P1", "-p", "depression", "--weight", "80kg", "--baseline", "30")
        assert run(*add).exit_code == 0
        recorded = self.record("2026-12-01", *OVERDOSE)
        assert recorded.exit_code == 0, recorded.stderr
        assert "awaits" not in recorded.stderr
        assert json.loads(run("clinician", "list", "--json").stdout)["clinicians"] == []


class TestReviewFindings:
    """A hostile review's findings on roles and co-signature, each with its reproducer."""

    def test_no_later_session_is_recorded_while_an_override_awaits(
        self, clinic: StoreTarget, acting: Any
    ) -> None:
        acting("dr_a")
        assert (
            run("session", "record", "P1", "--date", "2026-12-01T09:00", *OVERDOSE).exit_code == 0
        )
        later = run("session", "record", "P1", "--date", "2026-12-03T09:00", "--dose", "0.5mg/kg")
        assert later.exit_code == 3
        assert "no later session is recorded before it" in later.stderr
        with Store.open(clinic.url) as db:
            assert len(db.sessions("P1")) == 1

    def test_a_cosign_refused_by_role_is_exit_3_and_a_huge_entry_exit_2(
        self, clinic: StoreTarget, acting: Any
    ) -> None:
        acting("dr_a")
        assert (
            run("session", "record", "P1", "--date", "2026-12-01T09:00", *OVERDOSE).exit_code == 0
        )
        entry = entries(clinic)[-1]["id"]
        acting("rn_c")
        assert run("override", "cosign", str(entry)).exit_code == 3
        huge = run("override", "cosign", "99999999999999999999")
        assert huge.exit_code == 2 and "Traceback" not in huge.stderr

    @pytest.mark.parametrize("name", ["root ", " dr", "x" * 201, "a\tb"])
    def test_a_clinician_name_is_a_user_name(self, clinic: StoreTarget, name: str) -> None:
        result = run("clinician", "add", name, "--role", "nurse")
        assert result.exit_code == 2 and "user name the store knows" in result.stderr

    def test_a_nameless_uid_is_its_number_never_the_environment(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        import os
        import pwd

        def nameless(uid: int) -> Any:
            raise KeyError(uid)

        monkeypatch.setattr(pwd, "getpwuid", nameless)
        monkeypatch.setenv("USER", "dr_a")
        monkeypatch.setenv("LOGNAME", "dr_a")
        assert env.os_user() == str(os.geteuid())


class TestCrossings:
    """A row or signature taken away (or put in) without its audit entry is found."""

    def test_the_last_session_deleted_is_found(self, clinic: StoreTarget, acting: Any) -> None:
        acting("dr_a")
        assert run("session", "record", "P1", "--date", "2026-12-01T09:00").exit_code == 0
        assert run("store", "check").exit_code == 0
        tamper(clinic, "DELETE FROM session_adverse_events", "DELETE FROM sessions")
        result = run("audit", "verify")
        assert result.exit_code == 6
        assert "sessions entry 1, signed in audit entry" in result.stderr

    def test_the_clinicians_wiped_are_found(self, clinic: StoreTarget) -> None:
        # Their counter reset too (SQLite's sqlite_sequence, PostgreSQL's chain_tail).
        counter = {
            "sqlite": "DELETE FROM sqlite_sequence WHERE name = 'clinicians'",
            "postgresql": "DELETE FROM chain_tail WHERE tbl = 'clinicians'",
        }[clinic.engine]
        tamper(clinic, "DELETE FROM clinicians", counter)
        result = run("store", "check")
        assert result.exit_code == 6
        assert "clinician 'rn_c', registered in audit entry" in result.stderr

    def test_a_forged_cosignature_is_found(self, clinic: StoreTarget, acting: Any) -> None:
        acting("dr_a")
        assert (
            run("session", "record", "P1", "--date", "2026-12-01T09:00", *OVERDOSE).exit_code == 0
        )
        entry = entries(clinic)[-1]["id"]
        with Store.open(clinic.url) as db:  # a forger with the hash function: one row, linked
            from ketadose.store_chain import link
            from ketadose.store_schema import _content

            ((head,),) = raw_sql(clinic, "SELECT hash FROM signatures ORDER BY id DESC LIMIT 1")
            values = {"audit_id": entry, "session_id": 1, "signer": "dr_b",
                      "role": "prescriber", "meaning": "co-signed",
                      "at": "2026-12-01T10:00:00+01:00"}  # fmt: skip
            digest = link(head, _content("signatures", values, None))
            raw_sql(
                clinic,
                "INSERT INTO signatures (audit_id, session_id, signer, role, meaning, at,"
                " prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (*values.values(), head, digest),
                as_anyone=True,  # on a server, only its superuser could: it refuses a clinician
            )
            assert db.awaiting_cosign("P1") == []  # it fools the reading
            (found,) = db.verify()
        assert (found.table, found.kind) == ("signatures", "inserted")
        assert run("store", "check").exit_code == 6


class TestPinnedRules:
    """The override rules are the store's, pinned by its admin, not the command's --limits."""

    def permissive(self, tmp_path: Path) -> Path:
        from ketadose.limits import shipped_bytes

        text = shipped_bytes().decode()
        head = text[: text.index("[overrides.default]")]
        mine = tmp_path / "mine.toml"
        mine.write_text(head + '[overrides.default]\nroles = ["nurse"]\n', encoding="utf-8")
        return mine

    def test_a_library_of_ones_own_gives_no_power(
        self, clinic: StoreTarget, acting: Any, tmp_path: Path
    ) -> None:
        mine = self.permissive(tmp_path)
        acting("rn_c")
        result = run(
            "dose", "-p", "depression", "--weight", "80kg", *OVERDOSE, "--limits", str(mine)
        )
        assert result.exit_code == 3
        assert "rn_c (nurse) may not override a session finding: prescriber may" in result.stderr
        pinned = run("clinician", "policy", "--limits", str(mine))
        assert pinned.exit_code == 2 and "rn_c is not a registered admin" in pinned.stderr

    def test_an_admin_pins_new_rules(
        self, clinic: StoreTarget, acting: Any, tmp_path: Path
    ) -> None:
        mine = self.permissive(tmp_path)
        acting("admin1")
        assert run("clinician", "policy", "--limits", str(mine)).exit_code == 0
        acting("rn_c")
        result = run("dose", "-p", "depression", "--weight", "80kg", *OVERDOSE)
        assert result.exit_code == 0, result.stderr  # the pinned rules, whatever --limits says
        assert [e["command"] for e in entries(clinic)].count("clinician policy") == 2
        assert run("store", "check").exit_code == 0


class TestSecondReview:
    """A second hostile review's findings, each with its reproducer."""

    def test_registered_clinicians_without_a_pin_get_the_built_in_rule(
        self, clinic: StoreTarget, acting: Any, tmp_path: Path
    ) -> None:
        from ketadose.limits import shipped_bytes

        tamper(clinic, "DELETE FROM audit WHERE command = 'clinician policy'")
        text = shipped_bytes().decode()
        mine = tmp_path / "mine.toml"
        mine.write_text(text[: text.index("[overrides.default]")] + (
            '[overrides.default]\nroles = ["nurse"]\n'), encoding="utf-8")  # fmt: skip
        acting("rn_c")
        result = run(
            "dose", "-p", "depression", "--weight", "80kg", *OVERDOSE, "--limits", str(mine)
        )
        assert result.exit_code == 3 and "prescriber may" in result.stderr

    def test_an_acknowledgement_forged_by_sql_is_found(
        self, clinic: StoreTarget, acting: Any
    ) -> None:
        acting("rn_c")
        items = ("--items", "2,2,2,2,1,1,2,1,2", "--date", "2026-12-01T08:50")
        assert run("score", "record", "P1", "-i", "phq9", *items).exit_code in (0, 3)
        assert run("next", "P1", "--date", "2026-12-01T09:00").exit_code == 3
        # The trigger lets a first acknowledgement in: only the log can tell it is forged.
        raw_sql(clinic, "UPDATE scores SET acknowledged_by = 'dr_a', acknowledged_at ="
                " '2026-12-01T08:55:00+01:00', acknowledgement = 'safety plan made'",
                as_anyone=True)  # fmt: skip
        check = run("store", "check")
        assert check.exit_code == 6
        assert "scores entry 1 is acknowledged by dr_a, but no audit entry" in check.stderr
        with pytest.raises(integrity_error(clinic)):
            raw_sql(clinic, "UPDATE scores SET hash = 'x'")

    def test_an_acknowledgement_is_signed_by_who_acts(
        self, clinic: StoreTarget, acting: Any
    ) -> None:
        acting("dr_a")
        items = ("--items", "2,2,2,2,1,1,2,1,2", "--date", "2026-12-01T08:50")
        run("score", "record", "P1", "-i", "phq9", *items)
        done = run("score", "acknowledge", "P1", "1", "--text", "called", "--clinician", "dr_b")
        assert done.exit_code == 0, done.stderr
        with Store.open(clinic.url) as db:
            (score,) = db.scores("P1")
        assert score.acknowledged_by == "dr_a"
        assert run("store", "check").exit_code == 0

    def test_a_clinician_or_pin_forged_by_sql_is_found(
        self, clinic: StoreTarget, acting: Any
    ) -> None:
        from ketadose.store_chain import link
        from ketadose.store_schema import _content

        ((head,),) = raw_sql(clinic, "SELECT hash FROM clinicians ORDER BY id DESC LIMIT 1")
        values = {"name": "mallory", "role": "admin",
                  "added_at": "2026-12-01T09:00:00+01:00", "added_by": "admin1"}  # fmt: skip
        digest = link(head, _content("clinicians", values, None))
        raw_sql(
            clinic,
            "INSERT INTO clinicians (name, role, added_at, added_by, prev_hash, hash)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (*values.values(), head, digest),
            as_anyone=True,  # on a server, only its superuser could: it refuses a clinician
        )
        check = run("store", "check")
        assert check.exit_code == 6
        assert "(mallory, admin) matches no registration in the audit log" in check.stderr

    def test_a_weight_with_a_session_keeps_the_latest_height(
        self, clinic: StoreTarget, acting: Any
    ) -> None:
        from datetime import datetime, timedelta, timezone

        acting("rn_c")
        add = ("patient", "add", "P2", "-p", "depression", "--weight", "80kg", "--height",
               "170cm", "--baseline", "30")  # fmt: skip
        assert run(*add).exit_code == 0
        with Store.open(clinic.clinician("rn_c"), actor="rn_c") as db:
            db.record_weight("P2", at=datetime(2027, 1, 5, tzinfo=timezone(timedelta(hours=1))),
                             weight_kg=80.0, height_cm=185.0, entry=WEIGHED)  # fmt: skip
        recorded = run("session", "record", "P2", "--date", "2027-01-10T09:00", "--weight", "79kg")
        assert recorded.exit_code == 0, recorded.stderr
        with Store.open(clinic.url) as db:
            now = db.patient("P2")
        assert (now.weight_kg, now.height_cm) == (79.0, 185.0)  # not the first height, 170

    def test_a_discharge_forged_by_sql_is_found(self, clinic: StoreTarget, acting: Any) -> None:
        acting("rn_c")
        assert run("session", "record", "P1", "--date", "2026-12-01T09:00").exit_code == 0
        raw_sql(clinic, "UPDATE sessions SET discharged_at = '2026-12-01T09:30:00+01:00'")
        check = run("store", "check")
        assert check.exit_code == 6
        assert "sessions entry 1 has a discharge no audit entry gives" in check.stderr


@ON_POSTGRESQL
class TestServerRoles:
    """PostgreSQL: each clinician is the server's own login; no name given makes them another."""

    def test_the_log_names_each_clinician_as_the_server_authenticated_them(
        self, clinic: StoreTarget, acting: Any
    ) -> None:
        acting("dr_a")
        recorded = run(
            "session", "record", "P1", "--date", "2026-12-01T09:00", *OVERDOSE,
            "--clinician", "dr_b",
        )  # fmt: skip
        assert recorded.exit_code == 0, recorded.stderr
        entry = entries(clinic)[-1]
        assert (entry["user"], entry["claimed"]) == ("dr_a", "dr_b")  # a claim, never the actor
        # dr_a naming dr_b cannot co-sign as dr_b: the server says who is connected.
        self_signed = run("override", "cosign", str(entry["id"]))
        assert self_signed.exit_code == 3
        assert "must be an independent second clinician's" in self_signed.stderr
        acting("dr_b")
        assert run("override", "cosign", str(entry["id"])).exit_code == 0
        with Store.open(clinic.url) as db:
            (session,) = db.sessions("P1")
            signers = [s.signer for s in db.signatures(session.id or 0)]
        assert signers == ["dr_a", "dr_b"]

    def test_a_clinician_s_own_sql_cannot_promote_them(self, clinic: StoreTarget) -> None:
        with clinician_connection(clinic, "rn_c") as conn:
            for statement in (
                "UPDATE clinicians SET role = 'admin' WHERE name = 'rn_c'",
                "DELETE FROM clinicians WHERE name = 'admin1'",
                "UPDATE signatures SET signer = 'rn_c'",
                "DELETE FROM store_meta",
            ):
                with pytest.raises(privilege_error(), match="permission denied"):
                    conn.execute(statement)
        listed = json.loads(run("clinician", "list", "--json").stdout)
        assert ("rn_c", "nurse") in {(c["name"], c["role"]) for c in listed["clinicians"]}
        assert run("store", "check").exit_code == 0

    def test_a_login_without_the_group_role_is_refused(self, clinic: StoreTarget) -> None:
        assert clinic.database is not None
        clinic.database.cluster.create_role("outsider")
        # No USAGE on the store's schema: not even its tables' names are reachable.
        with (
            clinic.database.cluster.connect("outsider", clinic.database.name) as conn,
            pytest.raises(privilege_error(), match="permission denied for schema public"),
        ):
            conn.execute("SELECT count(*) FROM public.audit")
