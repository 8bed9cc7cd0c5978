"""A continuous inpatient titration: the ladder of rates within one stay, and the next rate.

Pure: no clock, no I/O, no limit library. A protocol with a ``[titration]`` (migraine,
Lauritsen 2016) is one infusion whose rate steps up within one stay. :func:`ladder` lays out
its rungs (``start + n * step`` up to the maximum) with what each rate rests on;
:func:`next_rate` decides, at a moment of the stay, whether to hold, step up, reduce or stop,
and names the rule that decided. Neither checks a limit: the caller passes each rate through
the gate (``ketadose.gate``) like every other dose.

The rules of :func:`next_rate`, in order of precedence (each with its source in the protocol):

1. ``not-tolerated``: reduce by one step; at the start rate, stop. Never up.
2. ``maximum-stay``: the stay has lasted its maximum: stop.
3. ``above-maximum``: a rate above the protocol's maximum is reduced to it.
4. ``no-score``: no pain score since the last step: hold (never up without one).
5. ``target-held``: the score has been at or below the target for the hold time: the target
   is reached, hold the rate and step no further.
6. ``at-target``: the latest score is at or below the target: hold.
7. ``interval``: the step interval has not elapsed since the last step: hold until then.
8. ``maximum``: already at the maximum: hold.
9. ``step-up``: one step up, never past the maximum.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from ketadose.clock import aware, elapsed, shift
from ketadose.errors import InputError
from ketadose.protocols import Protocol, Titration
from ketadose.units import format_number

#: Rates closer than this (mg/kg/h) are the same rate: 0.1 + 0.2 is 0.3.
EPSILON = 1e-9

Action = Literal["hold", "step-up", "reduce", "stop", "target-reached"]
Rule = Literal[
    "not-tolerated",
    "maximum-stay",
    "above-maximum",
    "no-score",
    "target-held",
    "at-target",
    "interval",
    "maximum",
    "step-up",
]


@dataclass(frozen=True, slots=True)
class Rung:
    """One rate of the ladder.

    Attributes:
        number: 1 for the start rate.
        rate_mg_per_kg_h: The rate.
        at_min: When it may start at the earliest, minutes into the infusion.
        basis: What the rate rests on, in words.
        evidence: The evidence tag of that basis (COMPUTED for a rate no cohort reached).
    """

    number: int
    rate_mg_per_kg_h: float
    at_min: float
    basis: str
    evidence: str


@dataclass(frozen=True, slots=True)
class TitrationStep:
    """The decision of :func:`next_rate`.

    Attributes:
        action: ``hold``, ``step-up``, ``reduce``, ``stop`` or ``target-reached`` (hold the rate,
            the end point is met, step no further).
        rate_mg_per_kg_h: The rate to run from now (0 for ``stop``).
        current_rate_mg_per_kg_h: The rate running now.
        rule: The rule that decided (see the module's list).
        reason: The decision in words.
        source: Where the rule comes from (the protocol's data).
        evidence: Its evidence tag.
        not_before: The earliest moment of the next step up (None when none may follow).
        target_since: When the score's current run at or below the target began, or None.
    """

    action: Action
    rate_mg_per_kg_h: float
    current_rate_mg_per_kg_h: float
    rule: Rule
    reason: str
    source: str
    evidence: str
    not_before: datetime | None
    target_since: datetime | None

    @property
    def changes_rate(self) -> bool:
        """Whether the rate to run differs from the running one."""
        return abs(self.rate_mg_per_kg_h - self.current_rate_mg_per_kg_h) > EPSILON


def titration_of(protocol: Protocol) -> Titration:
    """The protocol's titration.

    Args:
        protocol: A protocol.

    Returns:
        Its ``[titration]``.

    Raises:
        InputError: When the protocol has none (it is not a continuous titration).
    """
    if protocol.titration is None:
        raise InputError(f'protocol "{protocol.id}" is not a continuous titration')
    return protocol.titration


def ladder(titration: Titration, interval_min: float | None = None) -> tuple[Rung, ...]:
    """The rungs of the ladder, each at the earliest time into the infusion it may start.

    Args:
        titration: The protocol's titration.
        interval_min: Minutes between steps (default: the source's lower bound); never
            shorter than that bound.

    Returns:
        One rung per rate from the start to the maximum.

    Raises:
        InputError: For an interval shorter than the protocol's shortest.
    """
    shortest = titration.interval.low.value
    every = shortest if interval_min is None else interval_min
    if every < shortest - EPSILON:
        raise InputError(
            f"steps {format_number(every)} min apart: the protocol's shortest interval is "
            f"{titration.interval.low}"
        )
    return tuple(
        Rung(number, rate, (number - 1) * every, *_basis(titration, rate))
        for number, rate in enumerate(titration.rungs, 1)
    )


def _basis(titration: Titration, rate: float) -> tuple[str, str]:
    """What a rung rests on: the start, a rate a cohort reached, the maximum, or the rule."""
    if abs(rate - titration.start.rate.value) <= EPSILON:
        return f"the start rate ({titration.start.source})", titration.start.evidence
    for observed in titration.observed:
        if observed.low.value - EPSILON <= rate <= observed.high.value + EPSILON:
            return (
                f"within the {observed.what}, {observed.low}-{observed.high} ({observed.source})",
                observed.evidence,
            )
    if abs(rate - titration.maximum.rate.value) <= EPSILON:
        return f"the maximum ({titration.maximum.source})", titration.maximum.evidence
    return (
        f"above every rate a cohort is reported at: the step rule ({titration.step.rate} "
        f"per step) continued toward the {titration.maximum.rate} maximum",
        "COMPUTED",
    )


def next_rate(
    protocol: Protocol,
    *,
    started: datetime,
    at: datetime,
    current_rate_mg_per_kg_h: float,
    last_step_at: datetime,
    pain_scores: Sequence[tuple[datetime, float]],
    tolerated: bool,
    min_interval: timedelta | None = None,
) -> TitrationStep:
    """Decide the rate from ``at`` within one stay: hold, step up, reduce or stop.

    Args:
        protocol: A protocol with a ``[titration]``.
        started: When the infusion started (aware).
        at: Now (aware), not before ``last_step_at``.
        current_rate_mg_per_kg_h: The rate running now.
        last_step_at: When the rate last changed (the start, for the first rung).
        pain_scores: ``(time, score)`` pairs on the protocol's scale, none after ``at``.
        tolerated: Whether the infusion is tolerated now (the caller's evidence: readings
            within the during-session limits, no adverse event of moderate grade or worse).
        min_interval: The time between steps the caller keeps (e.g. the longer of the
            protocol's and the limit library's minimum); never shorter than the protocol's.

    Returns:
        The decision, with the rule that decided and its source.

    Raises:
        InputError: For a protocol without a titration, naive or out-of-order times, a rate
            at or below 0, or a score outside the scale.
    """
    titration = titration_of(protocol)
    started = aware(started, "the start of the infusion")
    at = aware(at, "the time of the decision")
    last_step_at = aware(last_step_at, "the last step")
    if elapsed(last_step_at, started) < timedelta(0):
        raise InputError("the last step is before the start of the infusion")
    if elapsed(at, last_step_at) < timedelta(0):
        raise InputError("the decision is before the last step")
    current = current_rate_mg_per_kg_h
    if not current > 0:
        raise InputError(f"a running rate above 0 mg/kg/h is needed, not {current}")
    scores = _scores(titration, pain_scores, at)

    step = titration.step.rate.value
    top = titration.maximum.rate.value
    start = titration.start.rate.value
    interval = timedelta(minutes=titration.interval.low.value)
    if min_interval is not None and min_interval > interval:
        interval = min_interval
    target = titration.target
    since = _target_since(scores, target.score_max)

    def decided(
        action: Action,
        rate: float,
        rule: Rule,
        reason: str,
        source: str,
        evidence: str,
        not_before: datetime | None = None,
    ) -> TitrationStep:
        return TitrationStep(
            action=action,
            # Hold keeps the running rate exactly; a change is cleaned of float noise.
            rate_mg_per_kg_h=rate if action in ("hold", "target-reached") else round(rate, 9),
            current_rate_mg_per_kg_h=current,
            rule=rule,
            reason=reason,
            source=source,
            evidence=evidence,
            not_before=not_before,
            target_since=since,
        )

    now = _rate_text(current)
    if not tolerated:
        lower = current - step
        if lower < start - EPSILON:
            return decided(
                "stop",
                0.0,
                "not-tolerated",
                f"not tolerated at {now}, the start rate: stop the infusion",
                titration.untolerated.source,
                titration.untolerated.evidence,
            )
        return decided(
            "reduce",
            lower,
            "not-tolerated",
            f"not tolerated at {now}: reduce by one step to {_rate_text(lower)}",
            titration.untolerated.source,
            titration.untolerated.evidence,
        )
    if elapsed(at, started) >= timedelta(minutes=titration.stay.maximum.value):
        return decided(
            "stop",
            0.0,
            "maximum-stay",
            f"the infusion has run {titration.stay.maximum}, the longest stay: stop and reassess",
            titration.stay.source,
            titration.stay.evidence,
        )
    if current > top + EPSILON:
        return decided(
            "reduce",
            top,
            "above-maximum",
            f"{now} is above the protocol's {titration.maximum.rate} maximum: reduce to it",
            titration.maximum.source,
            titration.maximum.evidence,
        )
    if not any(elapsed(when, last_step_at) > timedelta(0) for when, _ in scores):
        return decided(
            "hold",
            current,
            "no-score",
            f"no pain score since the last step: hold {now} (never up without one)",
            titration.source,
            titration.evidence,
        )
    latest_at, latest = scores[-1]
    goal = f"{format_number(target.score_max)}/{format_number(target.scale_max)}"
    if latest <= target.score_max:
        assert since is not None  # the latest score is in the run
        held = elapsed(latest_at, since)
        if held >= timedelta(minutes=target.hold.value):
            return decided(
                "target-reached",
                current,
                "target-held",
                f"pain <= {goal} held for {target.hold} since {since.isoformat()}: the target "
                f"is reached; hold {now} and step no further",
                target.source,
                target.evidence,
            )
        return decided(
            "hold",
            current,
            "at-target",
            f"pain {format_number(latest)} <= {goal}: hold {now} until it has held for "
            f"{target.hold}",
            target.source,
            target.evidence,
        )
    due = shift(last_step_at, interval)
    if elapsed(at, last_step_at) < interval:
        return decided(
            "hold",
            current,
            "interval",
            f"pain {format_number(latest)} > {goal}, but the last step was less than "
            f"{_minutes_text(interval)} ago: hold {now} until {due.isoformat()}",
            titration.interval.source,
            titration.interval.evidence,
            not_before=due,
        )
    if current >= top - EPSILON:
        return decided(
            "hold",
            current,
            "maximum",
            f"pain {format_number(latest)} > {goal} at the protocol's {titration.maximum.rate} "
            "maximum: hold, never above it",
            titration.maximum.source,
            titration.maximum.evidence,
        )
    higher = min(current + step, top)
    return decided(
        "step-up",
        higher,
        "step-up",
        f"pain {format_number(latest)} > {goal}, tolerated, {_minutes_text(interval)} since "
        f"the last step: one step up to {_rate_text(higher)}",
        titration.step.source,
        titration.step.evidence,
        not_before=shift(at, interval),
    )


def _scores(
    titration: Titration, pain_scores: Sequence[tuple[datetime, float]], at: datetime
) -> list[tuple[datetime, float]]:
    """The scores, checked (aware, on the scale, not after ``at``) and in time order."""
    top = titration.target.scale_max
    checked = []
    for when, score in pain_scores:
        moment = aware(when, "a pain score's time")
        if isinstance(score, bool) or not isinstance(score, int | float):
            raise InputError(f"a pain score is a number from 0 to {format_number(top)}")
        if not 0 <= score <= top:
            raise InputError(
                f"pain score {score}: {titration.scale} runs from 0 to {format_number(top)}"
            )
        if elapsed(moment, at) > timedelta(0):
            raise InputError(f"a pain score at {moment.isoformat()} is after the decision")
        checked.append((moment, float(score)))
    return sorted(checked, key=lambda pair: elapsed(pair[0], at))


def _target_since(scores: list[tuple[datetime, float]], target: float) -> datetime | None:
    """When the run of scores at or below ``target`` that ends with the latest one began."""
    since = None
    for when, score in reversed(scores):
        if score > target:
            break
        since = when
    return since


def _rate_text(rate: float) -> str:
    return f"{format_number(rate, 0.001)} mg/kg/h"


def _minutes_text(span: timedelta) -> str:
    minutes = span.total_seconds() / 60
    if minutes % 60 == 0:
        return f"{format_number(minutes / 60)} h"
    return f"{format_number(minutes)} min"
