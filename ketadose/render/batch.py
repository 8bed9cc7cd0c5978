"""Batch records as bytes: each ``batch`` output format's header and record encoder.

The encoders are module-level functions, so a :class:`ketadose.batch.BatchWork` holding one
pickles (spawned workers receive it whole).
"""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic_core import to_json

# Loaded with the JSON renderer anyway; imported here once, not in each row's writers.
from ketadose.models import Finding, Patient
from ketadose.render.json import document

if TYPE_CHECKING:
    from ketadose.batch import BatchRecord
    from ketadose.reuse import Fill

BatchFormat = Literal["jsonl", "csv"]


#: Stand-ins for a record's per-row values while its text is cut into fragments: a line
#: number and an id no batch has (a record whose text holds either is not cut).
_LINE = 918_273_645_546_372_819
_ID = "ketadose-per-row-id-7c1e5a0f"


class _Fragments:
    """A record's text cut where its per-row values go, and how each is written.

    The text is kept as it is while the process's records so kept stay within
    ``room`` bytes (a batch of plausible adults keeps ~600 records of ~11 kB a worker), else
    compressed (zlib, fastest level): records whose sessions repeat each other take about a
    seventh of their size (14.5 kB of JSON in 2 kB), so a worker's memory stays flat however
    many records it keeps; a row of a compressed record costs one decompression (~20 us).

    Args:
        parts: The text between the per-row values (one more than ``slots``).
        slots: Which value goes between each two parts: ``line``, ``id``, ``patient``, or
            the index of one of the patient's own findings.
        write: How each value is written in this format (``finding`` for the findings).
    """

    __slots__ = ("ends", "kept", "plain", "slots", "text", "write")

    #: The bytes of text this process may still keep uncompressed (see above).
    room = 8 * 1024 * 1024

    def __init__(
        self,
        parts: list[str],
        slots: list[str | int],
        write: dict[str, Callable[[object], str]],
    ) -> None:
        data = [part.encode() for part in parts]
        #: The text uncompressed; after the first call (the batch's check of the cut) only
        #: while within ``room``, else None and the text compressed.
        self.plain: bytes | None = b"".join(data)
        self.text = b""
        #: How many bytes of ``room`` this record holds (given back when it is dropped).
        self.kept = 0
        self.ends = list(itertools.accumulate(map(len, data)))
        self.slots = slots
        self.write = write

    def _keep(self, plain: bytes) -> None:
        """After the first call: keep the text as it is if within ``room``, else compressed."""
        if len(plain) <= type(self).room:
            type(self).room -= len(plain)
            self.kept = len(plain)
        else:
            self.plain = None
            self.text = zlib.compress(plain, 1)

    def __del__(self) -> None:
        # By the instance's own class: at the interpreter's exit the module's names may be gone.
        type(self).room += self.kept

    def __call__(
        self, line: int, patient_id: str, patient: Patient, own: tuple[Finding, ...]
    ) -> bytes:
        # Bytes throughout, the text's parts as views of one decompressed buffer: a record
        # is copied twice (decompressed, joined), not decoded and encoded again.
        values: dict[str, object] = {"line": line, "id": patient_id, "patient": patient}
        write = self.write
        written: dict[str | int, bytes] = {}
        plain = self.plain
        if plain is None:
            plain = zlib.decompress(self.text)
        elif not self.kept:
            self._keep(plain)
        text = memoryview(plain)
        ends = self.ends
        out: list[bytes | memoryview] = [text[: ends[0]]]
        for index, slot in enumerate(self.slots):
            value = written.get(slot)
            if value is None:
                if isinstance(slot, int):
                    value = write["finding"](own[slot]).encode()
                else:
                    value = write[slot](values[slot]).encode()
                written[slot] = value
            out.append(value)
            out.append(text[ends[index] : ends[index + 1]])
        return b"".join(out)


def _split(text: str, marks: dict[str, str | int]) -> tuple[list[str], list[str | int]] | None:
    """``text`` cut at every occurrence of the marks: the parts between, and which mark each is.

    By plain search, not a regular expression: the marks of a patient's findings differ
    from row to row, and compiling a pattern for each costs more than the search (~1 ms).
    None where two marks overlap (no cut could tell them apart).
    """
    at: list[tuple[int, str]] = []
    for mark in marks:
        start = text.find(mark)
        while start >= 0:
            at.append((start, mark))
            start = text.find(mark, start + len(mark))
    at.sort()
    parts: list[str] = []
    slots: list[str | int] = []
    end = 0
    for start, mark in at:
        if start < end:
            return None
        parts.append(text[end:start])
        slots.append(marks[mark])
        end = start + len(mark)
    parts.append(text[end:])
    return parts, slots


