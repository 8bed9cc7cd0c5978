"""Plans for many patients at once: one CSV row in, one checked plan (or one error) out.

A batch file is CSV with a header. Columns (names are case-insensitive; only ``id`` is
required, an unknown column refuses the whole file, since a misspelt ``dose`` column would
otherwise be silently ignored):

- ``id``: the pseudonymous patient id;
- ``weight``, ``height``, ``age``: with units, as on the command line (``80kg``, ``178cm``);
- ``sex``: ``male`` or ``female``;
- ``protocol``: this row's protocol (default: ``--protocol``);
- ``dose``, ``rate``, ``duration``: this row's overrides, as ``--dose``, ``--rate``,
  ``--duration`` of ``plan``;
- ``dosing_weight``: ``actual``, ``ideal``, ``adjusted`` or ``lean`` (default: the option).

An empty cell is "not given". Rows stream through one at a time: memory does not grow with
the file. A row that cannot be planned becomes an error record naming its line; the run goes
on. No override reason can be given to a batch: each soft finding is for a clinician to see.

A whole batch: :func:`open_input` reads the file, :func:`work` makes the picklable
:class:`BatchWork` (plan, check and encode a chunk of rows, on worker processes forked or
spawned), and :func:`write` writes the records in input order and counts them by status.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import hashlib
import io
import os
import stat
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import BinaryIO, Literal, TextIO

from pydantic import BaseModel, ConfigDict

from ketadose import inputs
from ketadose.dosing import DoseRequest
from ketadose.errors import InputError, InputField, plain
from ketadose.libfile import Quantity
from ketadose.limits import LimitLibrary, check_patient
from ketadose.models import Patient, Sex, WeightPolicy
from ketadose.planning import PlanRequest, SeriesPlan, plan
from ketadose.protocols import ProtocolEntry, ProtocolLibrary
from ketadose.reuse import REUSE, Reuse, Splitting, reuse_key
from ketadose.units import Kind

COLUMNS = (
    "id",
    "weight",
    "height",
    "sex",
    "age",
    "protocol",
    "dose",
    "rate",
    "duration",
    "dosing_weight",
)
#: The fields a row's cells give: a row's error names them by column ("the weight column").
_CELLS = {
    field: field.value.replace(" ", "_")
    for field in InputField
    if field.value.replace(" ", "_") in COLUMNS
}
#: A longer row is refused as a row (csv would otherwise read a 1 GB line whole).
MAX_FIELD = 1000

BatchStatus = Literal["ok", "soft", "hard", "error"]
STATUSES: tuple[BatchStatus, ...] = ("ok", "soft", "hard", "error")
#: A row as :func:`rows` yields it: its line number, and its cells or why it cannot be read.
Row = tuple[int, dict[str, str] | str]


class BatchRecord(BaseModel):
    """One JSON Lines record of ``ketadose batch``: a row's plan, or why it has none.

    ``plan`` is typed as the series plan, so a full :class:`Plan` put there is written
    without the protocol's notes (pydantic serialises a field by its declared type).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    line: int
    id: str | None
    status: BatchStatus
    error: str | None
    plan: SeriesPlan | None


def header(row: list[str], path: str) -> list[str]:
    """Check a batch file's header.

    Args:
        row: The first row.
        path: The file, for messages.

    Returns:
        The column names, lower case.

    Raises:
        InputError: For an unknown, repeated or missing column.
    """
    names = [name.strip().lower() for name in row]
    unknown = [name for name in names if name not in COLUMNS]
    if unknown:
        raise InputError(f"{path}: unknown column {unknown[0]!r}; columns are {', '.join(COLUMNS)}")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise InputError(f"{path}: column {repeated[0]!r} is given twice")
    if "id" not in names:
        raise InputError(f"{path}: the header needs an id column")
    return names


