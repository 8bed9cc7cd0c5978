"""What the rows of a batch share: a bounded memo of records, and the key it keeps them by.

In a real batch most rows repeat a protocol and a weight. A worker plans, checks and encodes
each distinct input once (:class:`Reuse`) and writes a repeat from the kept record's text,
cut where the per-row values go (:class:`Splitting`, ``ketadose.render.batch.Encoder``): the
line, the id, the patient shown and the words of the patient's own findings. What a record
depends on is its key (:func:`reuse_key`); the output is byte for byte that of planning
every row.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import fields
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from ketadose.gate import dosing_input
from ketadose.models import Finding, Patient
from ketadose.planning import PlanRequest
from ketadose.protocols import ProtocolEntry

if TYPE_CHECKING:
    from ketadose.batch import BatchRecord, BatchStatus

#: A record's text for another row with the same plan, in UTF-8: (line, patient id, patient,
#: the patient's own findings) -> bytes.
Fill = Callable[[int, str, Patient, tuple[Finding, ...]], bytes]


@runtime_checkable
class Splitting(Protocol):
    """An encoder that can cut a record's text where its per-row values go.

    ``fragments(record, own)`` gives a function of (line, patient id, patient, own findings)
    that writes the text (UTF-8) of the record differing from ``record`` only in those (the own
    findings in their message and value only), or None where the text cannot be cut surely
    (``ketadose.render.batch.Encoder``).
    """

    def fragments(self, record: BatchRecord, own: tuple[Finding, ...]) -> Fill | None:
        """The record's text as a function of its per-row values, or None."""


#: Distinct records a worker keeps, least recently used out first: more than the distinct
#: inputs of a clinic's batch (10,000 plausible adults have 1,209: a weight and a kind of BMI
#: finding), few enough that memory stays flat (compressed, ~3 kB each: 100,000 rows peak at
#: 1.01x 10,000). With 1,024, such a batch planned 1,696 rows, evicting what came again.
REUSE = 2048


class Reuse:
    """What rows share: each distinct input planned, checked and encoded once per worker.

    A bounded, least-recently-used memo of records by what they depend on. A row's plan
    depends on the patient through its dosing input (the weight, and height and sex where
    the weight policy uses them: :func:`ketadose.gate.dosing_input`) and through the
    patient's own findings (weight, age and BMI plausibility), which every session carries,
    and on the rest of the row's request (start, calendar, options: today the batch's); the
    row's series is checked against its own sessions only, which the same plan gives. The key
    holds all of it (:func:`reuse_key`).
    Of the own findings, the plan reads only what :func:`shape` keeps (the severity decides
    each status; the code is in the CSV); their message and value (a BMI finding states the
    BMI, so the height) are only written, in each session. So rows with the same protocol,
    dosing input and shape of own findings have the same record but for the line, the id,
    the patient and the own findings shown, which are written per row. Pickled empty: each
    worker fills its own.

    Args:
        size: The most records kept (0 keeps none).
    """

    def __init__(self, size: int = REUSE) -> None:
        self.size = size
        self.memo: OrderedDict[tuple[object, ...], tuple[BatchStatus, Fill]] = OrderedDict()
        #: The hashes of keys met once (the 2 * size latest). While kept records are used
        #: at least half as often as records are cut (after a first size / 4 cuts, while
        #: a batch's first rows are all new), a record is cut and kept when first met; else
        #: only when its key comes again, so a batch of one-off inputs costs little cutting
        #: and evicts nothing. A colliding hash only keeps a record early.
        self.once: OrderedDict[int, None] = OrderedDict()
        self.hits = 0
        self.cuts = 0

    def __reduce__(self) -> tuple[type[Reuse], tuple[int]]:
        return Reuse, (self.size,)

    def get(self, key: tuple[object, ...]) -> tuple[BatchStatus, Fill] | None:
        """The status and text of a record with this key, if kept (now the most recent)."""
        found = self.memo.get(key)
        if found is not None:
            self.memo.move_to_end(key)
            self.hits += 1
        return found

    def again(self, key: tuple[object, ...]) -> bool:
        """Whether this key was met before (it is remembered as met from now on, until met)."""
        if self.size <= 0:
            return False
        mark = hash(key)
        if mark in self.once:
            del self.once[mark]
            return True
        self.once[mark] = None
        if len(self.once) > 2 * self.size:
            self.once.popitem(last=False)
        return False

    def worth(self, key: tuple[object, ...]) -> bool:
        """Whether to cut a record with this key now (it is counted as a cut if so).

        When its key was met before, or while kept records have been used at least half as
        often as records were cut, after the first ``size / 4`` (so at first, and in a
        batch whose rows repeat: a cut costs about a third of planning a row again).
        """
        if not self.again(key) and 2 * self.hits + self.size // 4 < self.cuts:
            return False
        self.cuts += 1
        return True

    def put(self, key: tuple[object, ...], status: BatchStatus, fill: Fill) -> None:
        """Keep a record's status and text, dropping the least recently used beyond ``size``."""
        if self.size <= 0:
            return
        self.memo[key] = (status, fill)
        if len(self.memo) > self.size:
            self.memo.popitem(last=False)


#: The fields of a row's plan request besides its dose (the dosing input stands for it) and
#: its id (written per row): today all the batch's, the same for every row, in the key all the
#: same, so that a per-row column added to one of them can never give a row another's record.
_PLAN_FIELDS = tuple(f.name for f in fields(PlanRequest) if f.name not in ("dose", "patient_id"))


def reuse_key(
    entry: ProtocolEntry, request: PlanRequest, own: tuple[Finding, ...]
) -> tuple[object, ...]:
    """What a row's record depends on but its line, id, patient shown and own findings' words.

    The protocol, the dosing input (:func:`ketadose.gate.dosing_input`), the shape of the
    patient's own findings (:func:`shape`), and every other field of the plan request,
    whatever fields it gains later.

    Args:
        entry: The row's protocol.
        request: The row's plan request.
        own: The patient's own findings (:func:`ketadose.limits.check_patient`).

    Returns:
        A hashable tuple: rows with equal keys have the same record but for those values.
    """
    return (
        id(entry),
        *dosing_input(request.dose),
        tuple(map(shape, own)),
        *[getattr(request, name) for name in _PLAN_FIELDS],
    )


def shape(finding: Finding) -> tuple[object, ...]:
    """What a plan reads of one of the patient's own findings: all of it but the words.

    Every field but ``message`` and ``value``, whatever fields a finding gains later: a
    plan carries the finding whole in each session, and decides by its severity.

    Args:
        finding: A finding of :func:`ketadose.limits.check_patient`.

    Returns:
        A hashable tuple of (field, value) pairs.
    """
    return tuple(item for item in vars(finding).items() if item[0] not in ("message", "value"))
