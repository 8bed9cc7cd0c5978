"""Review of issue 16 (the store on two engines): attacks that the change lets through.

Each test states what a hostile clinician (or a hostile value) does and what the store should
answer. The PostgreSQL ones connect as a clinician's own login role, a member of
ketadose_clinician, exactly as the README sets a clinic up; what they send is what that
clinician could send with psql (the library's own SQL, with its own hash helpers).
"""

from __future__ import annotations

import json
from contextlib import suppress
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from ketadose.errors import InputError, StoreError
from ketadose.store import Store
from ketadose.store_chain import link
from ketadose.store_schema import _content
from ketadose.store_url import parse
from tests.stores import StoreTarget
from tests.test_store import T0, entry, patient, session_for

ON_POSTGRESQL = pytest.mark.parametrize(
    "engine", [pytest.param("postgresql", marks=pytest.mark.postgresql)]
)


def _made(target: StoreTarget) -> None:
    """The owner makes the schema and adds the patient."""
    with Store.open(target.url) as store:
        store.add_patient(patient(), at=T0)


@ON_POSTGRESQL
def test_a_clinician_cannot_write_an_audit_entry_as_another(store_target: StoreTarget) -> None:
    """The audit's "user" is whatever the INSERT says: nothing in the database binds it to
    session_user, so any clinician writes entries (overrides, co-signatures, registrations)
    in another's name, and the chain is intact. The server must refuse it."""
    _made(store_target)
    with Store.open(store_target.clinician("rv_nurse")) as store:
        assert store.actor == "rv_nurse"
        store.actor = "rv_prescriber"  # what an INSERT from psql can say just as well
        with pytest.raises(StoreError):
            store.append_audit(replace(entry(), user="rv_prescriber"), signed="prescribed")


@ON_POSTGRESQL
def test_a_nurse_cannot_pin_the_override_rules_in_the_admins_name(
    store_target: StoreTarget,
) -> None:
    """A nurse pins "anyone overrides anything, no co-signature" as the admin: the store uses
    it at once and audit verify finds nothing wrong."""
    _made(store_target)
    sha = entry().library_sha256
    registration = replace(
        entry(None, "clinician add"),
        inputs_json=json.dumps({"name": "rv_admin", "role": "admin"}),
        override_reason=None,
    )
    with Store.open(store_target.clinician("rv_admin")) as store:
        store.add_clinician("rv_admin", "admin", registration)
        nurse = replace(
            registration, inputs_json=json.dumps({"name": "rv_nurse2", "role": "nurse"})
        )
        store.add_clinician("rv_nurse2", "nurse", nurse)
    rules = {"default": {"roles": ["nurse", "prescriber", "pharmacist", "admin"]}}
    pin = replace(
        entry(None, "clinician policy"),
        inputs_json=json.dumps({"overrides": rules}),
        override_reason=None,
        library_sha256=sha,
    )
    with Store.open(store_target.clinician("rv_nurse2")) as store:
        store.actor = "rv_admin"
        with suppress(StoreError):
            store.pin_policy(pin)
        store.actor = "rv_nurse2"
        assert store.policy() != rules or store.verify() != [], (
            "a nurse's forged pin is in force and the log says nothing"
        )


@ON_POSTGRESQL
def test_one_insert_with_the_largest_id_does_not_shut_the_audit_log(
    store_target: StoreTarget,
) -> None:
    """The chain trigger moves the identity sequence to any explicit id past it: a clinician's
    one row with id 2**63-1 (a correct hash: ids are not hashed) leaves every later entry
    failing with 'nextval: reached maximum value', for good (the row cannot be deleted)."""
    _made(store_target)
    with Store.open(store_target.clinician("rv_vandal")) as store:
        store.append_audit(entry())
        with suppress(StoreError), store._transaction("vandalise") as conn:
            head = conn.execute("SELECT hash FROM audit ORDER BY id DESC LIMIT 1").scalar_one()
            values = {
                "at": (T0 + timedelta(minutes=1)).isoformat(),
                "user": "rv_vandal",
                "command": "dose",
                "patient_id": None,
                "inputs_json": "{}",
                "findings_json": "[]",
                "status": "ok",
                "override_reason": None,
                "library_sha256": "0" * 64,
                "claimed": None,
            }
            digest = link(str(head), _content("audit", values, conn))
            names = ", ".join(f'"{name}"' for name in values)
            conn.execute(
                f"INSERT INTO audit (id, {names}, prev_hash, hash)"
                f" VALUES (?, {', '.join('?' * len(values))}, ?, ?)",
                (2**63 - 1, *values.values(), head, digest),
            )
        store.append_audit(replace(entry(), at=T0 + timedelta(minutes=2)))


@ON_POSTGRESQL
def test_an_adverse_event_cannot_be_added_to_a_recorded_session(
    store_target: StoreTarget,
) -> None:
    """INSERT on session_adverse_events is granted with no trigger: a clinician adds an event
    to anyone's recorded session. It is detected (the session's hash), but then the patient's
    sessions can never be read again (history and next refuse), by anyone. Refuse it."""
    _made(store_target)
    with Store.open(store_target.clinician("rv_other")) as store:
        session_id = store.record_session_with_audit(session_for(1), entry())
        with suppress(StoreError), store._transaction("add an event") as conn:
            conn.execute(
                "INSERT INTO session_adverse_events (session_id, position, event, grade)"
                " VALUES (?, 99, 'seizure', 'severe')",
                (session_id,),
            )
        assert [s.id for s in store.sessions(patient().id)] == [session_id]


