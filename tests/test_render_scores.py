"""Tests for ketadose.render.scores: trends (sparkline, rows, CSV, SVG) and ``score show``."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from ketadose.errors import StoreError
from ketadose.instruments import Instrument, load_instruments
from ketadose.render.scores import (
    BLOCKS,
    TREND_COLUMNS,
    scores_json,
    scores_table,
    sparkline,
    trend_chart,
    trend_csv,
    trend_rows,
)
from ketadose.scores import ScoreRecord

LIBRARY = load_instruments()
PHQ9 = LIBRARY.get("phq9")
MADRS = LIBRARY.get("madrs")
PCL5 = LIBRARY.get("pcl5")
T0 = datetime(2026, 12, 7, 8, 50, tzinfo=ZoneInfo("Europe/Berlin"))

# PHQ-9 totals 27, 14, 9, 0 a week apart; only the first has item 9 above 0.
PHQ9_ITEMS = [
    (3, 3, 3, 3, 3, 3, 3, 3, 3),
    (3, 3, 3, 3, 2, 0, 0, 0, 0),
    (3, 3, 3, 0, 0, 0, 0, 0, 0),
    (0, 0, 0, 0, 0, 0, 0, 0, 0),
]


def phq9_series() -> list[ScoreRecord]:
    return [
        ScoreRecord("P1", T0 + timedelta(days=7 * n), "phq9", items, sum(items), id=n + 1)
        for n, items in enumerate(PHQ9_ITEMS)
    ]


def madrs_series() -> list[ScoreRecord]:
    return [
        ScoreRecord("P1", T0 + timedelta(days=7), "madrs", None, 28, id=9),
        ScoreRecord("P1", T0 + timedelta(days=14), "madrs", None, 10, id=10),
    ]


class TestSparkline:
    """One block per score on the instrument's own range, oldest first, other instruments out."""

    def test_phq9(self) -> None:
        assert sparkline(PHQ9, phq9_series()) == "PHQ-9 █▅▃▁ 27 -> 0 (of 27)"

    def test_scale_is_the_instruments_not_the_datas(self) -> None:
        flat = [
            ScoreRecord("P1", T0 + timedelta(days=n), "madrs", None, 30, id=n) for n in range(3)
        ]
        assert sparkline(MADRS, flat) == "MADRS ▅▅▅ 30 -> 30 (of 60)"

    def test_mixed_and_unordered_input(self) -> None:
        mixed = [*reversed(phq9_series()), *madrs_series()]
        assert sparkline(MADRS, mixed) == "MADRS ▄▂ 28 -> 10 (of 60)"
        assert sparkline(PHQ9, mixed) == "PHQ-9 █▅▃▁ 27 -> 0 (of 27)"

    def test_one_and_none(self) -> None:
        assert sparkline(PHQ9, phq9_series()[:1]) == "PHQ-9 █ 27 (of 27)"
        assert sparkline(PCL5, phq9_series()) == "PCL-5 (no scores)"

    @given(st.sampled_from([PHQ9, MADRS, PCL5]), st.data())
    def test_blocks_are_nearest_on_the_range_and_rise_with_the_total(
        self, instrument: Instrument, data: st.DataObject
    ) -> None:
        low = data.draw(st.integers(instrument.total_min, instrument.total_max))
        high = data.draw(st.integers(low, instrument.total_max))
        line = sparkline(
            instrument,
            [
                ScoreRecord("P1", T0, instrument.id, None, low, id=1),
                ScoreRecord("P1", T0 + timedelta(days=1), instrument.id, None, high, id=2),
            ],
        )
        a, b = (BLOCKS.index(c) for c in line.split(" ")[1])
        assert a <= b
        span = instrument.total_max - instrument.total_min
        assert abs(a - (low - instrument.total_min) * 7 / span) <= 0.5
        assert sparkline(instrument, []).endswith("(no scores)")


class TestTrendColumns:
    """Rows and CSV for scripts: change from the first score; response/remission only if sourced."""

    def test_rows(self) -> None:
        rows = trend_rows(MADRS, madrs_series())
        assert rows == [
            {
                "date": "2026-12-14T08:50:00+01:00",
                "instrument": "madrs",
                "total": 28,
                "band": None,
                "change_from_first_pct": 0,
                "response": False,
                "remission": False,
                "safety_items": [],
                "acknowledged": None,
            },
            {
                "date": "2026-12-21T08:50:00+01:00",
                "instrument": "madrs",
                "total": 10,
                "band": None,
                "change_from_first_pct": 64.2857142857143,
                "response": True,
                "remission": True,
                "safety_items": [],
                "acknowledged": None,
            },
        ]
        assert tuple(rows[0]) == TREND_COLUMNS

    def test_csv(self) -> None:
        assert trend_csv(PHQ9, phq9_series()) == (
            "date,instrument,total,band,change_from_first_pct,response,remission,"
            "safety_items,acknowledged\r\n"
            "2026-12-07T08:50:00+01:00,phq9,27,severe,0,,,9,no\r\n"
            "2026-12-14T08:50:00+01:00,phq9,14,moderate,48.1481481481481,,,,\r\n"
            "2026-12-21T08:50:00+01:00,phq9,9,mild,66.6666666666667,,,,\r\n"
            "2026-12-28T08:50:00+01:00,phq9,0,minimal,100,,,,\r\n"
        )

    def test_a_stored_score_that_does_not_fit_is_a_store_error(self) -> None:
        bad = [ScoreRecord("P1", T0, "phq9", (3,) * 8, 24, id=4)]
        with pytest.raises(StoreError, match="does not fit PHQ-9"):
            trend_rows(PHQ9, bad)