def rows(lines: Iterable[str], path: str) -> Iterator[tuple[int, dict[str, str] | str]]:
    """Read a batch file row by row.

    Args:
        lines: The file's text, line by line (newlines kept).
        path: The file, for messages.

    Yields:
        ``(line number, cells by column)`` for each data row, or ``(line number, reason)``
        for a row that cannot be read (wrong number of cells, a NUL byte, a huge field).

    Raises:
        InputError: For an empty file or a bad header.
    """
    reader = csv.reader(lines, strict=True)
    try:
        first = next(reader)
    except StopIteration:
        raise InputError(f"{path}: empty file; it needs a header row") from None
    except csv.Error as error:
        raise InputError(f"{path}: line 1: {error}") from None
    names = header(first, path)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            yield reader.line_num, f"not a CSV row ({error})"
            continue
        if not any(cell.strip() for cell in row):
            continue  # a blank line
        if len(row) != len(names):
            yield reader.line_num, f"{len(row)} cells where the header has {len(names)}"
        elif any(len(cell) > MAX_FIELD for cell in row):
            yield reader.line_num, f"a cell is longer than {MAX_FIELD} characters"
        else:
            yield reader.line_num, dict(zip(names, row, strict=True))


def _choice(text: str, allowed: tuple[str, ...], column: str) -> str:
    value = text.strip().lower()
    if value not in allowed:
        raise InputError(f"{column} {text!r}: use {' or '.join(allowed)}")
    return value


#: Cells repeat (weights, heights, doses): each distinct text is parsed once. A cell that is
#: refused raises each time (lru_cache keeps only results); values are immutable.
@functools.lru_cache(maxsize=4096)
def _amount(text: str, kind: Kind, column: str) -> float | None:
    return inputs.amount(text, kind, field=column)


@functools.lru_cache(maxsize=1024)
def _quantity(text: str, kinds: tuple[Kind, ...], column: str) -> Quantity | None:
    return inputs.quantity(text, *kinds, field=column)


def _request(cells: dict[str, str], template: PlanRequest) -> PlanRequest:
    """The plan request for one row: the template with the row's patient and overrides."""

    def given(column: str) -> str | None:
        text = cells.get(column, "").strip()
        return text or None

    def number(column: str, kind: Kind) -> float | None:
        text = given(column)
        return None if text is None else _amount(text, kind, column)

    def quantity(column: str, *kinds: Kind) -> Quantity | None:
        text = given(column)
        return None if text is None else _quantity(text, kinds, column)

    sex = given("sex")
    policy = given("dosing_weight")
    base = template.dose
    dose = DoseRequest(
        patient=Patient(
            weight_kg=number("weight", Kind.WEIGHT),
            height_cm=number("height", Kind.HEIGHT),
            sex=None if sex is None else Sex(_choice(sex, ("male", "female"), "sex")),
            age_years=number("age", Kind.AGE),
        ),
        policy=base.policy
        if policy is None
        else WeightPolicy(_choice(policy, tuple(WeightPolicy), "dosing_weight")),
        dose=quantity("dose", Kind.DOSE_PER_KG, Kind.DOSE),
        rate=quantity("rate", Kind.RATE_PER_KG, Kind.RATE),
        duration_min=number("duration", Kind.DURATION),
        vial_mg_per_ml=base.vial_mg_per_ml,
        strength=base.strength,
        final_volume_ml=base.final_volume_ml,
        drop_factor=base.drop_factor,
        rounding=base.rounding,
    )
    return replace(template, dose=dose, patient_id=inputs.patient_id(cells["id"]))


def _entry(cells: dict[str, str], protocol: str | None, library: ProtocolLibrary) -> ProtocolEntry:
    """The row's protocol: its cell, else the batch's."""
    row_protocol = cells.get("protocol", "").strip() or protocol
    if row_protocol is None:
        raise InputError("no protocol: give a protocol column or ", InputField.DEFAULT_PROTOCOL)
    return library.get_protocol(row_protocol)


def _refused(
    line: int, cells: dict[str, str], error: InputError, option: Callable[[InputField], str]
) -> BatchRecord:
    """The error record of a row that cannot be planned."""
    raw = cells.get("id", "").strip()
    shown = raw if raw.isprintable() and len(raw) <= 64 else ""
    error_text = error.spelled(lambda f: f"the {_CELLS[f]} column" if f in _CELLS else option(f))
    return BatchRecord(line=line, id=shown or None, status="error", error=error_text, plan=None)


