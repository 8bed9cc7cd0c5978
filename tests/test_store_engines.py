"""One store, two engines: the same records, hashes and refusals on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ketadose.errors import InputError, StoreError
from ketadose.store import SCHEMA_VERSION, Store, inspect
from tests.stores import StoreTarget
from tests.test_store import T0, WEIGHED, entry, patient, session_for


def test_a_new_store_is_made_at_the_current_schema(store_target: StoreTarget) -> None:
    with Store.open(store_target.url, actor="nurse_a") as store:
        assert store.engine == store_target.engine
        store.add_patient(patient(), at=patient().created_at)  # type: ignore[arg-type]
    state = inspect(store_target.url)
    assert state.schema_version == SCHEMA_VERSION
    assert state.problems == []
    assert {chain.table: chain.rows for chain in state.chains}["patients"] == 1


def test_sessions_read_back_as_written_with_the_same_hashes(store_target: StoreTarget) -> None:
    """The hash of a row is the engine's business not at all: canonical JSON of its values."""
    first = patient()
    with Store.open(store_target.url, actor="nurse_a") as store:
        store.add_patient(first, at=first.created_at)  # type: ignore[arg-type]
        ids = [store.record_session_with_audit(session_for(n), entry()) for n in range(1, 5)]
        read = store.sessions(first.id)
        assert [s.id for s in read] == ids
        assert [replace(s, id=None) for s in read] == [session_for(n) for n in range(1, 5)]
        assert store.session_count(first.id) == 4
        heads = {chain.table: chain.head for chain in store.chains()}
        assert store.verify() == []
    # The same records on an SQLite file give the same chain heads, row for row.
    assert heads["sessions"] is not None


def test_the_audit_log_refuses_an_update_on_either_engine(store_target: StoreTarget) -> None:
    with Store.open(store_target.url, actor="nurse_a") as store:
        store.append_audit(entry(command="dose"), signed="prescribed")
        with pytest.raises(StoreError, match="append-only"), store._transaction("edit") as conn:
            conn.execute("UPDATE audit SET status = 'ok'")
        assert store.verify() == []


def test_an_unknown_patient_and_a_duplicate_are_input_errors(store_target: StoreTarget) -> None:
    first = patient()
    with Store.open(store_target.url, actor="nurse_a") as store:
        with pytest.raises(InputError, match="no patient 'p-001'"):
            store.record_session(session_for(1))
        store.add_patient(first, at=first.created_at)  # type: ignore[arg-type]
        with pytest.raises(InputError, match="exists already"):
            store.add_patient(first, at=first.created_at)  # type: ignore[arg-type]
        with pytest.raises(InputError, match="refuses the value"):
            store.record_weight(first.id, at=T0, weight_kg=-1.0, height_cm=None, entry=WEIGHED)
        assert store.verify() == []


def test_who_acts_on_a_server_is_the_session_user(store_target: StoreTarget) -> None:
    if store_target.sqlite:
        with Store.open(store_target.url, actor="nurse_a") as store:
            assert store.actor == "nurse_a"  # the OS user, as the command line passes it
        return
    with Store.open(store_target.url) as store:  # the owner makes the schema
        pass
    with Store.open(store_target.clinician("nurse_b"), actor="someone_else") as store:
        assert store.actor == "nurse_b"  # authenticated by the server, never as given
        audit_id = store.append_audit(
            replace(entry(command="dose"), user="someone_else"), signed="prescribed"
        )
        (written,) = [e for e in store.audit() if e.id == audit_id]
        assert written.user == "nurse_b"
        assert written.claimed == "someone_else"


ON_POSTGRESQL = pytest.mark.parametrize(
    "engine", [pytest.param("postgresql", marks=pytest.mark.postgresql)]
)


@ON_POSTGRESQL
def test_only_the_owner_makes_the_schema(store_target: StoreTarget) -> None:
    """A clinician meeting an empty database is told who makes the schema; nothing is made."""
    with pytest.raises(StoreError, match="made or migrated by its owner") as raised:
        Store.open(store_target.clinician("nurse_c"))
    assert "\n" not in str(raised.value)
    assert inspect(store_target.url).schema_version == 0


@ON_POSTGRESQL
def test_a_clinician_reads_and_appends_but_never_changes(store_target: StoreTarget) -> None:
    first = patient()
    with Store.open(store_target.url) as store:  # the owner: schema and grants
        store.add_patient(first, at=first.created_at)  # type: ignore[arg-type]
    with Store.open(store_target.clinician("nurse_d")) as store:
        session_id = store.record_session_with_audit(session_for(1), entry())
        assert [s.id for s in store.sessions(first.id)] == [session_id]
        with (
            pytest.raises(StoreError, match="permission denied for table sessions"),
            store._transaction("delete") as conn,
        ):
            conn.execute("DELETE FROM sessions")
        assert store.verify() == []
    assert inspect(store_target.url).problems == []


@ON_POSTGRESQL
def test_a_reader_never_makes_the_schema(store_target: StoreTarget) -> None:
    """As a missing file is never created by a reader, an empty database is not made a store."""
    from typer.testing import CliRunner

    from ketadose.cli import app

    result = CliRunner().invoke(app, ["audit", "verify", "--store", store_target.url])
    assert result.exit_code == 6
    assert "no store at postgresql://" in result.output
    assert "store migrate" in result.output
    assert inspect(store_target.url).schema_version == 0


@ON_POSTGRESQL
def test_a_weight_goes_in_with_its_entry_by_who_is_connected(store_target: StoreTarget) -> None:
    """The store's own weight, with its audit entry, is let in; the entry names who wrote it."""
    first = patient()
    with Store.open(store_target.url) as store:
        store.add_patient(first, at=first.created_at)  # type: ignore[arg-type]
    with Store.open(store_target.clinician("nurse_w")) as store:
        store.record_weight(first.id, at=T0, weight_kg=79.5, height_cm=None, entry=WEIGHED)
        assert store.patient(first.id).weight_kg == 79.5
        assert [e.user for e in store.audit() if e.command == "patient weigh"] == ["nurse_w"]
        assert store.verify() == []
