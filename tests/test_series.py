"""Tests for ketadose.series: the history ordered once, and the series checks that bisect it.

The checks are compared, over generated histories, with the algorithm they replace (re-sort
and rescan the whole history for every session), kept here as the oracle.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ketadose import limits
from ketadose.clock import aware, elapsed, instant, shift
from ketadose.errors import InputError, KetadoseError
from ketadose.limits import _LABELS, _Checker, _first_session, _given_mg
from ketadose.limits import load_library as load_limits
from ketadose.models import CheckContext, DosedSession, PreviousSession, Severity
from ketadose.protocols import load_library as load_protocols
from ketadose.series import History, recent
from ketadose.units import Kind
from tests.factories import dose_for

BERLIN = ZoneInfo("Europe/Berlin")
AT = datetime(2026, 10, 24, 9, 0, tzinfo=BERLIN)  # the day before clocks go back
LIBRARY = load_limits()
PROTOCOLS = load_protocols()
# Per-kg limits (depression), mg limits and a per-kg step (esketamine-nasal), mg limits and an
# mg step (sublingual), doses measured out (oral).
CHECKED = ("depression", "esketamine-nasal", "depression-sublingual", "depression-oral")


def _dosed(protocol_id: str, weight: float | None) -> DosedSession | None:
    try:
        return dose_for(PROTOCOLS.get_protocol(protocol_id), weight)
    except KetadoseError:
        return None  # a protocol that needs a weight


SESSIONS = {
    (pid, weight): dosed
    for pid in CHECKED
    for weight in (None, 45.0, 80.0, 130.0)
    if (dosed := _dosed(pid, weight)) is not None
}

# --- the oracle: the series checks as they were, one re-sort and rescan per session ----------


def _old_windows(
    others: list[tuple[datetime, PreviousSession]], at: datetime, width: timedelta
) -> list[list[PreviousSession]]:
    starts = [at, *(moment for moment, _ in others if at - width < moment <= at)]
    return [
        [previous for moment, previous in others if start <= moment < start + width]
        for start in starts
    ]


def _old_busiest(
    others: list[tuple[datetime, PreviousSession]], at: datetime, width: timedelta
) -> int:
    return 1 + max(len(window) for window in _old_windows(others, at, width))


def _old_accumulated(
    checker: _Checker,
    session: DosedSession,
    past: list[tuple[datetime, PreviousSession]],
    at: datetime | None,
) -> None:
    kg = None if session.dosing_weight is None else session.dosing_weight.kg
    for parameter, window in (
        ("dose_per_24h", timedelta(hours=24)),
        ("dose_per_7d", timedelta(days=7)),
    ):
        limit = checker.library.limit(checker.protocol_id, "series", parameter, checker.route)
        if limit is None:
            continue
        per_kg = limit.bounds.kind is Kind.DOSE_PER_KG
        if per_kg and kg is None:
            continue
        mg_given = _given_mg(session)
        own = mg_given / kg if per_kg and kg is not None else mg_given
        worst: float | None = None
        unknown = 0
        for window_sessions in [[]] if at is None else _old_windows(past, at, window):
            total = own
            missing = 0
            for previous in window_sessions:
                mg = previous.dose_mg
                if mg is None and previous.dose_mg_per_kg is not None and kg is not None:
                    mg = previous.dose_mg_per_kg * kg
                if mg is None:
                    missing += 1
                    continue
                total += mg / kg if per_kg and kg is not None else mg
            if worst is None or (total, missing) > (worst, unknown):
                worst, unknown = total, missing
        if unknown:
            checker.note(
                Severity.INFO,
                f"{parameter.replace('_', '-')}-incomplete",
                f"{_LABELS[parameter]}: {unknown} previous session(s) without a dose are not "
                "counted",
            )
        checker.value("series", parameter, own if worst is None else worst)


def _old_check_series(checker: _Checker, session: DosedSession, context: CheckContext) -> None:
    if context.at is not None:
        aware(context.at, "the session time")
    if not context.history:
        _old_accumulated(checker, session, [], None)
        _first_session(checker, session)
        return
    if context.at is None:
        raise InputError("previous sessions need the session time to be known")
    at = instant(aware(context.at, "the session time"))
    others = sorted(
        ((instant(aware(p.at, "a previous session")), p) for p in context.history),
        key=lambda pair: pair[0],
    )
    before = [pair for pair in others if pair[0] <= at]
    after = [pair for pair in others if pair[0] > at]
    gaps = [at - before[-1][0]] if before else []
    gaps += [after[0][0] - at] if after else []
    checker.value("series", "interval", min(gaps).total_seconds() / 60)
    checker.value("series", "sessions_per_7d", float(_old_busiest(others, at, timedelta(days=7))))
    _old_accumulated(checker, session, others, at)
    if not before:
        _first_session(checker, session)
        return
    last = before[-1][1]
    kg = None if session.dosing_weight is None else session.dosing_weight.kg
    previous_per_kg = last.dose_mg_per_kg
    if previous_per_kg is None and last.dose_mg is not None and kg is not None:
        previous_per_kg = last.dose_mg / kg
    measured = None if session.measured is None else session.delivered_total_mg
    step = checker.library.limit(checker.protocol_id, "series", "escalation_step", checker.route)
    if step is not None and step.bounds.kind is Kind.DOSE:
        previous_mg = last.dose_mg
        if previous_mg is None and last.dose_mg_per_kg is not None and kg is not None:
            previous_mg = last.dose_mg_per_kg * kg
        if previous_mg is not None:
            checker.value(
                "series",
                "escalation_step",
                session.total_dose_mg - previous_mg,
                delivered=None if measured is None else measured - previous_mg,
                how="as measured",
            )
    elif previous_per_kg is not None and session.total_dose_mg_per_kg is not None:
        checker.value(
            "series",
            "escalation_step",
            session.total_dose_mg_per_kg - previous_per_kg,
            delivered=None if measured is None or kg is None else measured / kg - previous_per_kg,
            how="as measured",
        )


# --- generated histories ---------------------------------------------------------------------

# Around both daylight-saving changes of 2026 in Berlin (29 March, 25 October), 9:00 local.
ORIGINS = (datetime(2026, 3, 26, 9, 0, tzinfo=BERLIN), datetime(2026, 10, 22, 9, 0, tzinfo=BERLIN))
ZONES = (BERLIN, UTC, timezone(timedelta(hours=-5)), timezone(timedelta(hours=2)))
# Offsets on a half-hour grid, so sessions often share a moment or sit exactly 24 h, 7 days
# or the minimum interval apart; now and then off the grid by seconds.
offsets = st.one_of(
    st.integers(-21 * 48, 21 * 48).map(lambda n: timedelta(minutes=30 * n)),
    st.integers(-21 * 86_400, 21 * 86_400).map(lambda s: timedelta(seconds=s)),
)


@st.composite
def moments(draw: st.DrawFn, origin: datetime) -> datetime:
    """One moment near ``origin``, expressed in one of several zones (elapsed time is one)."""
    return shift(origin, draw(offsets)).astimezone(draw(st.sampled_from(ZONES)))


# Sessions whole hours from the session or at its window edges (a second either side), in
# elapsed time: pairs of sessions then often sit exactly 24 h or 7 days apart, too.
EDGES = tuple(
    sign * (width + timedelta(seconds=second))
    for width in (timedelta(hours=20), timedelta(hours=24), timedelta(hours=40), timedelta(days=7))
    for second in (-1, 0, 1)
    for sign in (-1, 1)
)


def near(at: datetime) -> st.SearchStrategy[datetime]:
    """A moment at an edge of ``at``'s windows, or whole hours from it, in some zone."""
    return st.tuples(
        st.one_of(
            st.sampled_from(EDGES),
            st.integers(-8 * 24, 8 * 24).map(lambda h: timedelta(hours=h)),
        ),
        st.sampled_from(ZONES),
    ).map(lambda pair: shift(at, pair[0]).astimezone(pair[1]))