@ON_POSTGRESQL
def test_a_clinician_in_the_owners_role_is_a_privilege_problem(
    store_target: StoreTarget,
) -> None:
    """privilege_problems looks at ketadose_clinician alone: a clinician login that is also a
    member of the owner role (or has CREATEROLE, and can grant itself that) may disable the
    triggers, and store check says nothing."""
    _made(store_target)
    assert store_target.database is not None
    store_target.clinician("rv_owner_too")
    with store_target.superuser() as conn:
        conn.execute(f'GRANT "{store_target.database.owner}" TO rv_owner_too')
    with Store.open(store_target.url) as store:
        assert any("rv_owner_too" in problem for problem in store.privilege_problems())


@ON_POSTGRESQL
def test_the_store_is_made_in_public_whatever_the_owners_search_path(
    store_target: StoreTarget,
) -> None:
    """With a schema named as the owner (PostgreSQL's default search_path is "$user",
    public), store migrate makes every table there and succeeds, while the triggers, grants
    and checks name public: every insert then fails (public.chain_tail does not exist)."""
    assert store_target.database is not None
    owner = store_target.database.owner
    with store_target.superuser() as conn:
        conn.execute(f'CREATE SCHEMA "{owner}" AUTHORIZATION "{owner}"')
    with Store.open(store_target.url) as store:
        store.add_patient(patient(), at=T0)
        assert store.verify() == []


@ON_POSTGRESQL
def test_a_revision_that_is_not_ours_is_a_store_error(store_target: StoreTarget) -> None:
    """alembic_version holding another project's revision id (a shared database, a hand edit)
    is read as version 0 and handed to Alembic: an internal error (exit 1), not exit 6."""
    _made(store_target)
    with store_target.superuser() as conn:
        conn.execute("UPDATE alembic_version SET version_num = 'ae1027a6acf'")
    with pytest.raises(StoreError):
        Store.open(store_target.url).close()


def test_a_url_with_an_ssl_key_passphrase_is_refused() -> None:
    """sslpassword is libpq's passphrase of the client key: a secret, shown in every message
    (the URL is the store's name) and kept in shell histories."""
    with pytest.raises(InputError) as refused:
        parse("postgresql://nurse@db.clinic/ketadose?sslkey=/k.pem&sslpassword=hunter2")
    assert "hunter2" not in str(refused.value)


def test_a_negative_zero_reads_back(store_target: StoreTarget) -> None:
    """SQLite stores -0.0 as 0.0; the hash was made from -0.0: the row then reads as edited
    and the patient's sessions can never be read again (a false tamper alarm)."""
    with Store.open(store_target.url, actor="rv_zero") as store:
        store.add_patient(patient(), at=T0)
        store.record_session_with_audit(replace(session_for(1), heart_rate=-0.0), entry())
        assert len(store.sessions(patient().id)) == 1
        assert store.verify() == []


@pytest.mark.parametrize("notes", ["a\udcffb", "a\x00b"], ids=["surrogate", "nul"])
def test_text_neither_engine_can_keep_is_an_input_error(
    store_target: StoreTarget, notes: str
) -> None:
    """A note from a non-UTF-8 argument (Python's surrogateescape) is an internal error on
    both engines; a NUL is kept by SQLite and a StoreError (exit 6) on PostgreSQL. Both
    should be refused before writing, as InputError (exit 2), on both engines alike."""
    with Store.open(store_target.url, actor="rv_text") as store:
        store.add_patient(patient(), at=T0)
        with pytest.raises(InputError):
            store.record_session_with_audit(replace(session_for(1), notes=notes), entry())


def test_the_same_records_hash_alike_on_both_engines(
    store_target: StoreTarget, tmp_path: Path
) -> None:
    """Held (kept as a regression test): test_store_engines' 'same hashes' test never compares
    the engines. Here one sequence of records, with integral and inexact floats, Unicode,
    quotes and JSON text, goes to a file and to the test's store: every chain head is equal."""
    variants: list[dict[str, Any]] = [
        {},
        {"dose_mg": 40.0, "heart_rate": 97.0},
        {"dose_mg": 0.1 + 0.2},
        {"dose_mg": 1e16},
        {"notes": "ünïcødé é e\u0301 \U0001f600"},
        {"notes": "tab\tnew\nline 'q' \"dq\" \\"},
        {"phases_json": '{"b": 1,  "a": [1.0, 2]}'},
    ]
    actor = "rv_hasher"
    heads = {}
    places = {"file": str(tmp_path / "twin.db"), "target": store_target.url}
    if not store_target.sqlite:
        _made(store_target)
        places["target"] = store_target.clinician(actor)
    for name, where in places.items():
        with Store.open(where, actor=actor) as store:
            if name == "file" or store_target.sqlite:
                store.add_patient(patient(), at=T0)
            for number, changes in enumerate(variants, 1):
                store.record_session_with_audit(replace(session_for(number), **changes), entry())
            assert store.verify() == []
            heads[name] = {chain.table: chain.head for chain in store.chains()}
    assert heads["file"] == heads["target"]