def _planned(
    line: int, entry: ProtocolEntry, request: PlanRequest, limits: LimitLibrary
) -> BatchRecord:
    result = plan(entry, request, limits)
    return BatchRecord(
        line=line, id=result.patient_id, status=result.status, error=None, plan=result
    )


def record(
    item: tuple[int, dict[str, str] | str],
    template: PlanRequest,
    protocol: str | None,
    library: ProtocolLibrary,
    limits: LimitLibrary,
    *,
    option: Callable[[InputField], str] = plain,
) -> BatchRecord:
    """Plan one row.

    Args:
        item: A row as :func:`rows` yields it.
        template: Start, calendar and preparation options shared by every row.
        protocol: The protocol of rows without a ``protocol`` cell (None: each row names one).
        library: The protocol library.
        limits: The limit library each plan is checked against.
        option: How an error names a field that is not a column (a vial, a pump step): the
            command line passes its flags (``ketadose.cli.exits.flag``).

    Returns:
        The row's record: its checked plan, or the reason it has none.
    """
    line, cells = item
    if isinstance(cells, str):
        return BatchRecord(line=line, id=None, status="error", error=cells, plan=None)
    try:
        return _planned(line, _entry(cells, protocol, library), _request(cells, template), limits)
    except InputError as error:
        return _refused(line, cells, error, option)


class BatchInput:
    """A batch file's lines (UTF-8, a BOM allowed), how far they have been read, its size.

    Iterating gives the lines, newlines kept; ``read`` counts the characters given so far,
    ``size`` is the file's size in bytes (None where it has none: a pipe), for a progress bar;
    :meth:`digest` is the SHA-256 of the lines given (as UTF-8), which the run's audit entry
    records: the log then names exactly which rows a batch planned.

    Args:
        name: The file's name for messages (``stdin`` for standard input).
        stream: The text, decoded.
        size: Its size.
    """

    def __init__(self, name: str, stream: TextIO, size: int | None = None) -> None:
        self.name = name
        self.stream = stream
        self.size = size
        self.read = 0
        self._digest = hashlib.sha256()

    def digest(self) -> str:
        """The SHA-256 of the lines given so far, as UTF-8 (a BOM left out), in hex."""
        return self._digest.hexdigest()

    def __iter__(self) -> Iterator[str]:
        """The lines.

        Raises:
            InputError: For bytes that are not UTF-8, naming the last good line.
        """
        number = 0
        try:
            for number, line in enumerate(self.stream, 1):  # noqa: B007 (used after the loop)
                self.read += len(line)
                self._digest.update(line.encode())
                yield line
        except UnicodeDecodeError:
            # Text is decoded a block (8 kB) at a time: the bad byte is after the last line
            # given, maybe well after it, and in a small file before any line.
            where = f" (after line {number})" if number else ""
            raise InputError(f"{self.name}: not UTF-8 text{where}") from None


def _size(stream: BinaryIO | TextIO) -> int | None:
    """A regular file's size in bytes; None for a pipe, a terminal or an in-memory stream."""
    try:
        status = os.fstat(stream.fileno())
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError
        return None
    return status.st_size if stat.S_ISREG(status.st_mode) else None


@contextlib.contextmanager
def open_input(file: Path, stdin: TextIO | None = None) -> Iterator[BatchInput]:
    """Open a batch file for :func:`rows`; ``-`` reads ``stdin``'s bytes, leaving it open.

    Args:
        file: The file, or ``-``.
        stdin: The standard input (the caller's: the core does not reach for it).

    Yields:
        Its lines.

    Raises:
        InputError: When the file cannot be opened (or ``-`` is given without ``stdin``, or
            with a closed one).
    """
    if str(file) != "-":
        try:
            stream = open(file, encoding="utf-8-sig", newline="")  # noqa: SIM115 (closed below)
        except OSError as error:
            raise InputError(f"cannot read {file}: {error.strerror}") from None
        with stream:
            yield BatchInput(str(file), stream, _size(stream))
        return
    if stdin is None:
        raise InputError("no standard input to read - from")
    try:
        binary = stdin.buffer
    except OSError as error:  # closed when ketadose started
        raise InputError(f"cannot read -: {error.strerror}") from None
    # newline="": csv reads the line ends itself (a quoted cell may hold one).
    wrapper = io.TextIOWrapper(binary, encoding="utf-8-sig", newline="")
    try:
        yield BatchInput("stdin", wrapper, _size(binary))
    finally:
        wrapper.detach()


