"""The log and its rows name each other: what ``store check`` and ``audit verify`` match.

Since schema 7 every session record, co-signature, override and registration is an audit entry
with exactly one signature or row, written in one transaction; an acknowledgement and a
discharge are given by an entry of their own. A row or an entry taken away (or put in) leaves
the other side alone, which its own chain cannot show when it was the last row.
"""

from __future__ import annotations

import json
from datetime import datetime

from ketadose.clock import instant
from ketadose.store_chain import Break
from ketadose.store_sql import Database

#: What each signature's audit entry is: the command that writes a signature of that meaning.
_SIGNED_BY = {"administered": ("session record",), "co-signed": ("override cosign",)}


def _crossings(conn: Database) -> list[Break]:
    """The audit entries without their signature or row, and signatures without their entry."""
    row = conn.execute("SELECT value FROM store_meta WHERE key = 'signed_from'").fetchone()
    first = int(row[0]) if row is not None and str(row[0]).isdigit() else 1
    entries = {
        int(key): (str(command), str(user), reason, str(inputs))
        for key, command, user, reason, inputs in conn.execute(
            'SELECT id, command, "user", override_reason, inputs_json FROM audit WHERE id >= ?',
            (first,),
        )
    }
    sessions = {int(key) for (key,) in conn.execute("SELECT id FROM sessions")}
    clinicians = {str(name) for (name,) in conn.execute("SELECT name FROM clinicians")}
    found: list[Break] = []
    signed: dict[tuple[int, str], int] = {}
    for key, audit_id, session_id, signer, meaning in conn.execute(
        "SELECT id, audit_id, session_id, signer, meaning FROM signatures ORDER BY id"
    ):
        entry = entries.get(int(audit_id))
        made_by = _SIGNED_BY.get(str(meaning))
        if entry is None or entry[1] != signer or (made_by and entry[0] not in made_by):
            found.append(
                Break(
                    "signatures",
                    key,
                    "inserted",
                    f"signatures entry {key} ({meaning} by "
                    f"{signer}) matches no audit entry of the log: inserted",
                )
            )
        elif session_id is not None and int(session_id) not in sessions:
            found.append(
                Break(
                    "sessions",
                    session_id,
                    "deleted",
                    f"sessions entry {session_id}, signed "
                    f"in audit entry {audit_id}, is gone: deleted",
                )
            )
        signed[(int(audit_id), str(meaning))] = signed.get((int(audit_id), str(meaning)), 0) + 1
    for audit_id, (command, _user, reason, inputs) in entries.items():
        wanted = {"session record": "administered", "override cosign": "co-signed"}.get(command)
        if wanted is None and reason is not None and command in ("dose", "check", "plan"):
            wanted = "prescribed"
        if wanted is not None and signed.get((audit_id, wanted), 0) != 1:
            found.append(
                Break(
                    "signatures",
                    audit_id,
                    "deleted",
                    f"audit entry {audit_id} ({command}) "
                    f"has {signed.get((audit_id, wanted), 0)} {wanted} signatures, not one: "
                    "deleted",
                )
            )
        if command == "clinician add":
            name = json.loads(inputs).get("name")
            if name not in clinicians:
                found.append(
                    Break(
                        "clinicians",
                        name,
                        "deleted",
                        f"clinician {name!r}, registered in "
                        f"audit entry {audit_id}, is gone: deleted",
                    )
                )
    return found + _registrations(conn) + _acknowledgements(conn) + _discharges(conn)