def _cut(
    encode: Callable[[BatchRecord], str],
    record: BatchRecord,
    own: tuple[Finding, ...],
    marks: dict[str, str],
    counts: dict[str, int],
    write: dict[str, Callable[[object], str]],
) -> Fill | None:
    """Cut ``record``'s text at its per-row values, or None where it cannot be done surely.

    The record is written with stand-ins for the line, the id and the patient; its text is
    cut at each stand-in's mark, and each must be found exactly as often as ``counts`` says
    (a mark found elsewhere in the text would put a row's value where it does not belong).
    Where the format writes findings whole (``write`` has ``finding``), the text is also cut
    at each of the patient's own findings (``own``: weight, age, BMI), so that a patient of
    the same weight with another BMI gets its own finding there. Either way no message of
    ``own`` may be left in the text outside those cuts: a message that is also written
    elsewhere (in a sentence of the plan) could not be replaced surely.
    """
    plan = record.plan
    if plan is None:
        return None
    stand_in = record.model_copy(
        update={
            "line": _LINE,
            "id": _ID,
            "plan": plan.model_copy(update={"patient_id": _ID, "patient": Patient()}),
        }
    )
    text = encode(stand_in)
    by_mark: dict[str, str | int] = {mark: slot for slot, mark in marks.items()}
    if "finding" in write:
        by_mark.update({write["finding"](finding): index for index, finding in enumerate(own)})
    found = _split(text, by_mark)
    if found is None:
        return None
    parts, slots = found
    if any(slots.count(slot) != count for slot, count in counts.items()):
        return None
    if "finding" in write and plan.sessions and any(at not in slots for at in range(len(own))):
        return None  # the record does not carry the patient's findings as given: not cut surely
    rest = "".join(parts)
    for finding in own:
        message = finding.message
        spelt = (message, _json_text(message), message.replace('"', '""'))
        if any(form in rest for form in spelt):
            return None
    return _Fragments(parts, slots, write)


def _json_text(value: object) -> str:
    """A JSON string's content, escaped as pydantic writes it (without the quotes)."""
    return to_json(value).decode()[1:-1]


def _json_patient(value: object) -> str:
    assert isinstance(value, Patient)
    return '"patient":' + value.model_dump_json()


def jsonl(record: BatchRecord) -> str:
    """One batch record as a JSON Lines line (``schema_version`` first)."""
    return document(record, indent=None)


def _json_finding(value: object) -> str:
    assert isinstance(value, Finding)
    return value.model_dump_json()


def jsonl_fragments(record: BatchRecord, own: tuple[Finding, ...] = ()) -> Fill | None:
    """``record``'s JSON Lines text for any row with the same plan (see :class:`Encoder`)."""
    marks = {
        "line": str(_LINE),
        "id": _ID,
        "patient": '"patient":' + Patient().model_dump_json(),
    }
    counts = {"line": 1, "id": 2, "patient": 1}
    write: dict[str, Callable[[object], str]] = {
        "line": str,
        "id": _json_text,
        "patient": _json_patient,
        "finding": _json_finding,
    }
    return _cut(jsonl, record, own, marks, counts, write)


def _csv_cell(value: object) -> str:
    """One CSV cell as :func:`ketadose.render.csv.write` writes it within a row."""
    from ketadose.render import csv

    return csv.write(("cell", "next"), [{"cell": value, "next": None}], header=False)[:-3]


def csv_fragments(record: BatchRecord, own: tuple[Finding, ...] = ()) -> Fill | None:
    """``record``'s CSV rows for any row with the same plan (see :class:`Encoder`)."""
    from ketadose.render import csv

    sessions = 0 if record.plan is None else len(record.plan.sessions)
    marks = {"line": str(_LINE), "id": _ID}
    counts = {"line": sessions, "id": sessions, "patient": 0}
    return _cut(csv.batch, record, own, marks, counts, {"line": _csv_cell, "id": _csv_cell})


@dataclass(frozen=True)
class Encoder:
    """A batch format's record encoder, which can also cut a record into fragments.

    Calling it writes one record. :meth:`fragments` gives a record's text as a function of
    the row's line, patient id, patient and own findings, for the other rows whose plan is
    the same (the batch reuses what rows share): only those values are written per row. Picklable
    (a module-level class holding a format name), so spawned workers receive it.

    Attributes:
        name: ``jsonl`` or ``csv``.
    """

    name: BatchFormat

    def __call__(self, record: BatchRecord) -> str:
        """One record's text."""
        if self.name == "csv":
            from ketadose.render import csv

            return csv.batch(record)
        return jsonl(record)

    def fragments(self, record: BatchRecord, own: tuple[Finding, ...] = ()) -> Fill | None:
        """``record``'s text with its line, id, patient and own findings to be filled in.

        Args:
            record: A record with a plan.
            own: The patient's own findings (weight, age, BMI:
                :func:`ketadose.limits.check_patient`), as in every session of the plan.

        Returns:
            A function of (line, patient id, patient, own findings) giving the text of the
            record that differs from ``record`` only in those (own findings differing in
            message and value only); None where the text cannot be cut surely (an error
            record, a stand-in found where it does not belong, a message of ``own`` found
            outside a finding, a finding of ``own`` that a plan's sessions do not carry).
        """
        return (csv_fragments if self.name == "csv" else jsonl_fragments)(record, own)


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

        return csv.write(csv.BATCH_COLUMNS, []).encode(), Encoder("csv")
    return b"", Encoder("jsonl")