@dataclass(frozen=True)
class BatchWork:
    """Plan, check and encode a chunk of rows: what a worker process does.

    Picklable (frozen data and a module-level encoder), so it travels whole to workers that
    are spawned, where ``fork`` is missing (Windows) or unsafe (macOS).

    Attributes:
        template: Start, calendar and preparation options shared by every row.
        protocol: The protocol of rows without a ``protocol`` cell.
        library: The protocol library.
        limits: The limit library each plan is checked against.
        encode: One record as text: JSON Lines or CSV rows (from the renderers: the core
            does not know output formats). A module-level function or a
            :func:`functools.partial` of one, so that it pickles.
        option: How a row's error spells a field that is not a column (the command line: its
            flag); module-level too.
        reuse: The records kept for rows with the same input (:class:`Reuse`), used where
            ``encode`` can cut a record's text (:class:`Splitting`); of size 0, every row is
            planned, checked and encoded from scratch, to the same bytes.
    """

    template: PlanRequest
    protocol: str | None
    library: ProtocolLibrary
    limits: LimitLibrary
    encode: Callable[[BatchRecord], str]
    option: Callable[[InputField], str] = plain
    reuse: Reuse = field(default_factory=Reuse, compare=False)

    def __call__(self, items: list[Row]) -> tuple[list[BatchStatus], bytes]:
        """The chunk's statuses, and its records encoded, as UTF-8."""
        statuses, texts = self.each(items)
        return statuses, b"".join(texts)

    def each(self, items: list[Row]) -> tuple[list[BatchStatus], list[bytes]]:
        """Each row's status, and each row's record encoded, as UTF-8."""
        if self.reuse.size <= 0 or not isinstance(self.encode, Splitting):
            results = [
                record(
                    item,
                    self.template,
                    self.protocol,
                    self.library,
                    self.limits,
                    option=self.option,
                )
                for item in items
            ]
            return [r.status for r in results], [self.encode(r).encode() for r in results]
        statuses: list[BatchStatus] = []
        texts: list[bytes] = []
        for item in items:
            status, text = self._row(item, self.encode)
            statuses.append(status)
            texts.append(text)
        return statuses, texts

    def _row(self, item: Row, encode: Splitting) -> tuple[BatchStatus, bytes]:
        """One row's status and text (UTF-8): reused where a row before it had the same key."""
        line, cells = item
        if isinstance(cells, str):
            refused = BatchRecord(line=line, id=None, status="error", error=cells, plan=None)
            return "error", self.encode(refused).encode()
        try:
            entry = _entry(cells, self.protocol, self.library)
            request = _request(cells, self.template)
            patient = request.dose.patient
            protocol = entry.protocol
            own = tuple(check_patient(patient, self.limits, protocol.id, protocol.route))
            key = reuse_key(entry, request, own)
            patient_id = request.patient_id
            assert patient_id is not None  # every row has one (_request)
            kept = self.reuse.get(key)
            if kept is not None:
                return kept[0], kept[1](line, patient_id, patient, own)
            result = _planned(line, entry, request, self.limits)
        except InputError as error:  # never kept: the next such row is planned again
            refused = _refused(line, cells, error, self.option)
            return "error", self.encode(refused).encode()
        text = self.encode(result).encode()
        if self.reuse.worth(key):
            fill = encode.fragments(result, own)
            # Kept only if the fragments give this very row's text back, byte for byte.
            if fill is not None and fill(line, patient_id, patient, own) == text:
                self.reuse.put(key, result.status, fill)
        return result.status, text


#: The columns that never change which worker a row goes to: the id (each row's own), and
#: the height, sex and age, which decide a record only together with the weight.
_UNROUTED = frozenset(("id", "height", "sex", "age"))