MADRS_SVG = """\
<svg class="chart trend" role="img" aria-label="MADRS total (0-60)" viewBox="0 0 640 200" \
width="640" height="200" font-family="sans-serif" font-size="11">
<title>MADRS total (0-60)</title>
<text x="40" y="16" font-size="13" font-weight="bold">MADRS total (0-60)</text>
<line x1="40" y1="148.33" x2="490" y2="148.33" stroke="#999" stroke-width="0.5" \
stroke-dasharray="3,3"/>
<text x="494" y="152.33">remission &lt;= 10</text>
<text x="34" y="176" text-anchor="end">0</text>
<text x="34" y="34" text-anchor="end">60</text>
<polyline fill="none" stroke="#000" stroke-width="1.5" points="40,105.73 490,148.33"/>
<circle cx="40" cy="105.73" r="3" fill="#000"/><text x="40" y="98.73" \
text-anchor="middle">28</text>
<circle cx="490" cy="148.33" r="3" fill="#000"/><text x="490" y="141.33" \
text-anchor="middle">10</text>
<line x1="40" y1="172" x2="490" y2="172" stroke="#000"/>
<line x1="40" y1="30" x2="40" y2="172" stroke="#000"/>
<text x="40" y="190">2026-12-14</text>
<text x="490" y="190" text-anchor="end">2026-12-21</text>
</svg>"""


class TestChart:
    """The HTML sheet's chart: the instrument's full range, band edges, no URL, stable bytes."""

    def test_madrs_exactly(self) -> None:
        assert trend_chart(MADRS, madrs_series()) == MADRS_SVG

    def test_phq9_band_edges_are_labelled(self) -> None:
        svg = trend_chart(PHQ9, phq9_series())
        for text in ("5: mild", "10: moderate", "15: moderately severe", "20: severe"):
            assert f">{text}</text>" in svg
        assert 'points="40,30 190,98.37 340,124.67 490,172"' in svg
        assert "http" not in svg and "<script" not in svg

    def test_long_or_crowded_labels_are_shortened_not_overlapped(self) -> None:
        svg = trend_chart(PCL5, [ScoreRecord("P1", T0, "pcl5", (2,) * 20, 40, id=1)])
        assert '<text x="494" y="120.97">31</text>' in svg
        assert svg.count('stroke-dasharray="3,3"') == 2  # 31 and 34: one label
        assert svg.count('x="494"') == 1

    def test_no_scores_no_chart(self) -> None:
        assert trend_chart(PCL5, phq9_series()) == ""


class TestScoreShow:
    """``score show``: every score with its band, unacknowledged findings loud, then the trends."""

    def test_json(self) -> None:
        acknowledged = ScoreRecord(
            "P1", T0, "phq9", PHQ9_ITEMS[0], 27, "dr.x", T0 + timedelta(minutes=5), "seen", id=1
        )
        data = json.loads(scores_json("P1", LIBRARY, [acknowledged, *madrs_series()]))
        assert data["schema_version"] == 2
        assert data["instruments"]["path"] == "ketadose/data/instruments.toml"
        first = data["scores"][0]
        assert first["band"] == "severe"
        assert first["safety"] == [
            {
                "item": 9,
                "value": 3,
                "at_least": 1,
                "label": "item 9 (thoughts of being better off dead or of self-harm)",
            }
        ]
        assert first["needs_acknowledgement"] is False
        assert first["acknowledged_at"] == "2026-12-07T08:55:00+01:00"
        assert [s["id"] for s in data["scores"]] == [1, 9, 10]
        assert sorted(data["trends"]) == ["madrs", "phq9"]

    def test_table_says_unacknowledged(self) -> None:
        buffer = io.StringIO()
        console = Console(file=buffer, width=100, color_system=None)
        scores_table("P1", LIBRARY, [*phq9_series(), *madrs_series()], console)
        text = buffer.getvalue()
        assert "UNACKNOWLEDGED" in text
        assert "3, 3," in text  # the items wrap at the spaces between them
        assert "2026-12-07 08:50 CET" in text
        assert text.rstrip().endswith("PHQ-9 █▅▃▁ 27 -> 0 (of 27)\nMADRS ▄▂ 28 -> 10 (of 60)")

    def test_unknown_stored_instrument_is_a_store_error(self) -> None:
        with pytest.raises(StoreError, match="unknown instrument 'qids'"):
            scores_json("P1", LIBRARY, [ScoreRecord("P1", T0, "qids", None, 3, id=1)])