doses = st.one_of(st.none(), st.floats(0, 400, allow_nan=False))
per_kg = st.one_of(st.none(), st.floats(0, 3, allow_nan=False))


@st.composite
def histories(draw: st.DrawFn) -> tuple[DosedSession, CheckContext]:
    """A session and its context: previous sessions in any order, on both sides of it."""
    origin = draw(st.sampled_from(ORIGINS))
    session = SESSIONS[draw(st.sampled_from(sorted(SESSIONS, key=str)))]
    at = draw(moments(origin))
    previous = draw(
        st.lists(
            st.builds(
                PreviousSession,
                at=st.one_of(
                    moments(origin),
                    near(at),
                    st.just(at - timedelta(hours=24)),  # on the wall: 23 or 25 h across a change
                ),
                dose_mg=doses,
                dose_mg_per_kg=per_kg,
            ),
            max_size=14,
        )
    )
    # A session repeated at one moment without a dose: ties keep the order they were given in.
    repeat = draw(st.booleans())
    if previous and repeat:
        twin = draw(st.sampled_from(previous))
        previous.insert(draw(st.integers(0, len(previous))), PreviousSession(at=twin.at))
    return session, CheckContext(at=at, history=tuple(previous))


def _run(
    series: Callable[[_Checker, DosedSession, CheckContext], None],
    session: DosedSession,
    context: CheckContext,
) -> tuple[str, str]:
    checker = _Checker(LIBRARY, session.protocol.id, session.protocol.route)
    try:
        series(checker, session, context)
    except KetadoseError as error:
        return "raised", f"{type(error).__name__}: {error}"
    return "found", repr(checker.findings)


