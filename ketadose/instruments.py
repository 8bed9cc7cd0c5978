"""Questionnaire instruments (PHQ-9, GAD-7, PCL-5, MADRS) as data, and their scoring.

Each instrument is read from the shipped ``data/instruments.toml`` (a compiled twin keeps
start-up fast, as for the protocol library): how many items, each item's range, the total's
range, severity bands, a response rule (a percent fall from baseline) and a remission threshold
where a source gives them, and the safety items (PHQ-9 item 9 at 1 or more) that raise a finding
a clinician must acknowledge. Every number carries its ``source`` and ``evidence``.

Pure: no printing, no clock, no store. An item list is parsed strictly (:func:`parse_items`);
anything that is not exactly the instrument's count of whole numbers in range is refused with a
one-line :class:`~ketadose.errors.InputError` naming what is wrong, never guessed at.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Literal

from pydantic import Field, model_validator

from ketadose.errors import InputError, InputField, Part, StoreError
from ketadose.libfile import Count, Flag, LibraryHeader, Sourced, Strict, read_shipped
from ketadose.models import Finding, LibraryRef, Severity
from ketadose.scores import ScoreRecord

SHIPPED_FILE = "instruments.toml"

#: Longest item list or total text looked at: no instrument has more than a few dozen items.
MAX_TEXT = 400


class Band(Sourced):
    """A severity band: totals from ``low`` to ``high`` (both included) carry ``label``."""

    low: Count = Field(ge=0)
    high: Count = Field(ge=0)
    label: str = Field(min_length=1)


class SafetyItem(Sourced):
    """An item whose answer at or above ``at_least`` raises a finding to acknowledge."""

    item: Count = Field(ge=1, description="The item's number, from 1.")
    at_least: Count = Field(ge=0)
    label: str = Field(min_length=1, description="What the item is about (not its text).")


class ResponseRule(Sourced):
    """Response: the total falls by at least ``fall_pct`` percent from baseline."""

    fall_pct: Count = Field(gt=0, le=100)


class RemissionRule(Sourced):
    """Remission: a total of at most ``at_most``."""

    at_most: Count = Field(ge=0)


class Instrument(Sourced):
    """One questionnaire: items and ranges, bands, outcome rules and safety items."""

    id: str = Field(pattern=r"^[a-z][a-z0-9]*$")
    name: str = Field(min_length=1)
    rater: Literal["patient", "clinician"]
    items: Count = Field(ge=1, le=100)
    item_min: Count = Field(ge=0)
    item_max: Count = Field(ge=1)
    total_min: Count = Field(ge=0)
    total_max: Count = Field(ge=1)
    total_only: Flag = Field(
        default=False, description="May be recorded as a total alone (a clinician's rating)."
    )
    licence: str = Field(min_length=1)
    bands: tuple[Band, ...] = ()
    safety: tuple[SafetyItem, ...] = ()
    response: ResponseRule | None = None
    remission: RemissionRule | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Instrument:
        if self.item_min >= self.item_max:
            raise ValueError("item_min must be below item_max")
        if (self.total_min, self.total_max) != (
            self.items * self.item_min,
            self.items * self.item_max,
        ):
            raise ValueError(
                f"total range must be items x item range: {self.items * self.item_min} to "
                f"{self.items * self.item_max}"
            )
        expected = self.total_min
        for band in self.bands:
            if band.low != expected or band.high < band.low:
                raise ValueError(
                    f"bands must cover the totals in order without gap or overlap: band "
                    f"{band.label!r} should start at {expected}"
                )
            expected = band.high + 1
        if self.bands and expected != self.total_max + 1:
            raise ValueError(f"the last band must end at total_max {self.total_max}")
        for safety in self.safety:
            if safety.item > self.items:
                raise ValueError(f"safety item {safety.item} is past the {self.items} items")
            if not self.item_min < safety.at_least <= self.item_max:
                raise ValueError(f"safety item {safety.item}: at_least is outside the item range")
        if self.remission is not None and not (
            self.total_min <= self.remission.at_most <= self.total_max
        ):
            raise ValueError("remission.at_most is outside the total range")
        return self

    @property
    def label(self) -> str:
        """The short name (``PHQ-9``), the name up to its first space."""
        return self.name.split(" ", 1)[0]

    def band(self, total: int) -> Band | None:
        """The severity band of a total, or None when the instrument has no bands."""
        return next((b for b in self.bands if b.low <= total <= b.high), None)


class InstrumentFile(Strict):
    """The whole ``instruments.toml``."""

    library: LibraryHeader
    instruments: tuple[Instrument, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> InstrumentFile:
        ids = [i.id for i in self.instruments]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ValueError(f"instrument id {repeated[0]!r} is given twice")
        return self


@dataclass(frozen=True, slots=True)
class InstrumentLibrary:
    """The instruments in effect, by id, and the file they came from."""

    instruments: Mapping[str, Instrument]
    ref: LibraryRef

    def get(self, instrument_id: str) -> Instrument:
        """The instrument with this id.

        Raises:
            InputError: No instrument has it; the message lists those there are.
        """
        found = self.instruments.get(instrument_id)
        if found is None:
            known = ", ".join(sorted(self.instruments))
            raise InputError(f"unknown instrument {_shown(instrument_id)}: use one of {known}")
        return found

    def get_stored(self, record: ScoreRecord) -> Instrument:
        """The instrument of a stored score.

        Raises:
            StoreError: The store names an instrument there is none of (exit 6: nobody typed
                it now).
        """
        found = self.instruments.get(record.instrument)
        if found is None:
            raise StoreError(
                f"score {record.id} of patient {record.patient_id!r} names an unknown "
                f"instrument {_shown(record.instrument)}"
            )
        return found


@cache
def load_instruments() -> InstrumentLibrary:
    """The shipped instruments (read once per process).

    Raises:
        ConfigError: The shipped file does not validate (a packaging error).
    """
    file, ref = read_shipped(SHIPPED_FILE, InstrumentFile)
    return InstrumentLibrary({i.id: i for i in file.instruments}, ref)


@dataclass(frozen=True, slots=True)
class SafetyFlag:
    """A safety item answered at or above its threshold.

    Attributes:
        item: The item's number, from 1.
        value: The answer.
        at_least: The threshold it reached.
        label: What the item is about.
        source: Where the rule comes from.
    """

    item: int
    value: int
    at_least: int
    label: str
    source: str

    def finding(self, instrument: Instrument, acknowledgement: str | None) -> Finding:
        """The flag as a finding: soft, overridden only by a written acknowledgement."""
        return Finding(
            severity=Severity.SOFT,
            code=f"{instrument.id}-item-{self.item}",
            message=(
                f"{instrument.label} {self.label} answered {self.value} (at least "
                f"{self.at_least}): a safety finding that must be acknowledged"
            ),
            parameter=f"{instrument.id}.item{self.item}",
            value=self.value,
            limit=self.at_least,
            source=self.source,
            overridden=acknowledgement is not None,
            override_reason=acknowledgement,
        )


@dataclass(frozen=True, slots=True)
class Score:
    """A scored questionnaire.

    Attributes:
        instrument: The instrument's id.
        items: The item answers in order, or None for a total recorded alone.
        total: The total.
        band: The severity band's label, or None when the instrument has none.
        safety: The safety items that reached their threshold, in item order.
    """

    instrument: str
    items: tuple[int, ...] | None
    total: int
    band: str | None
    safety: tuple[SafetyFlag, ...] = ()


@dataclass(frozen=True, slots=True)
class Outcome:
    """A total against a baseline total: the fall, and response and remission where sourced.

    Attributes:
        fall_pct: The fall from baseline in percent (negative: worse), None with a baseline of 0.
        response: Whether the fall reached the response rule; None without a rule or a fall.
        remission: Whether the total is at or below the remission threshold; None without one.
    """

    fall_pct: float | None
    response: bool | None
    remission: bool | None


_NUMBER = re.compile(r"0|[1-9][0-9]*")


def _shown(text: str) -> str:
    """A piece of input in a message: repr, cut to 24 characters."""
    shown = repr(text)
    return shown if len(shown) <= 24 else shown[:21] + "..."


def _items_only(instrument: Instrument) -> InputError:
    """The refusal of a total alone for an instrument scored item by item."""
    return InputError(
        f"{instrument.label} is scored item by item: give ",
        InputField.ITEMS,
        ", not ",
        InputField.TOTAL,
    )


def _whole(token: str, what: Part, instrument: Instrument) -> int:
    """One whole number as typed, or an InputError saying what it is instead."""
    if token == "":
        raise InputError(what, f" is empty: {_form(instrument)}")
    if _NUMBER.fullmatch(token):
        return int(token)
    if re.fullmatch(r"-[0-9]+", token):
        raise InputError(
            what,
            f" is negative ({token}): {instrument.label} items are "
            f"{instrument.item_min} to {instrument.item_max}",
        )
    if re.fullmatch(r"[0-9]+", token):
        raise InputError(what, f" {token!r} has a leading zero: write it without one")
    if re.fullmatch(r"[+-]?([0-9]+\.[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?", token):
        raise InputError(what, f" {_shown(token)} is not a whole number")
    raise InputError(what, f" {_shown(token)} is not a whole number: {_form(instrument)}")


def _form(instrument: Instrument) -> str:
    return (
        f"give {instrument.items} whole numbers from {instrument.item_min} to "
        f"{instrument.item_max}, separated by commas, e.g. "
        + ",".join([str(instrument.item_min)] * min(instrument.items, 3))
        + (",..." if instrument.items > 3 else "")
    )


def parse_items(text: str, instrument: Instrument) -> tuple[int, ...]:
    """Read an item list, ``"2,2,2,2,1,1,2,1,1"``, strictly.

    Exactly ``instrument.items`` whole numbers (ASCII digits, no sign, no leading zero),
    separated by single commas, with no spaces or other characters anywhere, each from
    ``item_min`` to ``item_max``.

    Args:
        text: As typed.
        instrument: The instrument.

    Returns:
        The answers in item order.

    Raises:
        InputError: One line naming the first problem: an empty list, whitespace, an empty
            item (``2,,3``, a trailing comma), an item that is not a whole number (``1.5``,
            ``x``), a negative item, the wrong count, an item out of range.
    """
    if len(text) > MAX_TEXT:
        raise InputError(InputField.ITEMS, f" is {len(text)} characters long: {_form(instrument)}")
    if text == "":
        raise InputError(InputField.ITEMS, f" is empty: {_form(instrument)}")
    if any(c.isspace() for c in text):
        raise InputError(
            InputField.ITEMS, f" {_shown(text)} contains whitespace: {_form(instrument)}"
        )
    tokens = text.split(",")
    if len(tokens) > 1 and tokens[-1] == "":
        raise InputError(
            InputField.ITEMS, f" {_shown(text)} ends with a comma: {_form(instrument)}"
        )
    values = [_whole(t, f"item {n}", instrument) for n, t in enumerate(tokens, start=1)]
    if len(values) != instrument.items:
        raise InputError(f"{instrument.label} has {instrument.items} items; {len(values)} given")
    for number, value in enumerate(values, start=1):
        if not instrument.item_min <= value <= instrument.item_max:
            raise InputError(
                f"item {number} is {value}: {instrument.label} items are {instrument.item_min} "
                f"to {instrument.item_max}"
            )
    return tuple(values)


def parse_total(text: str, instrument: Instrument) -> int:
    """Read a total recorded alone (``--total 28``), for an instrument that allows it.

    Raises:
        InputError: The instrument is scored item by item only, or the text is not one whole
            number in the total's range.
    """
    if not instrument.total_only:
        raise _items_only(instrument)
    if len(text) > MAX_TEXT or any(c.isspace() for c in text) or "," in text:
        raise InputError(InputField.TOTAL, f" {_shown(text)} must be one whole number")
    value = _whole(text, InputField.TOTAL, instrument)
    if not instrument.total_min <= value <= instrument.total_max:
        raise InputError(
            InputField.TOTAL,
            f" is {value}: {instrument.label} totals are {instrument.total_min} to "
            f"{instrument.total_max}",
        )
    return value


def score(instrument: Instrument, items: Sequence[int]) -> Score:
    """Score an item list: the total, its band, and the safety items reached.

    Args:
        instrument: The instrument.
        items: The answers (as :func:`parse_items` gives them).

    Returns:
        The score.

    Raises:
        InputError: The count or an item's range is wrong (a caller skipped the parsing).
    """
    answers = tuple(items)
    if len(answers) != instrument.items:
        raise InputError(f"{instrument.label} has {instrument.items} items; {len(answers)} given")
    for number, value in enumerate(answers, start=1):
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or not instrument.item_min <= value <= instrument.item_max
        ):
            raise InputError(
                f"item {number} is {value!r}: {instrument.label} items are "
                f"{instrument.item_min} to {instrument.item_max}"
            )
    total = sum(answers)
    band = instrument.band(total)
    flags = tuple(
        SafetyFlag(s.item, answers[s.item - 1], s.at_least, s.label, s.source)
        for s in sorted(instrument.safety, key=lambda s: s.item)
        if answers[s.item - 1] >= s.at_least
    )
    return Score(instrument.id, answers, total, None if band is None else band.label, flags)


def score_total(instrument: Instrument, total: int) -> Score:
    """Score a total recorded alone (no items, so no safety items can be read).

    Raises:
        InputError: The instrument is scored item by item only, or the total is out of range.
    """
    if not instrument.total_only:
        raise _items_only(instrument)
    if (
        isinstance(total, bool)
        or not isinstance(total, int)
        or not instrument.total_min <= total <= instrument.total_max
    ):
        raise InputError(
            f"total {total!r}: {instrument.label} totals are {instrument.total_min} to "
            f"{instrument.total_max}"
        )
    band = instrument.band(total)
    return Score(instrument.id, None, total, None if band is None else band.label)


def outcome(instrument: Instrument, baseline: int, total: int) -> Outcome:
    """A total against the baseline total: percent fall, response and remission.

    Response is a fall of at least the rule's percent (50 % is a response); remission a total
    at or below the threshold (MADRS 10 is remission, 11 is not). Each is None where the
    instrument ships no sourced rule: ketadose does not invent one.

    Args:
        instrument: The instrument.
        baseline: The baseline total.
        total: The later total.

    Returns:
        The outcome.

    Raises:
        InputError: A total outside the instrument's range.
    """
    for name, value in (("baseline", baseline), ("total", total)):
        if not instrument.total_min <= value <= instrument.total_max:
            raise InputError(
                f"{name} {value}: {instrument.label} totals are {instrument.total_min} to "
                f"{instrument.total_max}"
            )
    # Exact in integers: a fall of 50 % is (baseline - total) * 100 >= 50 * baseline.
    fall = None if baseline == 0 else (baseline - total) * 100 / baseline
    response = (
        None
        if instrument.response is None or baseline == 0
        else (baseline - total) * 100 >= instrument.response.fall_pct * baseline
    )
    remission = None if instrument.remission is None else total <= instrument.remission.at_most
    return Outcome(fall, response, remission)


def rescore(instrument: Instrument, record: ScoreRecord) -> Score:
    """Score a stored record again (its band and safety flags are not stored, only answers).

    Args:
        instrument: The record's instrument.
        record: The stored score.

    Returns:
        The score.

    Raises:
        StoreError: The stored answers do not fit the instrument (the row was changed outside
            ketadose): exit 6, not an input error, since nobody typed them now.
    """
    try:
        if record.instrument != instrument.id:
            raise InputError(f"it is a {record.instrument} score, not {instrument.id}")
        if record.items is None:
            return score_total(instrument, record.total)
        return score(instrument, record.items)
    except InputError as error:
        raise StoreError(
            f"score {record.id} of patient {record.patient_id!r} does not fit {instrument.label}: ",
            *error.parts,
            "; the row was changed outside ketadose",
        ) from None


def unacknowledged(records: Sequence[ScoreRecord]) -> list[str]:
    """A line for each recorded score whose safety finding nobody has acknowledged yet.

    ``next`` is not ready while one is open (PHQ-9 item 9 above 0 must be seen by a
    clinician before the next dose is decided).

    Raises:
        StoreError: A stored score does not fit its instrument.
    """
    library = load_instruments()
    open_findings = []
    for record in records:
        if record.acknowledged:
            continue
        instrument = library.get_stored(record)
        for flag in rescore(instrument, record).safety:
            number = "" if record.id is None else f" (score {record.id})"
            open_findings.append(
                f"{instrument.label} item {flag.item} ({flag.label}) answered {flag.value} on "
                f"{record.at:%Y-%m-%d %H:%M}{number} is not acknowledged: ketadose score "
                f"acknowledge {record.patient_id} {record.id if record.id is not None else 'N'} "
                '--text "..."'
            )
    return open_findings
