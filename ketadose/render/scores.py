"""Output for questionnaire scores: ``score show`` (table, JSON) and each instrument's trend.

The trend functions take an instrument and a patient's scores (any instruments, any order; the
instrument's own are picked out and put in time order) so that ``history`` can call them:

* :func:`sparkline` for the terminal, one block per score, ``▁`` at the instrument's lowest
  possible total and ``█`` at its highest (the scale is the instrument's range, never the data's,
  so a flat line at 27 reads as severe, not as "middle");
* :func:`trend_rows` with :data:`TREND_COLUMNS` for CSV and JSON (:func:`trend_csv`);
* :func:`trend_chart` for the HTML sheet, an inline SVG like ``render.svg``'s charts.

The change from baseline is taken from the instrument's first score in the list; response and
remission are given only where the instrument ships a sourced rule (None otherwise).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from html import escape
from typing import TYPE_CHECKING, Any

from ketadose.clock import instant, label
from ketadose.instruments import Instrument, InstrumentLibrary, Score, outcome, rescore
from ketadose.models import SCHEMA_VERSION, significant
from ketadose.scores import ScoreRecord

if TYPE_CHECKING:
    from rich.console import Console

#: The eight block heights, lowest first.
BLOCKS = "▁▂▃▄▅▆▇█"

#: The columns of :func:`trend_rows`, in order.
TREND_COLUMNS = (
    "date",
    "instrument",
    "total",
    "band",
    "change_from_first_pct",
    "response",
    "remission",
    "safety_items",
    "acknowledged",
)


def of(instrument: Instrument, scores: Sequence[ScoreRecord]) -> list[ScoreRecord]:
    """The instrument's scores among ``scores``, in time order (by instant, then row id)."""
    mine = [s for s in scores if s.instrument == instrument.id]
    return sorted(mine, key=lambda s: (instant(s.at), s.id or 0))


def block(instrument: Instrument, total: int) -> str:
    """The block for one total, scaled to the instrument's total range (rounded half up)."""
    span = instrument.total_max - instrument.total_min
    steps = len(BLOCKS) - 1
    level = (2 * (total - instrument.total_min) * steps + span) // (2 * span)
    return BLOCKS[max(0, min(steps, level))]


def sparkline(instrument: Instrument, scores: Sequence[ScoreRecord]) -> str:
    """One block per score of the instrument, oldest first: ``PHQ-9 ▇▅▃▂ 24 -> 6``.

    Args:
        instrument: The instrument.
        scores: The patient's scores (others are left out).

    Returns:
        The label, the blocks, and the first and last totals; ``PHQ-9 (no scores)`` if none.
    """
    mine = of(instrument, scores)
    if not mine:
        return f"{instrument.label} (no scores)"
    blocks = "".join(block(instrument, s.total) for s in mine)
    ends = str(mine[0].total) if len(mine) == 1 else f"{mine[0].total} -> {mine[-1].total}"
    return f"{instrument.label} {blocks} {ends} (of {instrument.total_max})"


def trend_rows(instrument: Instrument, scores: Sequence[ScoreRecord]) -> list[dict[str, Any]]:
    """One row per score of the instrument, oldest first, keyed by :data:`TREND_COLUMNS`.

    Args:
        instrument: The instrument.
        scores: The patient's scores (others are left out).

    Returns:
        Rows: ``date`` (ISO 8601 with offset), ``total``, ``band`` (None without bands),
        ``change_from_first_pct`` (the fall from the first score, None for a first of 0),
        ``response`` and ``remission`` (None without a sourced rule), ``safety_items`` (the item
        numbers that raised a finding) and ``acknowledged`` (None when nothing needed it).

    Raises:
        StoreError: A stored score does not fit its instrument.
    """
    mine = of(instrument, scores)
    rows = []
    for record in mine:
        result = rescore(instrument, record)
        change = outcome(instrument, mine[0].total, record.total)
        rows.append(
            {
                "date": record.at.isoformat(),
                "instrument": instrument.id,
                "total": record.total,
                "band": result.band,
                "change_from_first_pct": None
                if change.fall_pct is None
                else significant(change.fall_pct),
                "response": change.response,
                "remission": change.remission,
                "safety_items": [flag.item for flag in result.safety],
                "acknowledged": record.acknowledged if result.safety else None,
            }
        )
    return rows


def trend_csv(instrument: Instrument, scores: Sequence[ScoreRecord]) -> str:
    """The trend as CSV (:data:`TREND_COLUMNS`; several safety items joined with ``;``).

    Args:
        instrument: The instrument.
        scores: The patient's scores.

    Returns:
        CSV text with a header row.
    """
    from ketadose.render import csv

    rows = trend_rows(instrument, scores)
    return csv.write(
        TREND_COLUMNS,
        (
            {
                **row,
                "safety_items": ";".join(str(i) for i in row["safety_items"]),
                **{k: _yes_no(row[k]) for k in ("response", "remission", "acknowledged")},
            }
            for row in rows
        ),
    )