class TestSameFindings:
    """The one-pass checks find exactly what the re-sorting checks found."""

    @settings(max_examples=400)
    @given(histories())
    def test_generated_histories(self, case: tuple[DosedSession, CheckContext]) -> None:
        """Same findings, messages and values, over any order, duplicates and back-filling."""
        session, context = case
        expected = _run(_old_check_series, session, context)
        assert _run(limits._check_series, session, context) == expected
        # A history ordered in advance (as a plan passes it) is read the same way.
        ordered = CheckContext(at=context.at, history=History(context.history))
        assert _run(limits._check_series, session, ordered) == expected

    @given(histories(), st.data())
    def test_naive_and_missing_times(
        self, case: tuple[DosedSession, CheckContext], data: st.DataObject
    ) -> None:
        """A naive previous session or a missing session time fails with the same message."""
        session, context = case
        if data.draw(st.booleans()) or not context.history:
            broken = CheckContext(at=None, history=(*context.history, PreviousSession(at=AT)))
        else:
            naive = PreviousSession(
                at=data.draw(st.sampled_from(context.history)).at.replace(tzinfo=None)
            )
            broken = CheckContext(at=context.at, history=(*context.history, naive))
        expected = _run(_old_check_series, session, broken)
        assert expected[0] == "raised"
        assert _run(limits._check_series, session, broken) == expected

    def test_window_edges(self) -> None:
        """24 h after a session is outside its 24-h window; 24 h less a second is inside.

        Elapsed hours, across the night the clocks go back (AT + 24 h on the wall is 25 h).
        """
        session = SESSIONS[("depression", 80.0)]
        own = session.total_dose_mg_per_kg
        assert own is not None
        previous = PreviousSession(at=AT, dose_mg=100.0)  # 1.25 mg/kg: with this one, > 1.5
        for apart, expected in (
            (timedelta(hours=24), []),
            (timedelta(hours=24, seconds=-1), [pytest.approx(own + 1.25)]),
        ):
            context = CheckContext(at=shift(AT, apart), history=(previous,))
            findings = limits.check(session, LIBRARY, context)
            totals = [f.value for f in findings if f.parameter == "series.dose_per_24h"]
            assert totals == expected
            assert _run(limits._check_series, session, context) == _run(
                _old_check_series, session, context
            )


class TestHistory:
    """A history is its sessions ordered by instant, however it was built."""

    @given(st.lists(st.builds(PreviousSession, at=moments(ORIGINS[1])), max_size=20))
    def test_adding_is_sorting(self, sessions: list[PreviousSession]) -> None:
        """Adding one by one (back-filled ones included) gives the stable sort of all."""
        grown = History()
        for session in sessions:
            grown = grown.adding(session)
        expected = sorted(sessions, key=lambda s: instant(s.at))
        assert list(grown) == expected
        assert list(History(sessions)) == expected
        assert grown.moments == tuple(instant(s.at) for s in expected)
        assert History.of(grown) is grown

    def test_same_moment_keeps_the_order_given(self) -> None:
        """Sessions at one instant, in two zones, stay in the order they were added."""
        first = PreviousSession(at=AT, dose_mg=1.0)
        second = PreviousSession(at=AT.astimezone(UTC), dose_mg=2.0)
        assert [s.dose_mg for s in History().adding(first).adding(second)] == [1.0, 2.0]
        assert [s.dose_mg for s in History([second, first])] == [2.0, 1.0]

    def test_windows_across_the_change(self) -> None:
        """A 24-h window across the night clocks go back is 24 h of real time (25 on the wall)."""
        before = PreviousSession(at=AT)  # Saturday 9:00 CEST
        history = History([before])
        sunday = datetime(2026, 10, 25, 8, 0, tzinfo=BERLIN)  # 24 h later, 8:00 CET
        assert [len(w) for w in history.windows(instant(sunday), timedelta(hours=24))] == [0]
        earlier = sunday - timedelta(seconds=1)
        assert history.busiest(instant(earlier), timedelta(hours=24)) == 2

    def test_naive_session_refused(self) -> None:
        """A naive previous session is refused when it joins a history."""
        with pytest.raises(KetadoseError, match="a previous session"):
            History().adding(PreviousSession(at=datetime(2026, 10, 24, 9, 0)))


class TestRecent:
    """The weekly count by bisection is the count of a rescan."""

    @given(st.lists(moments(ORIGINS[0]), max_size=30), moments(ORIGINS[0]))
    def test_count(self, taken: list[datetime], at: datetime) -> None:
        """Sessions less than 7 days before ``at`` (or after it) are counted, no others."""
        week = timedelta(days=7)
        ordered = sorted(instant(m) for m in taken)
        assert recent(ordered, instant(at), week) == len(
            [m for m in taken if elapsed(at, m) < week]
        )

    def test_ends_of_the_calendar(self) -> None:
        """A moment in the first week of year 1 counts without overflowing."""
        first = datetime(1, 1, 2, tzinfo=UTC)
        assert recent([first], first, timedelta(days=7)) == 1