def _registrations(conn: Database) -> list[Break]:
    """Each clinician registered by an admin in an entry of its own; each pin by an admin.

    The first clinician is the store's admin, registered by themselves; every later one, and
    every pin of the override rules, by someone already registered as admin.
    """
    found: list[Break] = []
    admins: set[str] = set()
    registered: dict[str, tuple[str, str]] = {}
    for key, command, user, inputs in conn.execute(
        'SELECT id, command, "user", inputs_json FROM audit'
        " WHERE command IN ('clinician add', 'clinician policy') ORDER BY id"
    ):
        asked = json.loads(str(inputs))
        first = not registered and command == "clinician add"
        if first and (asked.get("name") != user or asked.get("role") != "admin"):
            found.append(_unregistered(key, "the first clinician is an admin by themselves"))
        elif not first and user not in admins:
            found.append(_unregistered(key, f"{user} was not a registered admin"))
        if command == "clinician add":
            registered[str(asked.get("name"))] = (str(asked.get("role")), str(user))
            if asked.get("role") == "admin":
                admins.add(str(asked.get("name")))
    for key, name, role, added_by in conn.execute(
        "SELECT id, name, role, added_by FROM clinicians ORDER BY id"
    ):
        if registered.get(str(name)) != (str(role), str(added_by)):
            found.append(
                Break(
                    "clinicians",
                    key,
                    "inserted",
                    f"clinicians entry {key} ({name}, {role}) matches no registration in the "
                    "audit log: inserted",
                )
            )
    return found


def _unregistered(key: object, why: str) -> Break:
    return Break("audit", key, "inserted", f"audit entry {key} registers or pins, but {why}")


def _acknowledgements(conn: Database) -> list[Break]:
    """Each acknowledged score, acknowledged in an audit entry by the same clinician."""
    logged = {
        (str(patient), str(user), str(reason), str(at))
        for patient, user, reason, at in conn.execute(
            'SELECT patient_id, "user", override_reason, at FROM audit'
            " WHERE command IN ('score record', 'score acknowledge')"
            " AND override_reason IS NOT NULL"
        )
    }
    return [
        Break(
            "scores",
            key,
            "edited",
            f"scores entry {key} is acknowledged by {by}, but no audit entry acknowledges it: "
            "edited",
        )
        for key, patient, by, at, text in conn.execute(
            "SELECT id, patient_id, acknowledged_by, acknowledged_at, acknowledgement FROM scores"
            " WHERE acknowledged_at IS NOT NULL"
        )
        if (str(patient), str(by), str(text), str(at)) not in logged
    ]


def _discharges(conn: Database) -> list[Break]:
    """Each discharge time, given in a ``session discharge`` entry for that session."""
    logged: dict[int, set[str]] = {}
    for (inputs,) in conn.execute(
        "SELECT inputs_json FROM audit WHERE command = 'session discharge'"
    ):
        asked = json.loads(str(inputs))
        if isinstance(asked.get("session"), int) and isinstance(asked.get("at"), str):
            logged.setdefault(asked["session"], set()).add(_instant_text(asked["at"]))
    return [
        Break(
            "sessions",
            key,
            "edited",
            f"sessions entry {key} has a discharge no audit entry gives: edited",
        )
        for key, at in conn.execute(
            "SELECT id, discharged_at FROM sessions WHERE discharged_at IS NOT NULL"
        )
        if _instant_text(str(at)) not in logged.get(int(key), set())
    ]


def _instant_text(text: str) -> str:
    """A time as the UTC instant it names (a discharge is stored and logged in its zone)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text
    return instant(moment).isoformat() if moment.tzinfo is not None else text


def _tail_gone(conn: Database, table: str, last: object) -> Break | None:
    """A table's last rows deleted: its id counter (AUTOINCREMENT) went further.

    A chain cannot show that its own tail is gone; the counter can, unless it was reset too
    (a printed chain head shows that).
    """
    if conn.sqlite:
        row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (table,)).first()
        counted = None if row is None else int(row[0])
    else:
        from ketadose import store_pg

        counted = store_pg.tail(conn.connection, table)
    if counted is None or not isinstance(last, int) or counted <= last:
        return None
    return Break(
        table, last + 1, "deleted", f"{table} entries {last + 1} to {counted} are gone: deleted"
    )