def _yes_no(value: bool | None) -> str | None:
    return None if value is None else "yes" if value else "no"


#: Drawing size of :func:`trend_chart` in CSS pixels (fits A4 and Letter, as ``render.svg``).
CHART_WIDTH, CHART_HEIGHT = 640, 200
_LEFT, _RIGHT, _TOP, _BOTTOM = 40, 150, 30, 28
#: The least vertical room (px) between two mark labels, and the longest label in the margin.
_MIN_LABEL_GAP, _MAX_MARK_TEXT = 11.0, 24


def trend_chart(instrument: Instrument, scores: Sequence[ScoreRecord]) -> str:
    """A line chart of the instrument's totals as inline SVG, on its full total range.

    Band edges (and the remission threshold, where sourced) are dashed lines labelled on the
    right; each score is a dot with its total; the first and last dates are under the axis.
    No script, no URL, every text escaped, coordinates to two decimals: same input, same bytes.

    Args:
        instrument: The instrument.
        scores: The patient's scores (others are left out).

    Returns:
        An ``<svg>`` element, or ``""`` when the instrument has no scores.

    Raises:
        StoreError: A stored score does not fit its instrument.
    """
    mine = of(instrument, scores)
    if not mine:
        return ""
    for record in mine:
        rescore(instrument, record)
    low, high = instrument.total_min, instrument.total_max
    plot_w = CHART_WIDTH - _LEFT - _RIGHT
    plot_h = CHART_HEIGHT - _TOP - _BOTTOM
    base = _TOP + plot_h
    title = f"{instrument.label} total ({low}-{high})"

    def y(total: float) -> float:
        return base - plot_h * (total - low) / (high - low)

    def x(index: int) -> float:
        return _LEFT + (plot_w * index / (len(mine) - 1) if len(mine) > 1 else plot_w / 2)

    out = [
        f'<svg class="chart trend" role="img" aria-label="{escape(title)}" '
        f'viewBox="0 0 {CHART_WIDTH} {CHART_HEIGHT}" width="{CHART_WIDTH}" '
        f'height="{CHART_HEIGHT}" font-family="sans-serif" font-size="11">',
        f"<title>{escape(title)}</title>",
        f'<text x="{_LEFT}" y="16" font-size="13" font-weight="bold">{escape(title)}</text>',
    ]
    marks = [(b.low, f"{b.low}: {b.label}") for b in instrument.bands if b.low > low]
    if instrument.remission is not None:
        marks.append((instrument.remission.at_most, f"remission <= {instrument.remission.at_most}"))
    labelled_y = float("inf")
    for value, text in sorted(marks):
        line_y = _f(y(value))
        out.append(
            f'<line x1="{_LEFT}" y1="{line_y}" x2="{CHART_WIDTH - _RIGHT}" y2="{line_y}" '
            'stroke="#999" stroke-width="0.5" stroke-dasharray="3,3"/>'
        )
        # A label that would not fit the margin is shortened to its total; one that would
        # overlap the label below it is left out (its line stays).
        if labelled_y - y(value) >= _MIN_LABEL_GAP:
            shown = text if len(text) <= _MAX_MARK_TEXT else str(value)
            out.append(
                f'<text x="{CHART_WIDTH - _RIGHT + 4}" y="{_f(y(value) + 4)}">'
                f"{escape(shown)}</text>"
            )
            labelled_y = y(value)
    for value in (low, high):
        out.append(f'<text x="{_LEFT - 6}" y="{_f(y(value) + 4)}" text-anchor="end">{value}</text>')
    points = " ".join(f"{_f(x(i))},{_f(y(s.total))}" for i, s in enumerate(mine))
    out.append(f'<polyline fill="none" stroke="#000" stroke-width="1.5" points="{points}"/>')
    for index, record in enumerate(mine):
        out.append(
            f'<circle cx="{_f(x(index))}" cy="{_f(y(record.total))}" r="3" fill="#000"/>'
            f'<text x="{_f(x(index))}" y="{_f(y(record.total) - 7)}" text-anchor="middle">'
            f"{record.total}</text>"
        )
    out.append(
        f'<line x1="{_LEFT}" y1="{base}" x2="{CHART_WIDTH - _RIGHT}" y2="{base}" stroke="#000"/>'
    )
    out.append(f'<line x1="{_LEFT}" y1="{_TOP}" x2="{_LEFT}" y2="{base}" stroke="#000"/>')
    first, last = mine[0].at, mine[-1].at
    out.append(f'<text x="{_LEFT}" y="{base + 18}">{escape(f"{first:%Y-%m-%d}")}</text>')
    if len(mine) > 1:
        out.append(
            f'<text x="{CHART_WIDTH - _RIGHT}" y="{base + 18}" text-anchor="end">'
            f"{escape(f'{last:%Y-%m-%d}')}</text>"
        )
    out.append("</svg>")
    return "\n".join(out)


