"""The hash chain: every kind of tampering it must catch, on generated chains and on a store."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from ketadose.cli import app
from ketadose.errors import StoreError
from ketadose.store import CHAIN_TRIGGERS, TRIGGERS, Store
from ketadose.store_chain import BACKDATE_TOLERANCE_S, GENESIS, Link, link, verify
from tests.stores import (
    ON_POSTGRESQL,
    StoreTarget,
    as_schema_5,
    clinician_connection,
    disable_trigger,
    drop_trigger,
    integrity_error,
    privilege_error,
    raw_rows,
    raw_sql,
    tamper,
)
from tests.test_store import T0, entry, patient, raw, session_for

# --- the verifier, over generated chains -----------------------------------------------------


def chain(contents: list[dict[str, object]]) -> list[Link]:
    """An intact chain of these rows, keyed 1..n."""
    links, previous = [], GENESIS
    for key, content in enumerate(contents, start=1):
        digest = link(previous, content)
        links.append(Link(key, previous, digest, digest))
        previous = digest
    return links


contents = st.lists(
    st.fixed_dictionaries({"n": st.integers(), "text": st.text(max_size=8)}),
    min_size=3,
    max_size=12,
    unique_by=lambda row: (row["n"], row["text"]),
)


@given(contents)
def test_an_intact_chain_verifies(rows: list[dict[str, object]]) -> None:
    assert verify("audit", chain(rows)) is None


@given(contents, st.data())
def test_an_edited_row_is_named(rows: list[dict[str, object]], data: st.DataObject) -> None:
    links = chain(rows)
    k = data.draw(st.integers(0, len(links) - 1))
    edited = {**rows[k], "n": int(str(rows[k]["n"])) + 1}
    links[k] = replace(links[k], content_hash=link(str(links[k].prev_hash), edited))
    found = verify("audit", links)
    assert found is not None and (found.kind, found.key) == ("edited", k + 1)


@given(contents, st.data())
def test_a_deleted_row_is_named_by_the_row_after_it(
    rows: list[dict[str, object]], data: st.DataObject
) -> None:
    links = chain(rows)
    k = data.draw(st.integers(0, len(links) - 2))  # the last row's loss is the counter's job
    del links[k]
    found = verify("audit", links)
    assert found is not None and (found.kind, found.key) == ("deleted", k + 2)


@given(contents, st.data())
def test_two_rows_swapped_are_reordered(rows: list[dict[str, object]], data: st.DataObject) -> None:
    links = chain(rows)
    i = data.draw(st.integers(0, len(links) - 2))
    j = data.draw(st.integers(i + 1, len(links) - 1))
    links[i], links[j] = links[j], links[i]
    found = verify("audit", links)
    assert found is not None and found.kind == "reordered" and found.key == j + 1


@given(contents, st.data(), st.booleans())
def test_a_forged_row_inserted_is_named(
    rows: list[dict[str, object]], data: st.DataObject, linked: bool
) -> None:
    # A forger who links the new row properly to the one before still breaks the next link.
    links = chain(rows)
    k = data.draw(st.integers(0, len(links) - 1))
    previous = str(links[k - 1].hash) if k else GENESIS
    forged_prev = previous if linked else "f" * 64
    digest = link(forged_prev, {"n": "forged"})
    links.insert(k, Link("forged", forged_prev, digest, digest))
    found = verify("audit", links)
    assert found is not None and (found.kind, found.key) == ("inserted", "forged")


def test_a_row_without_a_hash_is_not_ketadoses() -> None:
    links = chain([{"n": 1}, {"n": 2}])
    links.append(Link(3, links[-1].hash, None, "x"))
    found = verify("audit", links)
    assert found is not None and (found.kind, found.key) == ("inserted", 3)


def test_a_back_dated_entry_is_out_of_order() -> None:
    links = [replace(row, at=f"2026-12-01T09:0{n}:00+00:00") for n, row in enumerate(chain(
        [{"n": 1}, {"n": 2}, {"n": 3}]
    ))]  # fmt: skip
    assert verify("audit", links, moments=True) is None
    early = T0 - timedelta(seconds=BACKDATE_TOLERANCE_S + 1)
    links[2] = replace(links[2], at=early.isoformat())
    found = verify("audit", links, moments=True)
    assert found is not None and (found.kind, found.key) == ("out of order", 3)
    assert "back-dated" in found.detail
    assert verify("audit", links) is None  # sessions are dated when given, not when written


# --- on a store, on either engine ----------------------------------------------------------------
#
# Tampering as whoever holds the store can: on SQLite the file's writer drops the triggers
# (tests.stores.tamper); on PostgreSQL the server's owner, the superuser, edits with its
# triggers off for its own session (session_replication_role = replica). Either way the chain
# must name the same first break.


cli = CliRunner()


@pytest.fixture
def store(store_target: StoreTarget) -> Iterator[Store]:
    with Store.open(store_target.url) as opened:
        opened.add_patient(patient(), at=T0)
        for number in range(1, 5):
            opened.record_session_with_audit(session_for(number), entry())
        yield opened


def untouched_triggers(target: StoreTarget) -> set[str]:
    """What :func:`tamper` leaves of the triggers as the store reports them missing: on SQLite
    all of them are dropped; on PostgreSQL none (replica mode changes no schema)."""
    return set(TRIGGERS) if target.sqlite else set()


def test_an_untouched_store_verifies_and_has_every_trigger(store: Store) -> None:
    assert store.verify() == []
    assert store.missing_triggers() == []
    head = store.chain_head()
    assert head is not None and head[0] == 4 and len(head[1]) == 64


@pytest.mark.parametrize(
    ("statements", "table", "kind", "key"),
    [
        (["UPDATE sessions SET dose_mg = 400 WHERE id = 2"], "sessions", "edited", 2),
        (["UPDATE session_adverse_events SET grade = 'mild' WHERE session_id = 3"],
         "sessions", "edited", 3),
        (["UPDATE audit SET override_reason = 'none' WHERE id = 1"], "audit", "edited", 1),
        (['UPDATE audit SET "user" = \'someone else\' WHERE id = 2'], "audit", "edited", 2),
        (["DELETE FROM sessions WHERE id = 2"], "sessions", "deleted", 3),
        (["DELETE FROM audit WHERE id = 3"], "audit", "deleted", 4),
        (["DELETE FROM audit WHERE id = 4"], "audit", "deleted", 4),  # the tail: the counter
        (["UPDATE audit SET id = 10 WHERE id = 2", "UPDATE audit SET id = 2 WHERE id = 3",
          "UPDATE audit SET id = 3 WHERE id = 10"], "audit", "reordered", 2),
        (['INSERT INTO audit (id, at, "user", command, inputs_json, findings_json, status,'
          ' library_sha256, prev_hash, hash) SELECT 5, at, "user", command, inputs_json,'
          " findings_json, status, library_sha256, hash, NULL FROM audit WHERE id = 4"],
         "audit", "inserted", 5),
        (["UPDATE audit SET at = '2020-01-01T00:00:00+00:00' WHERE id = 4"], "audit", "edited", 4),
    ],
    ids=["session-dose", "session-event", "audit-reason", "audit-user", "session-deleted",
         "audit-deleted", "audit-tail-deleted", "audit-reordered", "audit-inserted",
         "audit-back-dated-by-edit"],
)  # fmt: skip
def test_each_kind_of_tampering_is_found(
    store: Store,
    store_target: StoreTarget,
    statements: list[str],
    table: str,
    kind: str,
    key: int,
) -> None:
    tamper(store_target, *statements)
    found = store.verify()[0]  # the first break (what it leaves unmatched follows)
    assert (found.table, found.kind, found.key) == (table, kind, key)
    assert "\n" not in found.detail
    assert set(store.missing_triggers()) == untouched_triggers(store_target)
    # The command line names the same first break (KETADOSE_STORE is this store).
    verified = cli.invoke(app, ["audit", "verify", "--json"])
    assert verified.exit_code == 6
    assert json.loads(verified.stdout)["problems"][0] == found.detail
    checked = cli.invoke(app, ["store", "check"])
    assert checked.exit_code == 6
    assert f"ketadose: {store_target.url}: {found.detail}" in checked.stderr.splitlines()


def test_a_back_dated_insert_at_the_head_with_a_good_link_is_out_of_order(
    store: Store, store_target: StoreTarget
) -> None:
    # A forger who computes the link right (the hash function is public) still leaves a time.
    from ketadose.store_schema import _content

    head = store.chain_head()
    assert head is not None
    (row,) = raw_rows(store_target, "SELECT * FROM audit WHERE id = 4")
    row.update(id=5, at="2020-01-01T00:00:00+00:00", prev_hash=head[1])
    row["hash"] = link(head[1], _content("audit", row, None))
    if not store_target.sqlite:
        del row["id"]  # the server gives ids itself: one of the forger's own is refused
        # and who is connected is who the row says acted (the superuser, forging here).
        row["user"] = raw_rows(store_target, "SELECT session_user AS who")[0]["who"]
        row["hash"] = link(head[1], _content("audit", row, None))
    columns = ", ".join(f'"{name}"' for name in row)
    raw_sql(
        store_target,
        f"INSERT INTO audit ({columns}) VALUES ({', '.join('?' * len(row))})",
        tuple(row.values()),
    )
    found = store.verify()[0]  # the first break (what it leaves unmatched follows)
    assert (found.kind, found.key) == ("out of order", 5)
    assert store.missing_triggers() == []  # the triggers let it in: only the chain tells


@pytest.mark.parametrize(
    ("statement", "refusal"),
    [
        ("UPDATE sessions SET dose_mg = 400", "only its discharge may be added"),
        ("UPDATE sessions SET discharged_at = NULL", "only its discharge may be added"),
        ("DELETE FROM sessions", "DELETE refused"),
        ('INSERT INTO audit (at, "user", command, inputs_json, findings_json, status,'
         " library_sha256) VALUES ('x', 'x', 'x', '{}', '[]', 'ok', 'x')", "only grows at its head"),
        ('INSERT INTO audit (id, at, "user", command, inputs_json, findings_json, status,'
         ' library_sha256, prev_hash, hash) SELECT 3, at, "user", command, inputs_json,'
         " findings_json, status, library_sha256, (SELECT hash FROM audit WHERE id = 4), hash"
         " FROM audit WHERE id = 4", "only grows at its head"),
    ],
    ids=["session-update", "session-undischarge", "session-delete", "audit-no-link",
         "audit-back-dated-id"],
)  # fmt: skip
def test_the_triggers_refuse_what_the_chain_would_catch(
    store: Store, store_target: StoreTarget, statement: str, refusal: str
) -> None:
    # Even the server's superuser (PostgreSQL) meets the triggers, unless it turns them off.
    with pytest.raises(integrity_error(store_target), match=refusal):
        raw_sql(store_target, statement)
    assert store.verify() == []


def test_a_discharge_added_by_sql_keeps_the_chain_but_not_the_log(
    store: Store, store_target: StoreTarget
) -> None:
    # The trigger lets a discharge in once (discharged_at is outside the hash); the log does
    # not give it, and that is what is found.
    raw_sql(store_target, "UPDATE sessions SET discharged_at = '2024-03-04T12:00:00+01:00'")
    assert all(chain.broken is None for chain in store.chains())
    found = store.verify()
    assert [b.key for b in found] == [1, 2, 3, 4]
    assert all("has a discharge no audit entry gives" in b.detail for b in found)


def test_a_dropped_trigger_is_reported(store: Store, store_target: StoreTarget) -> None:
    drop_trigger(store_target, "sessions_no_delete")
    assert store.missing_triggers() == ["sessions_no_delete"]
    assert "sessions_no_delete" in CHAIN_TRIGGERS
    assert store.verify() == []  # nothing was changed with it gone


def test_a_schema_5_store_is_sealed_as_it_was(tmp_path: Path) -> None:
    # SQLite only: a file of an older schema (PostgreSQL stores begin at version 7).
    path = tmp_path / "old.db"
    with Store.open(path) as old:
        old.add_patient(patient(), at=T0)
        for number in range(1, 4):
            old.record_session_with_audit(session_for(number), entry())
        before = (old.sessions("p-001"), [replace(e, hash=None) for e in old.audit()])
    with raw(path) as conn:
        as_schema_5(conn)
    with Store.open(path) as migrated:
        assert "3 audit entries and 3 session(s) sealed" in " ".join(migrated.notices)
        assert migrated.verify() == []
        assert migrated.missing_triggers() == []
        assert (migrated.sessions("p-001"), [replace(e, hash=None) for e in migrated.audit()]) == (
            before
        )
        migrated.record_session_with_audit(session_for(4), entry())
        assert migrated.verify() == []


# --- reading proves a row unedited -------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE sessions SET dose_mg = 400 WHERE id = 2",  # a value ketadose could have written
        "UPDATE sessions SET notes = 'session 9' WHERE id = 1",
        "UPDATE session_adverse_events SET grade = 'mild' WHERE session_id = 3",
        "UPDATE sessions SET hash = NULL WHERE id = 4",
    ],
)
def test_a_session_edited_to_plausible_values_is_refused_when_read(
    store: Store, store_target: StoreTarget, statement: str
) -> None:
    tamper(store_target, statement)
    with pytest.raises(StoreError, match=r"sessions row \d: hash .*changed outside ketadose"):
        store.sessions("p-001")


def test_an_audit_entry_edited_is_refused_when_read(
    store: Store, store_target: StoreTarget
) -> None:
    tamper(store_target, "UPDATE audit SET override_reason = 'approved' WHERE id = 2")
    with pytest.raises(StoreError, match=r"audit row 2: hash does not match"):
        store.audit()


#: Values no ketadose writes, as each engine can hold them in a REAL column: SQLite's columns
#: take a blob or text too; PostgreSQL's DOUBLE PRECISION only numbers (NaN, infinity, the largest).
ODD_VALUES = {
    "sqlite": ("x'00ff'", "9e999", "'forty'"),
    "postgresql": ("'NaN'", "'Infinity'", "1e308"),
}


@pytest.mark.parametrize("which", [0, 1, 2], ids=["blob-or-nan", "infinity", "text-or-huge"])
def test_any_value_edited_in_is_verified_not_crashed_on(
    store: Store, store_target: StoreTarget, which: int
) -> None:
    value = ODD_VALUES[store_target.engine][which]
    tamper(store_target, f"UPDATE sessions SET dose_mg = {value} WHERE id = 3")
    found = store.verify()[0]  # the first break (what it leaves unmatched follows)
    assert (found.table, found.kind, found.key) == ("sessions", "edited", 3)
    with pytest.raises(StoreError, match=r"sessions row 3"):
        store.sessions("p-001")


def test_a_trigger_made_again_with_other_sql_is_altered(
    store: Store, store_target: StoreTarget
) -> None:
    drop_trigger(store_target, "sessions_no_delete")
    if store_target.sqlite:
        made = (
            "CREATE TRIGGER sessions_no_delete BEFORE DELETE ON patients WHEN 0 BEGIN SELECT 1; END"
        )
    else:  # the store's own refusal function and message, on its table, never firing
        made = (
            "CREATE TRIGGER sessions_no_delete BEFORE DELETE ON sessions FOR EACH ROW WHEN (false)"
            " EXECUTE FUNCTION ketadose_refuse('a recorded session is kept: DELETE refused')"
        )
    raw_sql(store_target, made)
    assert store.missing_triggers() == ["sessions_no_delete (altered)"]


@ON_POSTGRESQL
def test_a_trigger_of_the_name_on_another_table_leaves_it_missing(
    store: Store, store_target: StoreTarget
) -> None:
    # PostgreSQL names a trigger within its table: one on patients is not the sessions' one.
    drop_trigger(store_target, "sessions_no_delete")
    raw_sql(
        store_target,
        "CREATE TRIGGER sessions_no_delete BEFORE DELETE ON patients FOR EACH ROW"
        " EXECUTE FUNCTION ketadose_refuse('a recorded session is kept: DELETE refused')",
    )
    assert store.missing_triggers() == ["sessions_no_delete"]


def test_a_discharge_before_the_start_is_refused(store: Store, store_target: StoreTarget) -> None:
    with pytest.raises(integrity_error(store_target), match="discharge"):
        raw_sql(store_target, "UPDATE sessions SET discharged_at = '2024-03-04T08:00:00+01:00'")
    assert store.verify() == []


def test_a_link_to_a_store_in_an_open_directory_is_refused(tmp_path: Path) -> None:
    # SQLite only: the modes of a file and its directories.
    from ketadose.store import exposure

    public = tmp_path / "public"
    private = tmp_path / "private"
    public.mkdir(mode=0o700)
    private.mkdir(mode=0o700)
    with Store.open(public / "k.db") as made:
        made.add_patient(patient(), at=T0)
    public.chmod(0o777)
    (private / "k.db").symlink_to(public / "k.db")
    problem = exposure(private / "k.db")
    assert problem is not None and f"directory {public} is readable and writable" in problem
    with pytest.raises(StoreError, match="other users"):
        Store.open(private / "k.db")


# --- every input of a dose decision is chained (a hostile review found them outside) ---------


@pytest.mark.parametrize(
    ("statement", "table"),
    [
        ("UPDATE measurements SET weight_kg = 160", "measurements"),
        ("UPDATE patients SET baseline = 60", "patients"),
        ("UPDATE scores SET total = 5, items_json = NULL", "scores"),
        ("UPDATE session_readings SET systolic = 130, diastolic = 85", "session_readings"),
    ],
)
def test_the_patients_records_are_append_only_and_chained(
    store_target: StoreTarget, statement: str, table: str
) -> None:
    from ketadose.records import Reading
    from ketadose.scores import ScoreRecord

    with Store.open(store_target.url) as made:
        made.add_patient(patient(), at=T0)
        made.record_session(replace(session_for(1), readings=(
            Reading(at=T0 + timedelta(minutes=5), systolic=240.0, diastolic=140.0,
                    answer="stop", findings=("bp-high",)),
        )))  # fmt: skip
        made.record_score(
            ScoreRecord(patient_id="p-001", at=T0, instrument="madrs", items=None, total=30)
        )
        with pytest.raises(integrity_error(store_target)):
            raw_sql(store_target, statement)  # the triggers refuse it
        tamper(store_target, statement)
        (found,) = made.verify()
        assert (found.table, found.kind) == (table, "edited")
        reader = {"patients": made.patient, "measurements": made.patient,
                  "scores": made.scores, "session_readings": made.sessions}[table]  # fmt: skip
        with pytest.raises(StoreError, match=f"{table} row .*hash does not match"):
            reader("p-001")


def test_a_forged_score_without_its_link_is_refused(
    store: Store, store_target: StoreTarget
) -> None:
    with pytest.raises(integrity_error(store_target), match="head"):
        raw_sql(
            store_target,
            "INSERT INTO scores (patient_id, at, instrument, total)"
            " VALUES ('p-001', '2024-03-04T09:30:00+01:00', 'madrs', 5)",
        )
    assert store.scores("p-001") == []


# --- PostgreSQL: the server's roles and trigger states ----------------------------------------
#
# A clinician logs in as a role of their own, a member of the clinicians' group role: the
# server itself refuses them what would rewrite the history, before any trigger runs.


@ON_POSTGRESQL
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit SET status = 'ok'",
        "DELETE FROM audit",
        "TRUNCATE audit",
        "UPDATE sessions SET dose_mg = 400",
        "DELETE FROM sessions",
        "TRUNCATE sessions CASCADE",
        "DROP TRIGGER audit_no_update ON audit",
        "DROP TRIGGER sessions_no_delete ON sessions",
        "ALTER TABLE audit DISABLE TRIGGER audit_no_update",
        "ALTER TABLE sessions DISABLE TRIGGER ALL",
        "ALTER TRIGGER sessions_chain ON sessions RENAME TO gone",
    ],
)
def test_a_clinician_may_not_change_the_history_nor_its_triggers(
    store: Store, store_target: StoreTarget, statement: str
) -> None:
    before = (store.sessions("p-001"), store.audit())
    with clinician_connection(store_target, "nurse_a") as conn:
        assert conn.execute("SELECT session_user").fetchone() == ("nurse_a",)
        with pytest.raises(privilege_error(), match="permission denied|must be owner"):
            conn.execute(statement)
    assert (store.sessions("p-001"), store.audit()) == before
    assert store.missing_triggers() == []
    assert store.verify() == []


@ON_POSTGRESQL
def test_a_clinician_may_add_records_and_a_discharge(
    store: Store, store_target: StoreTarget
) -> None:
    # What the role is granted, so that the refusals above are the privileges' own.
    with clinician_connection(store_target, "nurse_a") as conn:
        assert conn.execute("SELECT count(*) FROM audit").fetchone() == (4,)
        conn.execute("UPDATE sessions SET discharged_at = '2024-03-04T12:00:00+01:00' WHERE id = 1")
    assert store.sessions("p-001")[0].discharged_at is not None


@ON_POSTGRESQL
def test_a_disabled_trigger_is_reported_and_what_it_let_in_is_found(
    store: Store, store_target: StoreTarget
) -> None:
    disable_trigger(store_target, "sessions_discharge_only")
    assert store.missing_triggers() == ["sessions_discharge_only (disabled)"]
    raw_sql(store_target, "UPDATE sessions SET dose_mg = 400 WHERE id = 2")  # nothing refuses
    found = store.verify()[0]
    assert (found.table, found.kind, found.key) == ("sessions", "edited", 2)


@ON_POSTGRESQL
def test_a_trigger_enabled_only_for_replicas_is_disabled(
    store: Store, store_target: StoreTarget
) -> None:
    raw_sql(store_target, "ALTER TABLE audit ENABLE REPLICA TRIGGER audit_no_delete")
    assert store.missing_triggers() == ["audit_no_delete (disabled)"]


@ON_POSTGRESQL
def test_a_truncate_is_refused_even_to_the_superuser(
    store: Store, store_target: StoreTarget
) -> None:
    with pytest.raises(integrity_error(store_target), match="TRUNCATE refused"):
        raw_sql(store_target, "TRUNCATE audit CASCADE")
    assert len(store.audit()) == 4


# What the server lets a clinician's own SQL do that the store's code never would: the
# store_pg schema ties neither a signature's signer nor an audit entry's user to the session
# user, and keeps a recorded session's adverse events open to INSERT. Each forgery is found
# (the log and its rows name each other, a session's events are in its hash), not refused.


def _forge(conn: Any, table: str, values: dict[str, Any]) -> None:
    """Insert a row linked at its chain's head, as a forger who knows the hash function."""
    from ketadose.store_schema import _content

    found = conn.execute(f"SELECT hash FROM {table} ORDER BY id DESC LIMIT 1").fetchone()
    head = GENESIS if found is None else found[0]
    digest = link(head, _content(table, values, None))
    names = ", ".join(f'"{name}"' for name in (*values, "prev_hash", "hash"))
    places = ", ".join(["%s"] * (len(values) + 2))
    conn.execute(
        f"INSERT INTO {table} ({names}) VALUES ({places})", (*values.values(), head, digest)
    )


