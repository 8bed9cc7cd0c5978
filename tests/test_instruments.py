"""Tests for ketadose.instruments: the shipped instruments, strict item lists, scoring, outcomes."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ketadose.errors import ConfigError, InputError
from ketadose.instruments import (
    Instrument,
    InstrumentFile,
    load_instruments,
    outcome,
    parse_items,
    parse_total,
    score,
    score_total,
)
from ketadose.libfile import read_library

DATA = Path(__file__).resolve().parents[1] / "ketadose" / "data" / "instruments.toml"
LIBRARY = load_instruments()
PHQ9 = LIBRARY.get("phq9")
GAD7 = LIBRARY.get("gad7")
PCL5 = LIBRARY.get("pcl5")
MADRS = LIBRARY.get("madrs")
ALL = tuple(LIBRARY.instruments.values())


def items_for(instrument: Instrument, total: int, *, last: int | None = None) -> list[int]:
    """Answers summing to ``total``, filled from the first item (``last`` fixes the last one)."""
    answers = [0] * instrument.items
    rest = total
    if last is not None:
        answers[-1] = last
        rest -= last
    for index in range(instrument.items - (last is not None)):
        answers[index] = min(instrument.item_max, rest)
        rest -= answers[index]
    assert rest == 0 and sum(answers) == total
    return answers


def one_line(error: BaseException) -> str:
    text = str(error)
    assert text and "\n" not in text
    return text


class TestShippedData:
    """The shipped file holds the four instruments with the numbers of clinical.md 11.2."""

    def test_instruments_and_ranges(self) -> None:
        ranges = {
            i.id: (i.items, i.item_min, i.item_max, i.total_min, i.total_max, i.rater) for i in ALL
        }
        assert ranges == {
            "phq9": (9, 0, 3, 0, 27, "patient"),
            "gad7": (7, 0, 3, 0, 21, "patient"),
            "pcl5": (20, 0, 4, 0, 80, "patient"),
            "madrs": (10, 0, 6, 0, 60, "clinician"),
        }

    def test_outcome_rules_only_where_sourced(self) -> None:
        assert MADRS.response is not None and MADRS.response.fall_pct == 50
        assert MADRS.remission is not None and MADRS.remission.at_most == 10
        for instrument in (PHQ9, GAD7, PCL5):
            assert instrument.response is None and instrument.remission is None
        assert not MADRS.bands

    def test_only_phq9_item_9_is_a_safety_item(self) -> None:
        assert [(s.item, s.at_least) for s in PHQ9.safety] == [(9, 1)]
        assert all(not i.safety for i in (GAD7, PCL5, MADRS))

    def test_only_madrs_may_be_a_total_alone(self) -> None:
        assert [i.id for i in ALL if i.total_only] == ["madrs"]

    def test_every_number_has_a_source_and_an_honest_tag(self) -> None:
        for instrument in ALL:
            records = [instrument, *instrument.bands, *instrument.safety]
            records += [r for r in (instrument.response, instrument.remission) if r is not None]
            for record in records:
                assert len(record.source) > 10
                assert record.evidence in ("HIGH", "MED")
        assert PCL5.evidence == "MED"
        assert MADRS.response is not None and MADRS.response.evidence == "MED"

    def test_no_item_text_is_shipped(self) -> None:
        document = tomllib.loads(DATA.read_text(encoding="utf-8"))
        for instrument in document["instruments"]:
            assert not {"text", "question", "questions", "item_text"} & set(instrument)
        assert "not confirmed" in MADRS.licence

    def test_a_file_with_a_gap_between_bands_is_refused(self) -> None:
        text = DATA.read_text(encoding="utf-8").replace("low = 5\nhigh = 9", "low = 6\nhigh = 9", 1)
        with pytest.raises(ConfigError, match="without gap or overlap"):
            read_library(text.encode(), "instruments.toml", InstrumentFile)

    def test_a_total_range_that_is_not_items_times_range_is_refused(self) -> None:
        text = DATA.read_text(encoding="utf-8").replace("total_max = 27", "total_max = 28", 1)
        with pytest.raises(ConfigError, match="total range"):
            read_library(text.encode(), "instruments.toml", InstrumentFile)

    def test_unknown_instrument(self) -> None:
        with pytest.raises(InputError, match="use one of gad7, madrs, pcl5, phq9"):
            LIBRARY.get("phq-9")


class TestPublishedExamples:
    """Totals fall in the bands the sources give, edges included."""

    @pytest.mark.parametrize(
        ("total", "band"),
        [
            (0, "minimal"),
            (4, "minimal"),
            (5, "mild"),
            (9, "mild"),
            (10, "moderate"),
            (14, "moderate"),
            (15, "moderately severe"),
            (19, "moderately severe"),
            (20, "severe"),
            (27, "severe"),
        ],
    )
    def test_phq9_bands(self, total: int, band: str) -> None:
        assert score(PHQ9, items_for(PHQ9, total)).band == band

    def test_phq9_the_issue_example(self) -> None:
        result = score(PHQ9, parse_items("2,2,2,2,1,1,2,1,1", PHQ9))
        assert (result.total, result.band) == (14, "moderate")
        assert [(f.item, f.value) for f in result.safety] == [(9, 1)]

    def test_phq9_all_threes_is_27_severe(self) -> None:
        result = score(PHQ9, [3] * 9)
        assert (result.total, result.band, result.items) == (27, "severe", (3,) * 9)

    @pytest.mark.parametrize(
        ("total", "band"),
        [
            (0, "minimal"),
            (4, "minimal"),
            (5, "mild"),
            (9, "mild"),
            (10, "moderate"),
            (14, "moderate"),
            (15, "severe"),
            (21, "severe"),
        ],
    )
    def test_gad7_bands(self, total: int, band: str) -> None:
        assert score(GAD7, items_for(GAD7, total)).band == band

    @pytest.mark.parametrize(
        ("total", "word"), [(30, "below"), (31, "at"), (33, "at"), (34, "above"), (80, "above")]
    )
    def test_pcl5_against_the_cut_point(self, total: int, word: str) -> None:
        band = score(PCL5, items_for(PCL5, total)).band
        assert band is not None and band.startswith(f"{word} the provisional PTSD cut-point")

    def test_pcl5_all_fours_is_80(self) -> None:
        assert score(PCL5, parse_items(",".join(["4"] * 20), PCL5)).total == 80

    @pytest.mark.parametrize(("total", "remitted"), [(10, True), (11, False), (0, True)])
    def test_madrs_remission_at_10_not_11(self, total: int, remitted: bool) -> None:
        assert outcome(MADRS, 30, total).remission is remitted

    @pytest.mark.parametrize(("total", "responded"), [(14, True), (15, True), (16, False)])
    def test_madrs_response_is_a_fall_of_at_least_half(self, total: int, responded: bool) -> None:
        # from 30: 15 is exactly a 50 % fall, 16 is 46.7 %
        assert outcome(MADRS, 30, total).response is responded

    def test_response_is_exact_at_an_odd_baseline(self) -> None:
        # 29 -> 14.5 is the half: 14 responds, 15 does not (no float rounding at the edge)
        assert outcome(MADRS, 29, 14).response is True
        assert outcome(MADRS, 29, 15).response is False
        assert outcome(MADRS, 28, 14).fall_pct == 50

    def test_no_rule_no_answer(self) -> None:
        result = outcome(PHQ9, 20, 5)
        assert (result.fall_pct, result.response, result.remission) == (75, None, None)
        assert outcome(MADRS, 0, 0).response is None

    def test_worse_is_a_negative_fall(self) -> None:
        assert outcome(MADRS, 20, 30).fall_pct == -50
        assert outcome(MADRS, 20, 30).response is False

    def test_outcome_refuses_totals_out_of_range(self) -> None:
        with pytest.raises(InputError, match="totals are 0 to 60"):
            outcome(MADRS, 61, 10)

    def test_madrs_total_alone(self) -> None:
        result = score_total(MADRS, parse_total("28", MADRS))
        assert (result.items, result.total, result.band, result.safety) == (None, 28, None, ())

    def test_madrs_items(self) -> None:
        result = score(MADRS, parse_items("3,3,3,3,3,3,3,3,3,1", MADRS))
        assert result.total == 28 and result.safety == ()


class TestSafetyItems:
    """PHQ-9 item 9 at 1 or more, and only then, raises a soft finding to acknowledge."""

    @pytest.mark.parametrize("value", [1, 2, 3])
    def test_item_9_raises(self, value: int) -> None:
        (flag,) = score(PHQ9, [0] * 8 + [value]).safety
        finding = flag.finding(PHQ9, None)
        assert (finding.severity.value, finding.code, finding.overridden) == (
            "soft",
            "phq9-item-9",
            False,
        )
        assert "must be acknowledged" in finding.message

    def test_item_9_at_0_raises_nothing_even_when_severe(self) -> None:
        assert score(PHQ9, [3] * 8 + [0]).safety == ()

    def test_acknowledged_finding_carries_the_text(self) -> None:
        (flag,) = score(PHQ9, [0] * 8 + [1]).safety
        finding = flag.finding(PHQ9, "seen, safety plan reviewed")
        assert finding.overridden and finding.override_reason == "seen, safety plan reviewed"


MALFORMED = [
    ("", "empty"),
    ("2,2,2,2,1,1,2,1", "9 items; 8 given"),
    ("2,2,2,2,1,1,2,1,1,1", "9 items; 10 given"),
    ("2,2,2,2,1,1,2,1,4", "item 9 is 4"),
    ("2,2,2,2,1,1,2,1,-1", "negative"),
    ("2,2,2,2,1,1,2,1,1.5", "not a whole number"),
    ("1.0,2,2,2,1,1,2,1,1", "not a whole number"),
    ("2,,2,2,1,1,2,1,1", "item 2 is empty"),
    (",2,2,2,1,1,2,1,1", "item 1 is empty"),
    ("2,2,2,2,1,1,2,1,1,", "ends with a comma"),
    (" 2,2,2,2,1,1,2,1,1", "whitespace"),
    ("2,2,2,2,1,1,2,1,1\n", "whitespace"),
    ("2, 2,2,2,1,1,2,1,1", "whitespace"),
    ("2;2;2;2;1;1;2;1;1", "not a whole number"),
    ("two,2,2,2,1,1,2,1,1", "not a whole number"),
    ("+2,2,2,2,1,1,2,1,1", "not a whole number"),
    ("02,2,2,2,1,1,2,1,1", "leading zero"),
    ("２,2,2,2,1,1,2,1,1", "not a whole number"),  # full-width digit
    ("2,2,2,2,1,1,2,1,1e0", "not a whole number"),
    (",", "ends with a comma"),
    ("1" * 500, "characters long"),
]


class TestMalformedItemLists:
    """Every malformed list is refused with one line naming what is wrong."""

    @pytest.mark.parametrize(("text", "says"), MALFORMED)
    def test_refused(self, text: str, says: str) -> None:
        with pytest.raises(InputError) as caught:
            parse_items(text, PHQ9)
        assert says in one_line(caught.value)

    @pytest.mark.parametrize("text", ["28.0", "-1", "61", "2,8", " 28", "", "x", "028"])
    def test_total_refused(self, text: str) -> None:
        with pytest.raises(InputError) as caught:
            parse_total(text, MADRS)
        one_line(caught.value)

    def test_total_alone_refused_for_a_self_rated_instrument(self) -> None:
        with pytest.raises(InputError, match="item by item"):
            parse_total("14", PHQ9)
        with pytest.raises(InputError, match="item by item"):
            score_total(PHQ9, 14)

    def test_score_checks_what_it_is_given(self) -> None:
        with pytest.raises(InputError, match="9 items"):
            score(PHQ9, [1] * 8)
        with pytest.raises(InputError, match="item 1"):
            score(PHQ9, [True] + [0] * 8)
        with pytest.raises(InputError, match="totals are"):
            score_total(MADRS, 61)


instruments = st.sampled_from(ALL)


@st.composite
def valid_lists(draw: st.DrawFn) -> tuple[Instrument, list[int]]:
    instrument = draw(instruments)
    answers = draw(
        st.lists(
            st.integers(instrument.item_min, instrument.item_max),
            min_size=instrument.items,
            max_size=instrument.items,
        )
    )
    return instrument, answers


class TestProperties:
    """Any valid list scores to its sum; a wrong count or an item out of range never scores."""

    @given(valid_lists())
    def test_valid_lists_score_to_the_sum(self, case: tuple[Instrument, list[int]]) -> None:
        instrument, answers = case
        result = score(instrument, parse_items(",".join(map(str, answers)), instrument))
        assert result.items == tuple(answers)
        assert result.total == sum(answers)
        assert instrument.total_min <= result.total <= instrument.total_max
        band = instrument.band(result.total)
        assert result.band == (None if band is None else band.label)
        if instrument.bands:
            assert result.band is not None

    @given(instruments, st.data())
    def test_a_wrong_count_is_refused(self, instrument: Instrument, data: st.DataObject) -> None:
        count = data.draw(st.integers(1, 60).filter(lambda n: n != instrument.items))
        answers = data.draw(
            st.lists(
                st.integers(instrument.item_min, instrument.item_max),
                min_size=count,
                max_size=count,
            )
        )
        with pytest.raises(InputError, match=f"{instrument.items} items; {count} given"):
            parse_items(",".join(map(str, answers)), instrument)

    @given(valid_lists(), st.data())
    def test_an_item_out_of_range_is_refused(
        self, case: tuple[Instrument, list[int]], data: st.DataObject
    ) -> None:
        instrument, answers = case
        position = data.draw(st.integers(0, instrument.items - 1))
        answers[position] = data.draw(
            st.integers(instrument.item_max + 1, 10**6) | st.integers(-(10**6), -1)
        )
        with pytest.raises(InputError) as caught:
            parse_items(",".join(map(str, answers)), instrument)
        assert f"item {position + 1} " in one_line(caught.value)

    @given(instruments, st.text(max_size=80))
    def test_any_text_is_parsed_or_refused_with_one_line(
        self, instrument: Instrument, text: str
    ) -> None:
        try:
            answers = parse_items(text, instrument)
        except InputError as error:
            one_line(error)
        else:
            assert ",".join(map(str, answers)) == text