def route(item: Row) -> int:
    """Which worker a row goes to (modulo the workers): a number of its weight and options.

    Rows with the same cells but the id, height, sex and age get the same number, so a
    batch's rows with the same input, which a worker plans once and reuses
    (:class:`Reuse`), are planned by one worker, not by each (the record is the same
    whichever worker writes it: this decides only the work). CRC-32, not :func:`hash`, so the
    split is the same from run to run.
    """
    line, cells = item
    if isinstance(cells, str):
        return line
    return zlib.crc32(
        "\x1f".join(text for name, text in cells.items() if name not in _UNROUTED).encode()
    )


def work(
    template: PlanRequest,
    protocol: str | None,
    library: ProtocolLibrary,
    limits: LimitLibrary,
    encode: Callable[[BatchRecord], str],
    option: Callable[[InputField], str] = plain,
    *,
    reuse: int = REUSE,
) -> BatchWork:
    """The work of a batch, checked before any row is read.

    Args:
        template: Start, calendar and preparation options shared by every row.
        protocol: The protocol of rows without a ``protocol`` cell (None: each row names one).
        library: The protocol library.
        limits: The limit library.
        encode: One record as text (see :class:`BatchWork`).
        option: How a row's error spells a field that is not a column (see :class:`BatchWork`).
        reuse: How many distinct records a worker keeps to reuse for rows with the same
            input (:class:`Reuse`); 0 plans, checks and encodes every row from scratch (the
            output is the same bytes).

    Returns:
        The work, predicting plasma peaks only where the limit library limits them.

    Raises:
        InputError: For an unknown ``protocol``.
    """
    if protocol is not None:
        library.get_protocol(protocol)
    # Predicted peaks cost ~10% of a plan: a batch gives them only where the library limits them.
    limited = any(p.session.predicted_peak is not None for p in limits.content.profiles.values())
    return BatchWork(
        replace(template, predict_peaks=limited),
        protocol,
        library,
        limits,
        encode,
        option,
        Reuse(reuse),
    )


def write(
    chunk_work: Callable[[list[Row]], tuple[list[BatchStatus], bytes]],
    source: BatchInput,
    stdout: BinaryIO,
    *,
    output: Path | None = None,
    overwrite: bool = False,
    header: bytes = b"",
    jobs: int = 1,
    progress: Callable[[int], None] | None = None,
) -> dict[str, int]:
    """Plan the rows on ``jobs`` workers and write their records in input order.

    The records go to ``stdout``, or to ``output``, which appears whole at the end or not at
    all (:func:`ketadose.atomic.atomic_file`). While the rows are planned, garbage is
    collected rarely (:func:`ketadose.parallel.few_collections`).

    Args:
        chunk_work: Plans and encodes a chunk of rows: a :class:`BatchWork`, whose rows go to
            the workers by :func:`route` (:func:`ketadose.parallel.routed_write`), or any
            chunk function, given contiguous chunks.
        source: The batch file's lines.
        stdout: Where the records go without ``output``.
        output: The file to write instead.
        overwrite: Replace an existing ``output``.
        header: Written first (the CSV header).
        jobs: Worker processes.
        progress: Called after each chunk with how much of ``source`` has been read (the
            first call comes once any workers have started: a thread the caller starts then
            is not forked with them).

    Returns:
        How many records had each status.

    Raises:
        InputError: For a file that cannot be read as a batch (empty, a bad header, not
            UTF-8), or an ``output`` that cannot be written.
    """
    from ketadose.atomic import atomic_file
    from ketadose.parallel import few_collections, ordered_write, routed_write

    counts: dict[str, int] = dict.fromkeys(STATUSES, 0)
    with contextlib.ExitStack() as stack:
        sink = (
            stdout
            if output is None
            else stack.enter_context(atomic_file(output, replace=overwrite))
        )
        sink.write(header)
        with few_collections():
            items = rows(source, source.name)
            written = (
                routed_write(chunk_work.each, items, sink, jobs=jobs, route=route)
                if isinstance(chunk_work, BatchWork)
                else ordered_write(chunk_work, items, sink, jobs=jobs)
            )
            for statuses in written:
                for status in statuses:
                    counts[status] += 1
                if progress is not None:
                    progress(source.read)
        sink.flush()
    return counts