def _cosign_as_dr_b(conn: Any) -> None:
    _forge(conn, "signatures", {"audit_id": 4, "session_id": 4, "signer": "dr_b",
                                "role": "prescriber", "meaning": "co-signed",
                                "at": "2024-03-04T10:00:00+01:00"})  # fmt: skip


def _log_as_dr_b(conn: Any, command: str = "clinician add") -> None:
    _forge(conn, "audit", {"at": "2024-03-04T10:00:00+01:00", "user": "dr_b",
                           "command": command, "inputs_json": "{}",
                           "findings_json": "[]", "status": "ok",
                           "library_sha256": "0" * 64})  # fmt: skip


def _dose_logged_as_dr_b(conn: Any) -> None:
    _log_as_dr_b(conn, "dose")


def _weigh_without_an_entry(conn: Any) -> None:
    # A weight decides every later dose: a clinician's own, well linked, with no audit entry.
    _forge(conn, "measurements", {"patient_id": "p-001", "at": "2024-03-05T09:00:00+01:00",
                                  "weight_kg": 120.0})  # fmt: skip


def _read_vitals_without_an_entry(conn: Any) -> None:
    _forge(conn, "session_readings", {"session_id": 4, "at": "2024-03-04T10:00:00+01:00",
                                      "systolic": 120.0, "diastolic": 80.0, "answer": "continue",
                                      "findings_json": "[]"})  # fmt: skip


def _add_an_event(conn: Any) -> None:
    conn.execute(
        "INSERT INTO session_adverse_events (session_id, position, event, grade)"
        " VALUES (2, 99, 'nausea', 'mild')"
    )


@ON_POSTGRESQL
@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(_cosign_as_dr_b, id="signature-as-another"),
        pytest.param(_log_as_dr_b, id="registration-as-another"),
        pytest.param(_add_an_event, id="event-added-to-a-session"),
        pytest.param(_weigh_without_an_entry, id="weight-without-its-entry"),
        pytest.param(_read_vitals_without_an_entry, id="reading-without-its-entry"),
        # An entry that needs no row of its own, well linked: the chain alone could not tell.
        pytest.param(_dose_logged_as_dr_b, id="dose-entry-as-another"),
    ],
)
def test_what_a_clinician_forges_by_sql_is_refused(
    store: Store, store_target: StoreTarget, forge: Any
) -> None:
    with (
        clinician_connection(store_target, "nurse_a") as conn,
        pytest.raises((integrity_error(store_target), privilege_error())),
    ):
        forge(conn)
    assert store.verify() == []
