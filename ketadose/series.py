"""The previous sessions of a series, ordered once, and the windows around one session.

The series limits (the interval since the last session, the sessions in any 7 days, the dose
in any 24 h and any 7 days, the escalation step) look at the sessions near one moment. A
:class:`History` converts each moment to UTC and sorts once; every window is then found by
bisection, so a check costs the sessions near it, not the whole history, and a plan that adds
its sessions one by one (:meth:`History.adding`) grows linearly with its length.

Time is elapsed time: every moment is an instant in UTC, so a window across a daylight-saving
change is 24 h or 7 days of real time, not of wall clock.
"""

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta

from ketadose.clock import aware, instant
from ketadose.models import PreviousSession

#: The widest window a series limit looks at around a session (the 7-day count and total;
#: the 24-h total lies inside it): the other sessions a check needs are those less than this
#: before or after it, and the nearest one on each side beyond (the interval, the step).
SERIES_WINDOW = timedelta(days=7)


class History(tuple[PreviousSession, ...]):
    """Previous sessions in the order of their instants, for a :class:`CheckContext`.

    A tuple of the sessions sorted stably by their moment in UTC (sessions at one moment keep
    the order they were given in), with ``moments``, those instants in the same order. Any
    tuple of previous sessions is a history in any order; this one is ordered once.
    """

    moments: tuple[datetime, ...]

    def __new__(cls, sessions: Iterable[PreviousSession] = ()) -> "History":
        """Order ``sessions`` by their instants.

        Args:
            sessions: Previous sessions, any order.

        Raises:
            NaiveTimeError: For a session at a naive time (the first one given).
        """
        pairs = sorted(
            ((instant(aware(p.at, "a previous session")), p) for p in sessions),
            key=lambda pair: pair[0],
        )
        return cls._made(tuple(p for _, p in pairs), tuple(m for m, _ in pairs))

    @classmethod
    def _made(
        cls, sessions: tuple[PreviousSession, ...], moments: tuple[datetime, ...]
    ) -> "History":
        made = tuple.__new__(cls, sessions)
        made.moments = moments
        return made

    @classmethod
    def of(cls, sessions: tuple[PreviousSession, ...]) -> "History":
        """``sessions`` as a history: itself if it is one, else ordered now.

        Args:
            sessions: A context's previous sessions.

        Returns:
            The history.

        Raises:
            NaiveTimeError: For a session at a naive time.
        """
        return sessions if isinstance(sessions, History) else cls(sessions)

    def adding(self, session: PreviousSession) -> "History":
        """This history with one more session, put after those at its moment or before.

        The same order as sorting the sessions again with this one given last; the history
        itself is unchanged.

        Args:
            session: The session to add.

        Returns:
            The longer history.

        Raises:
            NaiveTimeError: For a session at a naive time.
        """
        moment = instant(aware(session.at, "a previous session"))
        index = bisect_right(self.moments, moment)
        return self._made(
            (*self[:index], session, *self[index:]),
            (*self.moments[:index], moment, *self.moments[index:]),
        )

    def until(self, at: datetime) -> int:
        """How many sessions are at or before ``at`` (an instant in UTC): they come first."""
        return bisect_right(self.moments, at)

    def windows(self, at: datetime, width: timedelta) -> Iterator[tuple[PreviousSession, ...]]:
        """The sessions in each window of ``width`` that contains ``at`` (an instant in UTC).

        A window starts at ``at`` or at a session less than ``width`` before it (a session at
        ``at`` included); it holds the sessions from its start to less than ``width`` after
        it. The windows come in that order: the one from ``at``, then one from each session.

        Args:
            at: The moment the windows contain.
            width: 24 h, 7 days: elapsed time.

        Yields:
            The sessions in each window, in the history's order.
        """
        for low, high in self._bounds(at, width):
            yield self[low:high]

    def busiest(self, at: datetime, width: timedelta) -> int:
        """The most sessions, one at ``at`` included, in any window of ``width`` containing it.

        Args:
            at: The session's moment (an instant in UTC).
            width: The window (elapsed time).

        Returns:
            The count.
        """
        return 1 + max(high - low for low, high in self._bounds(at, width))

    def _bounds(self, at: datetime, width: timedelta) -> Iterator[tuple[int, int]]:
        """Where each window of :meth:`windows` begins and ends in the history."""
        moments = self.moments
        first = bisect_right(moments, at - width)
        last = bisect_right(moments, at)
        for start in (at, *moments[first:last]):
            yield bisect_left(moments, start), bisect_left(moments, start + width)


def recent(moments: Sequence[datetime], at: datetime, width: timedelta) -> int:
    """How many of ``moments`` are less than ``width`` before ``at``, or after it.

    The count of ``m`` with ``at - m < width``, by bisection (no rescan of the history).

    Args:
        moments: Instants in UTC, in order.
        at: The instant counted from.
        width: Elapsed time (7 days for the weekly cap).

    Returns:
        The count.
    """
    # On the differences, so no moment near the calendar's ends overflows.
    return len(moments) - bisect_right(moments, -width, key=lambda moment: moment - at)
