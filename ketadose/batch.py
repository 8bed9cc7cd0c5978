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
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from typing import Literal

from pydantic import BaseModel, ConfigDict

from ketadose import inputs
from ketadose.dosing import DoseRequest
from ketadose.errors import InputError, InputField, plain
from ketadose.libfile import Quantity
from ketadose.limits import LimitLibrary
from ketadose.models import Patient, Sex, WeightPolicy
from ketadose.planning import PlanRequest, SeriesPlan, plan
from ketadose.protocols import ProtocolLibrary
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


def _request(cells: dict[str, str], template: PlanRequest) -> PlanRequest:
    """The plan request for one row: the template with the row's patient and overrides."""

    def given(column: str) -> str | None:
        text = cells.get(column, "").strip()
        return text or None

    def number(column: str, kind: Kind) -> float | None:
        return inputs.amount(given(column), kind, field=column)

    def quantity(column: str, *kinds: Kind) -> Quantity | None:
        return inputs.quantity(given(column), *kinds, field=column)

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
        row_protocol = cells.get("protocol", "").strip() or protocol
        if row_protocol is None:
            raise InputError("no protocol: give a protocol column or ", InputField.DEFAULT_PROTOCOL)
        result = plan(library.get_protocol(row_protocol), _request(cells, template), limits)
    except InputError as error:
        raw = cells.get("id", "").strip()
        shown = raw if raw.isprintable() and len(raw) <= 64 else ""
        error_text = error.spelled(
            lambda f: f"the {_CELLS[f]} column" if f in _CELLS else option(f)
        )
        return BatchRecord(line=line, id=shown or None, status="error", error=error_text, plan=None)
    return BatchRecord(
        line=line, id=result.patient_id, status=result.status, error=None, plan=result
    )
