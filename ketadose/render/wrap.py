"""Prose for the terminal: wrapped at word boundaries, never between a number and its unit.

rich wraps at any whitespace (a no-break space too), so "0.4 mg/mL" can end one line with
"0.4" and start the next with "mg/mL", and a column too narrow for a word folds the word. A
:class:`Prose` renderable wraps its own text to the width rich gives it: at spaces, keeping a
number with the unit after it, and cutting a word only when it is longer than the whole width.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from rich.console import Console, ConsoleOptions
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

#: The units a number is kept with (longest first, so "mg/kg/h" is not read as "mg").
UNITS = (
    "mg/kg/h",
    "mg/kg",
    "mg/mL",
    "mg/h",
    "mL/h",
    "ng/mL",
    "mcg",
    "mL",
    "mg",
    "kg",
    "min",
    "mmHg",
    "bpm",
    "cm",
    "tablets",
    "tablet",
    "h",
    "%",
)
#: A run that is not broken: a number with the unit after it, or any run of non-spaces.
_UNIT = "|".join(map(re.escape, UNITS))
#: (a unit may go on per something: "4 h/day"; it is whole: "mg" is not read in "mg/kg")
_TOKEN = re.compile(rf"[^\s\d]*\d\S*?(?: (?:{_UNIT})(?:/[a-z]+)*(?=[^\w/]|$)\S*)?(?=\s|$)|\S+")


def tokens(text: str) -> list[tuple[int, int]]:
    """The (start, end) of each unbreakable run of ``text`` (one line, no newline)."""
    return [match.span() for match in _TOKEN.finditer(text)]


def breaks(text: str, width: int, indent: int = 0) -> list[tuple[int, int]]:
    """Where each line of one paragraph starts and ends when filled to ``width``.

    Args:
        text: One paragraph (no newline).
        width: The columns available (at least 1).
        indent: Columns the lines after the first start with (a hanging indent).

    Returns:
        (start, end) offsets into ``text``, one pair a line; a run longer than a line is
        cut at the width, the only case where a word is cut.
    """
    lines: list[tuple[int, int]] = []
    start = end = None
    for token_start, token_end in tokens(text):
        room = width - (indent if lines else 0)
        if start is not None and end is not None and token_end - start <= room:
            end = token_end
            continue
        if start is not None and end is not None:
            lines.append((start, end))
        room = max(1, width - (indent if lines else 0))
        while token_end - token_start > room:  # longer than a line: the only cut
            lines.append((token_start, token_start + room))
            token_start += room
            room = max(1, width - indent)
        # The first line keeps the paragraph's leading spaces (a list item's indent).
        start, end = (0 if not lines and start is None else token_start), token_end
    if start is not None and end is not None:
        lines.append((start, end))
    return lines or [(0, 0)]


@dataclass(frozen=True)
class Prose:
    """Text (plain or styled) that wraps as :func:`breaks` says, in a table cell or alone.

    Attributes:
        text: The text; newlines start new paragraphs.
        indent: The hanging indent of each paragraph's continuation lines.
    """

    text: str | Text
    indent: int = 0

    def _text(self) -> Text:
        return self.text if isinstance(self.text, Text) else Text(self.text)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        plain = self._text().plain
        paragraphs = plain.split("\n")
        longest = max((end - start for p in paragraphs for start, end in tokens(p)), default=0)
        widest = max(len(p) for p in paragraphs)
        return Measurement(min(longest + self.indent, widest), widest).clamp(
            max_width=options.max_width
        )

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Text]:
        text = self._text()
        width = options.max_width
        offset = 0
        for paragraph in text.plain.split("\n"):
            for number, (start, end) in enumerate(breaks(paragraph, width, self.indent)):
                line = text[offset + start : offset + end]
                if number and self.indent:
                    line = Text(" " * self.indent) + line
                line.no_wrap = True
                line.overflow = "ignore"
                yield line
            offset += len(paragraph) + 1


def fit(table: Table, console: Console) -> Table:
    """Lay a table out for the console's width so that no cell is cut.

    rich narrows a too-wide table from its widest columns down, whatever their narrowest
    sensible width, and then cuts cells that cannot wrap ("15…"). Here, when the natural
    layout is too wide: first the padding between columns goes, then the rules between them,
    then each wrapping column gets its narrowest width (its longest unbreakable run), and the
    room left goes to the columns that want least more first. A table that fits is left as
    it is.

    Args:
        table: The table, fully built.
        console: Where it is printed.

    Returns:
        The same table.
    """
    from rich import box

    # Measured unclamped (rich clamps to the console's width). rich has no public column
    # measure; these two private helpers are what its own layout uses.
    options = console.options.update_width(100_000)

    def ranges() -> tuple[list[Measurement], int]:
        found = [table._measure_column(console, options, column) for column in table.columns]
        # A column that must not wrap is as narrow as its widest cell (rich counts its words).
        found = [
            Measurement(r.maximum, r.maximum) if column.no_wrap else r
            for r, column in zip(found, table.columns, strict=True)
        ]
        return found, table._extra_width

    found, extra = ranges()
    if sum(r.maximum for r in found) + extra <= console.width:
        return table
    if sum(r.minimum for r in found) + extra > console.width:
        table.pad_edge = False
        table.collapse_padding = True
        found, extra = ranges()
    if sum(r.minimum for r in found) + extra > console.width:
        table.box = box.SIMPLE_HEAD  # its rules between columns are spaces: one space apart
        table.show_edge = False
        table.padding = (0, 0)
        found, extra = ranges()
    room = max(0, console.width - extra - sum(r.minimum for r in found))
    # The room left goes to the columns that want least first, each as much as it wants: a
    # date and time gets its one line before a long note gets wider.
    shares = [0] * len(found)
    for index in sorted(range(len(found)), key=lambda i: found[i].maximum - found[i].minimum):
        shares[index] = min(found[index].maximum - found[index].minimum, room)
        room -= shares[index]
    for index, column in enumerate(table.columns):
        width = found[index].minimum + shares[index] - table._get_padding_width(index)
        column.width = max(1, width)
    return table