def _f(value: float) -> str:
    """A coordinate with two decimals at most, no trailing zeros."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


# --- score show -------------------------------------------------------------------------------


def _scored(library: InstrumentLibrary, record: ScoreRecord) -> Score:
    return rescore(library.get_stored(record), record)


def score_rows(library: InstrumentLibrary, scores: Sequence[ScoreRecord]) -> list[dict[str, Any]]:
    """One plain row per stored score, in time order, with its band and safety findings.

    Args:
        library: The instruments.
        scores: The patient's scores.

    Returns:
        Rows for ``score show --json``.

    Raises:
        StoreError: A stored score names no known instrument or does not fit it.
    """
    rows = []
    for record in sorted(scores, key=lambda s: (instant(s.at), s.id or 0)):
        result = _scored(library, record)
        rows.append(
            {
                "id": record.id,
                "date": record.at.isoformat(),
                "instrument": record.instrument,
                "items": None if record.items is None else list(record.items),
                "total": record.total,
                "band": result.band,
                "safety": [
                    {
                        "item": flag.item,
                        "value": flag.value,
                        "at_least": flag.at_least,
                        "label": flag.label,
                    }
                    for flag in result.safety
                ],
                "needs_acknowledgement": bool(result.safety) and not record.acknowledged,
                "acknowledged_by": record.acknowledged_by,
                "acknowledged_at": None
                if record.acknowledged_at is None
                else record.acknowledged_at.isoformat(),
                "acknowledgement": record.acknowledgement,
            }
        )
    return rows


def scores_json(patient_id: str, library: InstrumentLibrary, scores: Sequence[ScoreRecord]) -> str:
    """The ``score show --json`` document.

    Args:
        patient_id: The patient.
        library: The instruments.
        scores: The patient's scores.

    Returns:
        JSON text: ``schema_version``, ``patient_id``, ``instruments`` (the library reference),
        ``scores`` (:func:`score_rows`) and ``trends`` (:func:`trend_rows` by instrument).
    """
    body = {
        "schema_version": SCHEMA_VERSION,
        "patient_id": patient_id,
        "instruments": library.ref.model_dump(mode="json"),
        "scores": score_rows(library, scores),
        "trends": {
            i.id: trend_rows(i, scores)
            for i in library.instruments.values()
            if any(s.instrument == i.id for s in scores)
        },
    }
    return json.dumps(body, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def scores_table(
    patient_id: str, library: InstrumentLibrary, scores: Sequence[ScoreRecord], console: Console
) -> None:
    """Print a patient's scores, an unacknowledged safety finding in bold, and the trends.

    Args:
        patient_id: The patient.
        library: The instruments.
        scores: The patient's scores.
        console: Where to print.
    """
    from rich.table import Table
    from rich.text import Text

    from ketadose.render.wrap import Prose, fit

    table = Table(title=f"Scores of {patient_id}", title_justify="left")
    for header in ("#", "Date", "Instrument", "Items", "Total", "Band", "Safety"):
        # The item list, the safety note and the date wrap at spaces; the rest never.
        table.add_column(header, no_wrap=header not in ("Date", "Items", "Safety"))
    ordered = sorted(scores, key=lambda s: (instant(s.at), s.id or 0))
    for record, row in zip(ordered, score_rows(library, ordered), strict=True):
        instrument = library.instruments[row["instrument"]]
        safety = Text("-")
        if row["safety"]:
            flags = ", ".join(f"item {f['item']} = {f['value']}" for f in row["safety"])
            if row["needs_acknowledgement"]:
                safety = Text(f"{flags}: UNACKNOWLEDGED", style="bold")
            else:
                safety = Text(f"{flags}: acknowledged by {row['acknowledged_by']}")
        table.add_row(
            str(row["id"]),
            Prose(f"{record.at:%Y-%m-%d %H:%M} {label(record.at)}"),
            instrument.label,
            Prose("total only" if row["items"] is None else ", ".join(map(str, row["items"]))),
            str(row["total"]),
            row["band"] or "-",
            Prose(safety),
        )
    console.print(fit(table, console))
    for instrument in library.instruments.values():
        if any(s.instrument == instrument.id for s in scores):
            console.print(Text(sparkline(instrument, scores)))
