"""The hash chain that makes the store's history tamper-evident.

Every record row carries ``prev_hash``, the hash of the row before it in its table (by the
table's order column), and ``hash``, the SHA-256 of ``prev_hash`` and the row's canonical JSON
(:func:`canonical`: sorted keys, no spaces, numbers as the column's type reads them back). A
session's hash also covers its adverse events, which are written with it.

Editing a row changes its content, so its hash no longer matches; deleting one leaves the next
row pointing at a hash that is gone; a row inserted into the middle, or rows put in another
order, leave links that point the wrong way; :func:`verify` tells which, naming the first row
where the chain breaks. A chain's head (its last hash) printed on a sheet or in ``audit``
pins the history up to that point: anyone rewriting it must change the head.

The chain detects tampering by someone who does not recompute it. Someone who can write the
database and recompute every hash after their edit is stopped by other means: on PostgreSQL
the clinicians' role may only insert (GRANTs) and the triggers that refuse a broken link or an
update belong to another role; a printed head still shows the rewrite.
"""

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

#: The ``prev_hash`` of a chain's first row.
GENESIS = "0" * 64

#: An audit entry dated this long before the one written before it is out of order: workstation
#: clocks may differ by seconds, never by this much (a back-dated insert).
BACKDATE_TOLERANCE_S = 300.0


def canonical(row: Mapping[str, object]) -> str:
    """A row's content as canonical JSON: keys sorted, no whitespace.

    ketadose writes only finite numbers and text; what else a row edited by hand may hold (an
    infinity, a blob) is still hashed, never refused here, so that its hash simply differs.
    """
    return json.dumps(
        row,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=lambda value: f"<{type(value).__name__} {value!r}>",
    )


def link(prev_hash: str, row: Mapping[str, object]) -> str:
    """The hash of a row after ``prev_hash``: SHA-256 of the previous hash, a newline, its JSON."""
    return hashlib.sha256(f"{prev_hash}\n{canonical(row)}".encode()).hexdigest()


@dataclass(frozen=True)
class Break:
    """Where a table's chain breaks first.

    Attributes:
        table: The table.
        key: The order-column value of the row named (the entry id).
        kind: ``edited``, ``deleted``, ``inserted``, ``reordered`` or ``out of order``.
        detail: One line for the user.
    """

    table: str
    key: object
    kind: str
    detail: str


@dataclass(frozen=True)
class Link:
    """One row as the verifier reads it: its key, stored links, recomputed hash and time."""

    key: object
    prev_hash: object
    hash: object
    content_hash: str
    at: str | None = None


def verify(table: str, links: Iterable[Link], *, moments: bool = False) -> Break | None:
    """The first break in one table's chain, or None if it is intact.

    Args:
        table: The table's name (for the message).
        links: Its rows in chain order.
        moments: Also check that each row's ``at`` is not dated well before the row before it
            (:data:`BACKDATE_TOLERANCE_S`; the audit log, whose times are when it was written).

    Returns:
        The first :class:`Break`, classified by where the broken link points.
    """
    rows = list(links)
    position = {row.hash: index for index, row in enumerate(rows) if isinstance(row.hash, str)}
    previous = GENESIS
    last_at: datetime | None = None
    for index, row in enumerate(rows):
        following = rows[index + 1] if index + 1 < len(rows) else None
        if not isinstance(row.hash, str):
            return _break(table, row.key, "inserted", "has no hash: not written by ketadose")
        if row.prev_hash != previous:
            pointed = position.get(row.prev_hash) if isinstance(row.prev_hash, str) else None
            if pointed is not None and pointed > index:
                return _break(table, row.key, "reordered", "follows an entry written after it")
            if following is not None and following.prev_hash == previous:
                return _break(table, row.key, "inserted", "follows no entry of the chain")
            if pointed is not None or row.prev_hash == GENESIS:
                before = rows[index - 1].key if index else row.key
                return _break(table, before, "inserted", f"is not the entry {row.key} follows")
            return _break(
                table,
                row.key,
                "deleted",
                "follows an entry that is gone (deleted, or the one before it rewritten)",
            )
        if row.hash != row.content_hash:
            return _break(table, row.key, "edited", "does not match its hash")
        if moments and row.at is not None:
            at = _moment(row.at)
            if (
                at is not None
                and last_at is not None
                and (last_at - at).total_seconds() > BACKDATE_TOLERANCE_S
            ):
                return _break(
                    table,
                    row.key,
                    "out of order",
                    f"is dated {row.at}, before the entry written ahead of it (back-dated)",
                )
            if at is not None:
                last_at = at if last_at is None else max(last_at, at)
        previous = row.hash
    return None


def _break(table: str, key: object, kind: str, why: str) -> Break:
    return Break(table, key, kind, f"{table} entry {key} {why}: {kind}")


def _moment(text: str) -> datetime | None:
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        return None
    return at if at.tzinfo is not None else None
