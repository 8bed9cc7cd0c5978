"""Batch records as bytes: each ``batch`` output format's header and record encoder.

The encoders are module-level functions, so a :class:`ketadose.batch.BatchWork` holding one
pickles (spawned workers receive it whole).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

from ketadose.render.json import document

if TYPE_CHECKING:
    from ketadose.batch import BatchRecord

BatchFormat = Literal["jsonl", "csv"]


def jsonl(record: BatchRecord) -> str:
    """One batch record as a JSON Lines line (``schema_version`` first)."""
    return document(record, indent=None)


def encoding(name: BatchFormat) -> tuple[bytes, Callable[[BatchRecord], str]]:
    """A batch format's header (written once, first) and its record encoder.

    Args:
        name: ``jsonl`` (one plan document per row, no header) or ``csv`` (a header, then
            one row per session).

    Returns:
        The header, and the encoder of one record.
    """
    if name == "csv":
        from ketadose.render import csv

        return csv.write(csv.BATCH_COLUMNS, []).encode(), csv.batch
    return b"", jsonl
