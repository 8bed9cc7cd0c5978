"""The next session, decided on evidence: each rule written down, sourced and tested.

Pure. The dose levels of a protocol (its *ladder*) are its programme (level 0) and each
escalation step in order (levels 1, 2, ...), all on **one dosing basis**: the dosing weight
in kg the sessions were dosed on (the last session's, recorded or mg over mg/kg), so a step of
+0.25 mg/kg is on that same weight. Changing the basis is a decision of its own
(``rebase``), and the output says so, as it says when today's weight would give another.

The rules, in order of precedence (:data:`RULES` gives each with its source):

1. no session yet: **start** at level 0;
2. a life-threatening adverse event at the last session: **stop**;
3. a severe adverse event, a reading past a hard during-session limit (answered again against
   the limits, never trusted as recorded), or an infusion stopped early: **reduce** one rung,
   or **stop** at the first rung;
4. an adverse event recorded without a grade: **reassess** (grade it first);
5. a gap longer than the protocol's ``rules.max_gap``: **reassess**;
6. the protocol's futility rule (an option), judged on a score taken after its infusion:
   **reassess**;
7. the induction series complete without response: **reassess**;
8. responding (improvement at or above the threshold, or at the absolute target): **hold**;
9. a scheduled titration step due, the last session tolerated: **titrate** one rung;
10. tolerability not in evidence (a scheduled blood pressure missing, a moderate event, a soft
    limit passed): **hold**;
11. no score to judge by, or no response rule: **hold**;
12. at the top of the ladder: **hold**;
13. fewer than ``rules.sessions_per_step`` sessions (distinct start times) at this dose:
    **hold**;
14. below the threshold after enough sessions at this dose, every one tolerated:
    **escalate** one rung.

A dose off the ladder that cannot be repeated as one dose is **reassessed**, never proposing
more than was given. A protocol with a continuous titration (migraine) decides within the stay
instead (:func:`ketadose.titration.next_rate`): step up, hold, reduce or stop, and reassess
once the stay is over.

**Hold never changes the dose**: it repeats the last session's dose on its basis, on the
ladder or not. Escalation and titration go one rung at most and never past the top. Every
recommendation passes the gate; one that would cross a hard limit (or the library's
escalation step) falls back to hold, and the reason shown is the finding that blocked it.
Reduce, reassess and stop are never ready: no pump programme is shown (exit 3; stop exit 4).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal, Protocol

from pydantic import AwareDatetime, BaseModel, ConfigDict

from ketadose.clock import aware, elapsed, instant, shift
from ketadose.dosing import DoseRequest, at_step, session_dose
from ketadose.errors import InputError
from ketadose.gate import Prepared, Verdict, checked, held_back, prepare_session, seal
from ketadose.gate import decide as gate_decide
from ketadose.libfile import Quantity
from ketadose.limits import LimitLibrary
from ketadose.models import (
    CheckContext,
    Finding,
    Patient,
    PhaseDose,
    PreviousSession,
    Real,
    Sealed,
    SessionDose,
    Severity,
    Status,
    WeightPolicy,
)
from ketadose.monitoring import Tolerability, tolerability
from ketadose.planning import minimum_gap, weekly_cap
from ketadose.protocols import EscalationStep, ProtocolEntry
from ketadose.records import PatientRecord, SessionRecord, improvement_pct
from ketadose.series import History, recent
from ketadose.units import Kind, format_number

Decision = Literal["start", "escalate", "titrate", "hold", "reduce", "stop", "reassess"]
#: The decisions after which the recommended programme may start (if the gate agrees).
GOES_AHEAD: tuple[Decision, ...] = ("start", "escalate", "titrate", "hold")
DEFAULT_SESSIONS_PER_STEP = 3
#: Tolerance when matching a dose to a rung of the ladder (the rounding of drawn volumes).
LEVEL_TOLERANCE = 0.02
#: How far today's dosing weight may differ from the sessions' basis before it is said.
BASIS_TOLERANCE = 0.01


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule of the decision procedure.

    Attributes:
        id: Stable identifier (in ``next --json`` as ``rule``).
        decision: What it decides.
        text: The rule.
        source: Where it comes from, with its evidence.
    """

    id: str
    decision: Decision
    text: str
    source: str


RULES: tuple[Rule, ...] = (
    Rule(
        "start",
        "start",
        "No session given yet: start at the protocol's programme.",
        "The protocol's own phases and their sources.",
    ),
    Rule(
        "stop-life-threatening",
        "stop",
        "A life-threatening adverse event (CTCAE grade 4) at the last session: stop; no "
        "further dose without a new assessment.",
        "CTCAE v5.0 (grade 4: urgent intervention indicated) [HIGH]; the stop is SITE-POLICY.",
    ),
    Rule(
        "reduce",
        "reduce",
        "A severe adverse event (CTCAE grade 3), a reading past a hard during-session limit, "
        "or an infusion stopped early: reduce one rung, for a clinician to review; never "
        "ready to start.",
        "SITE-POLICY: no guideline sets a dose-reduction rule (the sources give no "
        "consensus stop values either; Ketalar PI: continuous vital-sign monitoring [HIGH]).",
    ),
    Rule(
        "stop-first-rung",
        "stop",
        "As for reduce, when the last dose was at or below the protocol's first rung: stop.",
        "SITE-POLICY.",
    ),
    Rule(
        "reassess-ungraded",
        "reassess",
        "An adverse event recorded without a grade: reassess; grade it before deciding.",
        "SITE-POLICY: an event that cannot be read is never guessed.",
    ),
    Rule(
        "reassess-gap",
        "reassess",
        "More time since the last session than the protocol's max_gap: reassess.",
        "The protocol's rules.max_gap and its source.",
    ),
    Rule(
        "futility",
        "reassess",
        "The protocol's futility rule (an option): improvement below its threshold after its "
        "session: reassess.",
        "The protocol's rules.futility and its source (shipped: Translational Psychiatry "
        "2024 [MED]).",
    ),
    Rule(
        "reassess-series",
        "reassess",
        "The induction series complete without response: reassess.",
        "The protocol's series and response, with their sources.",
    ),
    Rule(
        "hold-responding",
        "hold",
        "Responding (improvement at or above the threshold, or at or below the absolute "
        "target): hold the dose.",
        "The protocol's response and its source.",
    ),
    Rule(
        "titrate",
        "titrate",
        "A scheduled titration step is due and the last session was tolerated (on "
        "evidence): one rung up.",
        "The protocol's scheduled escalation steps and their sources.",
    ),
    Rule(
        "hold-not-tolerated",
        "hold",
        "Tolerability not in evidence: a scheduled reading missing, a reading past a soft "
        "limit, or an adverse event of moderate grade: hold; no escalation.",
        "SITE-POLICY, on the escalation condition 'if tolerated' (Cusin 2017 [MED]).",
    ),
    Rule(
        "hold-no-score",
        "hold",
        "No score at the last session, or no response rule, to judge by: hold.",
        "SITE-POLICY: escalation is response-guided (Cusin 2017 [MED]).",
    ),
    Rule(
        "hold-top",
        "hold",
        "Below the response threshold at the top of the ladder: hold.",
        "The protocol's escalation steps.",
    ),
    Rule(
        "hold-too-few",
        "hold",
        "Fewer than rules.sessions_per_step sessions at this dose: hold.",
        "The protocol's rules.sessions_per_step and its source.",
    ),
    Rule(
        "escalate",
        "escalate",
        "Below the response threshold after rules.sessions_per_step sessions at this dose, "
        "each tolerated on evidence: one rung up.",
        "The protocol's escalation step and its source.",
    ),
    Rule(
        "hold-limit",
        "hold",
        "An escalation the limit library refuses (a hard limit, or the escalation step): "
        "hold; the reason is the finding that blocked it.",
        "The limit library.",
    ),
    Rule(
        "reassess-off-ladder",
        "reassess",
        "The last dose is not on the ladder and cannot be repeated as one dose of this "
        "protocol: reassess.",
        "SITE-POLICY: hold never changes the dose.",
    ),
    # Within a continuous titration (one stay, the rate stepped every few hours): the rules of
    # ketadose.titration.next_rate, each decision under one of these.
    Rule(
        "titration-step-up",
        "titrate",
        "Within a stay: the interval since the last step has passed, a pain score since it is "
        "above the target, the infusion tolerated on evidence: one step up, never past the "
        "maximum.",
        "The protocol's [titration] and its sources (migraine: Lauritsen C et al. J Headache "
        "Pain 2016 [HIGH]; maximum Pomeroy 2017 [MED]).",
    ),
    Rule(
        "titration-hold",
        "hold",
        "Within a stay: at target, no score since the last step, too soon, at the maximum, or "
        "tolerability not in evidence: keep the rate.",
        "The protocol's [titration] and its sources.",
    ),
    Rule(
        "titration-reduce",
        "reduce",
        "Within a stay: not tolerated: one step down, for a clinician to review.",
        "The protocol's [titration] untolerated note (Lauritsen 2016: a hallucination resolved "
        "after the rate was decreased [HIGH]).",
    ),
    Rule(
        "reassess-stay",
        "reassess",
        "Within a continuous titration: the last rung ended longer ago than a stay allows "
        "between rungs: the stay is over; a new one starts at the start rate, after review.",
        "SITE-POLICY (a stay is one continuous infusion: Lauritsen 2016 [HIGH]).",
    ),
    Rule(
        "titration-stop",
        "stop",
        "Within a stay: not tolerated at the start rate, a life-threatening event, or the "
        "maximum stay reached: stop.",
        "The protocol's [titration] (stay: Pomeroy 2017 [MED]); at the start rate SITE-POLICY.",
    ),
)
_RULES = {rule.id: rule for rule in RULES}


class DoseBasis(BaseModel):
    """The dosing basis of a recommendation.

    Attributes:
        weight_policy: The dosing-weight policy (None: not recorded, kept as the kg).
        dosing_weight_kg: The weight the mg/kg are multiplied by (None: not weight-based).
        kept_from: ``last-session`` (recorded), ``recorded-dose`` (mg over mg/kg of the last
            session), ``today`` (no earlier basis: today's weight), ``rebased`` (asked for).
        today_kg: The dosing weight today's weight would give under the same policy, when
            it differs from the basis kept.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    weight_policy: str | None
    dosing_weight_kg: Real | None
    kept_from: Literal["last-session", "recorded-dose", "today", "rebased"]
    today_kg: Real | None = None


class NextSession(Sealed):
    """The ``next --json`` document (plus ``schema_version``); only the gate makes one.

    ``session`` is None, and the dose fields too, for ``stop``; for ``reduce`` and
    ``reassess`` the proposed dose is shown for review without a pump programme.
    """

    patient_id: str
    protocol: str
    decision: Decision
    rule: str
    reasons: tuple[str, ...]
    level: int | None
    sessions_given: int
    improvement_pct: Real | None
    earliest_date: AwareDatetime
    dose_mg_per_kg: Real | None
    total_dose_mg: Real | None
    basis: DoseBasis
    phases: tuple[PhaseDose, ...]
    findings: tuple[Finding, ...]
    status: Status
    ready: bool
    session: SessionDose | None


@dataclass(frozen=True, slots=True)
class _Level:
    number: int
    step: EscalationStep | None
    amount: float  # mg/kg on a weight-based protocol, else mg


@dataclass(frozen=True, slots=True)
class _Target:
    """What to dose: a rung of the ladder, or (off it) an amount of the one phase."""

    level: int | None
    amount: float | None = None
    rate: float | None = None  # mg/kg/h, within a continuous titration

    @property
    def shown(self) -> bool:
        """Whether there is a dose to show (a reassessment may propose none)."""
        return self.level is not None or self.amount is not None or self.rate is not None


@dataclass(frozen=True, slots=True)
class _Choice:
    rule: str
    target: _Target
    reasons: tuple[str, ...]

    @property
    def decision(self) -> Decision:
        return _RULES[self.rule].decision


def decide(
    entry: ProtocolEntry,
    patient: PatientRecord,
    history: Sequence[SessionRecord],
    limits: LimitLibrary,
    *,
    at: datetime,
    base: DoseRequest | None = None,
    rebase: WeightPolicy | None = None,
    scores: Sequence[tuple[datetime, float]] = (),
    safety: Sequence[str] = (),
    pending: Sequence[str] = (),
    count: int | None = None,
) -> NextSession:
    """Recommend the next session for a patient.

    Args:
        entry: The patient's protocol.
        patient: The patient (baseline score, latest weight and height).
        history: Sessions given, any order, none after ``at``.
        limits: The limit library.
        at: The earliest time the next session could be (usually now).
        base: Dose options (vial, bag, rounding); the patient fields are taken from
            ``patient``.
        rebase: Change the dosing basis to this policy on today's weight (said in the
            reasons); None keeps the sessions' basis.
        scores: ``(time, total)`` of the protocol's instrument (``score record``): each
            counts as the score of the session it was taken for (from 12 h before that
            session's start to 12 h before the next one's) where the session has none.
        safety: Open safety findings of questionnaires (an unacknowledged PHQ-9 item 9): while
            any is open the recommendation is not ready (exit 3), whatever the rule.
        pending: Overrides of earlier sessions that await an independent second clinician's
            co-signature (the store's): while any waits, not ready either.
        count: The infusions (distinct starts) of the whole history, when ``history`` is
            only the part of it that decides (:func:`decisive_history`); None: counted in
            ``history``.

    Returns:
        The decision, the rule that made it, its reasons, the recommended dose (checked) and
        the earliest date.

    Raises:
        InputError: A session after ``at``, or a patient the dose cannot be computed for.
    """
    protocol = entry.protocol
    aware(at, "the time of the next session")
    sessions = with_scores(
        sorted(history, key=lambda s: instant(aware(s.at, "a session given"))), scores, at
    )
    if sessions and instant(sessions[-1].at) > instant(at):
        raise InputError(
            f"a session is recorded after {at.isoformat()} ({sessions[-1].at.isoformat()}): "
            "decide the next session from a time after the last one"
        )
    request = replace(base or DoseRequest(patient=Patient()), patient=patient.as_patient())
    request, basis, basis_reasons = _basis(entry, request, sessions, rebase)
    levels = _levels(entry, request)
    if not sessions:
        choice = _Choice("start", _Target(0), ("no session given yet: start at the programme",))
    elif protocol.titration is not None:
        choice = _within_stay(entry, sessions, limits, at)
    else:
        given = _count(sessions) if count is None else count
        choice = _choose(entry, patient, sessions, levels, limits, at, scores, given)

    earliest = _earliest(entry, limits, sessions, at)
    # Ordered once for the one or two checks below (the sessions are in time order already).
    previous = History(
        PreviousSession(at=s.at, dose_mg=s.dose_mg, dose_mg_per_kg=s.dose_mg_per_kg)
        for s in sessions
    )
    context = CheckContext(at=earliest, history=previous)

    def through_gate(target: _Target) -> tuple[Prepared, Verdict]:
        # Without a dose to propose, the programme is gated (a verdict is sealed) but not shown.
        target = target if target.shown else _Target(0)
        prepared = prepare_session(entry, _request_for(entry, request, levels, target), limits)
        return prepared, gate_decide(prepared, limits, context)

    prepared, decided = through_gate(choice.target)
    if choice.decision in ("escalate", "titrate"):
        blocking = _blocking(decided.findings)
        if blocking is not None:
            held = (
                _hold(entry, sessions[-1], levels)
                if protocol.titration is None
                else _Target(None, rate=_rate_of(sessions[-1]))
            )
            choice = _Choice(
                "hold-limit",
                held,
                (*choice.reasons, f"{choice.decision} not recommended: {blocking.message}"),
            )
            prepared, decided = through_gate(held)
    decision = choice.decision
    # A stop shows no dose, so no dosing basis either.
    reasons = choice.reasons if decision == "stop" else (*basis_reasons, *choice.reasons)
    session: SessionDose | None = None
    reasons = (*reasons, *safety, *pending)
    if decision in GOES_AHEAD:
        if safety:
            decided = held_back(
                decided,
                Finding(
                    severity=Severity.SOFT,
                    code="questionnaire-safety-unacknowledged",
                    message=f"not ready: {safety[0]}",
                    source="PHQ-9 item 9 >= 1 is a safety flag (clinic systems; instruments.toml)",
                ),
            )
        if pending:
            decided = held_back(
                decided,
                Finding(
                    severity=Severity.SOFT,
                    code="override-awaiting-cosign",
                    message=f"not ready: {pending[0]}",
                    source="the limit library's [overrides] (an independent second clinician)",
                ),
            )
        session = checked(prepared, decided, limits, context)
    else:
        severity = Severity.HARD if decision == "stop" else Severity.SOFT
        decided = held_back(
            decided,
            Finding(
                severity=severity,
                code=f"next-{decision}",
                message=f"{decision.upper()}: {choice.reasons[-1]}",
                source=_RULES[choice.rule].source,
            ),
        )
        if decision != "stop" and choice.target.shown:
            session = checked(prepared, decided, limits, context)
    return seal(
        NextSession,
        decided,
        patient_id=patient.id,
        protocol=protocol.id,
        decision=decision,
        rule=choice.rule,
        reasons=reasons,
        level=choice.target.level,
        sessions_given=_count(sessions) if count is None else count,
        improvement_pct=_improvement(patient, sessions),
        earliest_date=earliest,
        dose_mg_per_kg=None if session is None else session.total_dose_mg_per_kg,
        total_dose_mg=None if session is None else session.total_dose_mg,
        basis=basis,
        session=session,
    )


#: How long before a session's start a questionnaire still counts as that session's score.
SCORE_LEAD = timedelta(hours=12)


def with_scores(
    sessions: list[SessionRecord],
    scores: Sequence[tuple[datetime, float]],
    at: datetime | None = None,
) -> list[SessionRecord]:
    """The sessions (in time order), each with the latest score taken for it.

    A session's score is its own or a questionnaire's (taken from :data:`SCORE_LEAD` before
    it to that before the next one), whichever was taken last, up to ``at``: what ``next``
    decides on, and what ``history`` shows.
    """
    if not scores:
        return sessions
    return list(iter_with_scores(sessions, scores, at))


def iter_with_scores(
    sessions: Iterable[SessionRecord],
    scores: Sequence[tuple[datetime, float]],
    at: datetime | None = None,
) -> Iterator[SessionRecord]:
    """:func:`with_scores` one session at a time (each waits only for the next one's start)."""
    if not scores:
        yield from sessions
        return
    # Each score's instant once, in order: a session's scores are then a bisected slice.
    taken = sorted(
        (
            (instant(when), total)
            for when, total in scores
            if at is None or instant(when) <= instant(at)
        ),
        key=lambda pair: pair[0],
    )
    moments = [when for when, _ in taken]

    def scored(session: SessionRecord, following: SessionRecord | None) -> SessionRecord:
        start = instant(session.at) - SCORE_LEAD
        end = None if following is None else instant(following.at) - SCORE_LEAD
        low = bisect_left(moments, start)
        own = taken[low : len(taken) if end is None else max(low, bisect_left(moments, end))]
        if session.score is not None:
            own.append((instant(session.at), session.score))
        if own:
            # The latest score taken for the session, its own or a questionnaire's.
            session = replace(session, score=max(own, key=lambda pair: pair[0])[1])
        return session

    previous: SessionRecord | None = None
    for session in sessions:
        if previous is not None:
            yield scored(previous, session)
        previous = session
    if previous is not None:
        yield scored(previous, None)


def rule(rule_id: str) -> Rule:
    """The rule with this id (for renderers and the docs)."""
    return _RULES[rule_id]


# --- the dosing basis -------------------------------------------------------------------------


def _basis(
    entry: ProtocolEntry,
    request: DoseRequest,
    sessions: list[SessionRecord],
    rebase: WeightPolicy | None,
) -> tuple[DoseRequest, DoseBasis, tuple[str, ...]]:
    """Keep the sessions' dosing basis (or rebase, saying so)."""
    if not entry.protocol.weight_based:
        return request, DoseBasis(weight_policy=None, dosing_weight_kg=None, kept_from="today"), ()
    last = sessions[-1] if sessions else None
    recorded = None if last is None else last.weight_policy
    if rebase is not None:
        today = _today_kg(request, rebase)
        was = None if last is None else last.basis_kg
        said = f"dosing basis changed to {rebase.value} weight, {format_number(today, 0.1)} kg" + (
            "" if was is None else f" (the sessions were dosed on {format_number(was, 0.1)} kg)"
        )
        rebased = replace(request, policy=rebase)
        return (
            rebased,
            DoseBasis(weight_policy=rebase.value, dosing_weight_kg=today, kept_from="rebased"),
            (said,),
        )
    policy = WeightPolicy(recorded) if recorded is not None else request.policy
    kg = None if last is None else last.basis_kg
    if kg is None:
        today = _today_kg(replace(request, policy=policy), policy)
        return (
            replace(request, policy=policy),
            DoseBasis(weight_policy=policy.value, dosing_weight_kg=today, kept_from="today"),
            ()
            if last is None
            else (
                f"the last session recorded no mg/kg: dosed on today's {policy.value} weight, "
                f"{format_number(today, 0.1)} kg",
            ),
        )
    actual = request.patient.weight_kg
    if actual is not None and kg > actual * (1 + BASIS_TOLERANCE):
        # No dosing weight is above the patient's own: the patient has lost weight since.
        today = _today_kg(replace(request, policy=policy), policy)
        return (
            replace(request, policy=policy),
            DoseBasis(weight_policy=policy.value, dosing_weight_kg=today, kept_from="rebased"),
            (
                f"the sessions' basis, {format_number(kg, 0.1)} kg, is above today's weight "
                f"({format_number(actual, 0.1)} kg): dosed on today's {policy.value} weight, "
                f"{format_number(today, 0.1)} kg",
            ),
        )
    kept_from: Literal["last-session", "recorded-dose"] = (
        "last-session"
        if last is not None and last.dosing_weight_kg is not None
        else "recorded-dose"
    )
    reasons = [
        f"dosed on the sessions' basis: {format_number(kg, 0.1)} kg"
        + ("" if recorded is None else f" ({recorded} weight)")
    ]
    today_kg: float | None = None
    if recorded is not None:
        today = _today_kg(request, policy)
        if abs(today - kg) > BASIS_TOLERANCE * kg:
            today_kg = today
            reasons.append(
                f"today's weight gives {format_number(today, 0.1)} kg ({recorded} weight): the "
                "basis is kept; changing it is a decision of its own (next --weight-policy)"
            )
    return (
        replace(request, policy=policy, basis_kg=kg),
        DoseBasis(
            weight_policy=recorded, dosing_weight_kg=kg, kept_from=kept_from, today_kg=today_kg
        ),
        tuple(reasons),
    )


def _today_kg(request: DoseRequest, policy: WeightPolicy) -> float:
    from ketadose.weight import dosing_weight

    weight, _ = dosing_weight(request.patient, policy)
    return weight.kg


# --- the ladder -------------------------------------------------------------------------------


def _levels(entry: ProtocolEntry, request: DoseRequest) -> list[_Level]:
    """Level 0 (the programme) and one level per escalation step, with their amount."""
    steps = sorted(entry.protocol.escalation, key=lambda s: s.from_session)
    per_kg = entry.protocol.weight_based
    levels = []
    by_rate = _by_rate(entry)
    for number, step in enumerate([None, *steps]):
        dosed = session_dose(entry, at_step(request, step))
        phase = dosed.phases[0]
        if by_rate:
            rate = phase.rate_mg_per_kg_per_h if per_kg else phase.rate_mg_per_h
            assert rate is not None
            levels.append(_Level(number, step, rate))
            continue
        amount = dosed.total_dose_mg_per_kg if per_kg else dosed.total_dose_mg
        levels.append(_Level(number, step, amount if amount is not None else dosed.total_dose_mg))
    return levels


def _by_rate(entry: ProtocolEntry) -> bool:
    """Whether the ladder is one of rates (a protocol of one rate phase).

    Rungs are then compared in mg/kg/h (or mg/h), so a session stopped early holds at its
    rate, not at its smaller total.
    """
    phases = entry.protocol.phases
    return len(phases) == 1 and phases[0].kind == "rate"


def _amount(entry: ProtocolEntry, session: SessionRecord) -> float:
    """A session's prescribed amount: its rate on a rate ladder, else mg/kg or mg."""
    if _by_rate(entry):
        if entry.protocol.weight_based:
            duration = entry.protocol.phases[0].duration
            return _rate_of(session, None if duration is None else duration.value)
        duration = entry.protocol.phases[0].duration
        minutes = session.duration_min or (None if duration is None else duration.value)
        if not minutes:
            raise InputError(f"the session on {session.at:%Y-%m-%d %H:%M} records no duration")
        return session.dose_mg / (minutes / 60)
    if entry.protocol.weight_based:
        per_kg = session.planned_dose_mg_per_kg or session.dose_mg_per_kg
        if per_kg is not None:
            return per_kg
    return session.planned_dose_mg if session.planned_dose_mg is not None else session.dose_mg


def _same(a: float, b: float) -> bool:
    return abs(a - b) <= LEVEL_TOLERANCE * max(abs(a), abs(b))


def _rung(amount: float, levels: list[_Level]) -> int | None:
    """The rung a dose is on, or None when it is off the ladder."""
    on = [level.number for level in levels if _same(level.amount, amount)]
    return on[-1] if on else None


def _above(amount: float, levels: list[_Level]) -> int | None:
    higher = [
        level for level in levels if level.amount > amount and not _same(level.amount, amount)
    ]
    return min(higher, key=lambda level: level.amount).number if higher else None


def _below(amount: float, levels: list[_Level]) -> int | None:
    lower = [level for level in levels if level.amount < amount and not _same(level.amount, amount)]
    return max(lower, key=lambda level: level.amount).number if lower else None


def _hold(entry: ProtocolEntry, last: SessionRecord, levels: list[_Level]) -> _Target:
    """The last session's dose again: its rung, or (off the ladder) its own amount."""
    amount = _amount(entry, last)
    rung = _rung(amount, levels)
    return _Target(rung) if rung is not None else _Target(None, amount)


def _request_for(
    entry: ProtocolEntry, request: DoseRequest, levels: list[_Level], target: _Target
) -> DoseRequest:
    if target.level is not None:
        return at_step(request, levels[target.level].step)
    if target.rate is not None:
        rate = target.rate
        return replace(request, rate=Quantity(Kind.RATE_PER_KG, rate, f"{rate} mg/kg/h"))
    assert target.amount is not None
    phases = entry.protocol.phases
    per_kg = entry.protocol.weight_based
    phase = phases[0]
    if phase.kind in ("bolus", "timed", "fixed"):
        kind = Kind.DOSE_PER_KG if per_kg else Kind.DOSE
        unit = "mg/kg" if per_kg else "mg"
        return replace(request, dose=Quantity(kind, target.amount, f"{target.amount} {unit}"))
    rate = target.amount  # a rate ladder's amount is its rate
    kind = Kind.RATE_PER_KG if per_kg else Kind.RATE
    unit = "mg/kg/h" if per_kg else "mg/h"
    return replace(request, rate=Quantity(kind, rate, f"{rate} {unit}"))


def _repeatable(entry: ProtocolEntry) -> bool:
    """Whether an off-ladder amount can be given as this protocol's one phase."""
    return len(entry.protocol.phases) == 1


def _blocking(findings: tuple[Finding, ...]) -> Finding | None:
    """The finding that blocks an escalation: a hard one, else the escalation step's."""
    hard = [f for f in findings if f.severity is Severity.HARD]
    if hard:
        return hard[0]
    step = [
        f
        for f in findings
        if f.parameter == "series.escalation_step" and f.severity is not Severity.INFO
    ]
    return step[0] if step else None


# --- the rules --------------------------------------------------------------------------------


def _improvement(patient: PatientRecord, sessions: list[SessionRecord]) -> float | None:
    scored = [s for s in sessions if s.score is not None]
    return None if not scored else improvement_pct(patient.baseline, scored[-1].score)


def _choose(
    entry: ProtocolEntry,
    patient: PatientRecord,
    sessions: list[SessionRecord],
    levels: list[_Level],
    limits: LimitLibrary,
    at: datetime,
    scores: Sequence[tuple[datetime, float]],
    given: int,
) -> _Choice:
    """The rule that decides; ``given`` is the infusions of the whole history."""
    protocol = entry.protocol
    last = sessions[-1]
    amount = _amount(entry, last)
    rung = _rung(amount, levels)
    hold = _hold(entry, last, levels)
    if rung is None and not _repeatable(entry):
        below = _below(amount, levels)
        return _Choice(
            "reassess-off-ladder",
            _Target(below),
            (
                f"the last dose ({format_number(amount, 0.001)}) is on no rung of the "
                "protocol's ladder and cannot be repeated as one dose: decide the dose",
            ),
        )
    shown = f"{format_number(amount, 0.001)} {'mg/kg' if protocol.weight_based else 'mg'}"
    tolerance = tolerability(protocol, limits, last)
    if tolerance.kind == "stop":
        return _Choice("stop-life-threatening", hold, (tolerance.reason,))
    if tolerance.kind == "severe":
        lower = (rung - 1 if rung > 0 else None) if rung is not None else _below(amount, levels)
        if lower is None:
            return _Choice(
                "stop-first-rung",
                hold,
                (tolerance.reason, f"already at the protocol's first rung ({shown}): stop"),
            )
        return _Choice(
            "reduce",
            _Target(lower),
            (tolerance.reason, f"reduce one rung, from {shown}, for a clinician to review"),
        )
    if tolerance.kind == "ungraded":
        return _Choice("reassess-ungraded", hold, (tolerance.reason,))
    rules = protocol.rules
    gap = elapsed(at, last.at)
    if (
        rules is not None
        and rules.max_gap is not None
        and gap > timedelta(minutes=rules.max_gap.value)
    ):
        return _Choice(
            "reassess-gap",
            hold,
            (f"{gap.days} days since the last session, more than {rules.max_gap}",),
        )
    improvement = _improvement(patient, sessions)
    response = protocol.response
    threshold = None if response is None else response.threshold_pct
    target = None if response is None else response.target_max
    latest = next((s.score for s in reversed(sessions) if s.score is not None), None)
    reasons: list[str] = []
    if improvement is not None:
        reasons.append(f"improvement {format_number(improvement, 0.1)}% from baseline")
    responding = (
        improvement is not None and threshold is not None and improvement >= threshold
    ) or (latest is not None and target is not None and latest <= target)
    futility = None if rules is None else rules.futility
    judged = None if futility is None else _score_after(sessions, scores, futility.after_session)
    fall = None if judged is None else improvement_pct(patient.baseline, judged)
    if futility is not None and not responding and fall is not None and fall < futility.below_pct:
        reasons.append(
            f"futility rule: under {format_number(futility.below_pct)}% improvement after "
            f"session {futility.after_session} predicted non-response ({futility.source})"
        )
        return _Choice("futility", hold, tuple(reasons))
    if given >= protocol.series.sessions and not responding:
        reasons.append(f"induction series of {protocol.series.sessions} complete without response")
        return _Choice("reassess-series", hold, tuple(reasons))
    if responding:
        goal = (
            f"at or above {format_number(threshold)}%"
            if improvement is not None and threshold is not None and improvement >= threshold
            else f"score {format_number(latest or 0)} at or below {format_number(target or 0)}"
        )
        reasons.append(f"responding ({goal}): hold the dose")
        return _Choice("hold-responding", hold, tuple(reasons))
    next_up = rung + 1 if rung is not None and rung + 1 < len(levels) else None
    if rung is None:
        next_up = _above(amount, levels)
    due = _scheduled_level(levels, given + 1)
    if due is not None and (rung is None or due > rung) and next_up is not None:
        if not tolerance.escalation_allowed:
            reasons.append(f"{tolerance.reason}: no titration step")
            return _Choice("hold-not-tolerated", hold, tuple(reasons))
        step = levels[next_up].step
        reasons.append(
            f"scheduled titration for session {given + 1}: one rung up"
            + ("" if step is None else f" ({step.condition})")
        )
        return _Choice("titrate", _Target(next_up), tuple(reasons))
    if not tolerance.escalation_allowed:
        reasons.append(f"{tolerance.reason}: hold the dose, no escalation")
        return _Choice("hold-not-tolerated", hold, tuple(reasons))
    if last.score is None:
        reasons.append("no score at the last session to judge response by: hold the dose")
        return _Choice("hold-no-score", hold, tuple(reasons))
    if (improvement is None or threshold is None) and target is None:
        reasons.append("no response rule to judge by: hold the dose")
        return _Choice("hold-no-score", hold, tuple(reasons))
    if next_up is None:
        reasons.append("below the response threshold, already at the protocol's top step")
        return _Choice("hold-top", hold, tuple(reasons))
    step = levels[next_up].step
    if step is not None and step.scheduled:
        reasons.append(
            f"the next rung is a scheduled titration from session {step.from_session}: "
            "hold until then"
        )
        return _Choice("hold-too-few", hold, tuple(reasons))
    per_step = DEFAULT_SESSIONS_PER_STEP if rules is None else rules.sessions_per_step
    run: list[SessionRecord] = []
    for session in reversed(sessions):
        if not _same(_amount(entry, session), amount):
            break
        run.append(session)
    at_dose = _count(run)
    if at_dose < per_step:
        reasons.append(f"{at_dose} of {per_step} sessions at this dose before escalating")
        return _Choice("hold-too-few", hold, tuple(reasons))
    untolerated: Tolerability | None = next(
        (
            found
            for found in (tolerability(protocol, limits, s) for s in run)
            if not found.escalation_allowed
        ),
        None,
    )
    if untolerated is not None:
        reasons.append(f"{untolerated.reason}: no escalation")
        return _Choice("hold-not-tolerated", hold, tuple(reasons))
    goal = f"the {format_number(threshold)}% response threshold" if threshold else "the target"
    reasons.append(
        f"below {goal} after {at_dose} tolerated sessions at {shown}: escalate one rung"
        + ("" if step is None else f" ({step.condition})")
    )
    return _Choice("escalate", _Target(next_up), tuple(reasons))


#: The longest pause between the end of one rung and the next within one stay, and after
#: the last rung: beyond it the continuous infusion is over (SITE-POLICY).
STAY_GAP = timedelta(hours=12)


def _stay(sessions: list[SessionRecord]) -> list[SessionRecord]:
    """The rungs of the current stay.

    The last run of sessions each started within :data:`STAY_GAP` of the end of the one before.
    """
    stay = [sessions[-1]]
    for earlier in reversed(sessions[:-1]):
        if elapsed(stay[0].at, _end(earlier)) > STAY_GAP:
            break
        stay.insert(0, earlier)
    return stay


def _end(session: SessionRecord) -> datetime:
    return shift(session.at, timedelta(minutes=session.duration_min or 0.0))


def _rate_of(session: SessionRecord, programme_min: float | None = None) -> float:
    """The mg/kg/h a session of a rate protocol ran at (its programme, or its dose).

    A session that records no duration (a history file) ran for ``programme_min``, the
    protocol's, when given.
    """
    import json

    try:
        phases = json.loads(session.phases_json)
        rate = phases[0]["rate_mg_per_kg_per_h"] if phases else None
    except (ValueError, KeyError, TypeError, IndexError):
        rate = None
    if isinstance(rate, int | float) and not isinstance(rate, bool) and rate > 0:
        return float(rate)
    # What was given over the time it ran: the rate, also for an infusion stopped early.
    per_kg = session.dose_mg_per_kg
    minutes = session.duration_min or programme_min
    if per_kg is None or not minutes:
        raise InputError(
            f"the session on {session.at:%Y-%m-%d %H:%M} records no rate (mg/kg and duration)"
        )
    return per_kg / (minutes / 60)


def _within_stay(
    entry: ProtocolEntry, sessions: list[SessionRecord], limits: LimitLibrary, at: datetime
) -> _Choice:
    """The next rate within a continuous titration (each rung recorded as a session)."""
    from ketadose.planning import titration_interval
    from ketadose.titration import next_rate

    protocol = entry.protocol
    last = sessions[-1]
    tolerance = tolerability(protocol, limits, last)
    current = _rate_of(last)
    since = elapsed(at, _end(last))
    if since > STAY_GAP:
        return _Choice(
            "reassess-stay",
            _Target(0),
            (
                f"the last rung ended {format_number(since.total_seconds() / 3600, 0.1)} h ago: "
                "the stay is over; a new stay starts at the start rate, after review",
            ),
        )
    stay = _stay(sessions)
    if tolerance.kind == "ungraded":
        return _Choice("reassess-ungraded", _Target(None, rate=current), (tolerance.reason,))
    if tolerance.kind == "stop":
        return _Choice("titration-stop", _Target(None, rate=current), (tolerance.reason,))
    step = next_rate(
        protocol,
        started=stay[0].at,
        at=at,
        current_rate_mg_per_kg_h=current,
        last_step_at=last.at,
        # A rung's score is taken at its end (the pain the rung left), never after now and
        # never after the next rung started (it cannot be a score "since" a later step).
        pain_scores=[
            (
                min(
                    (_end(s), at, *(n.at for n in stay[i + 1 : i + 2])),
                    key=instant,
                ),
                s.score,
            )
            for i, s in enumerate(stay)
            if s.score is not None
        ],
        tolerated=tolerance.kind not in ("severe", "not-tolerated"),
        min_interval=timedelta(minutes=titration_interval(entry, limits)),
    )
    reasons = [step.reason]
    if step.action == "step-up" and not tolerance.escalation_allowed:
        reasons.append(f"{tolerance.reason}: no step up")
        return _Choice("titration-hold", _Target(None, rate=current), tuple(reasons))
    rule_id = {
        "step-up": "titration-step-up",
        "hold": "titration-hold",
        "target-reached": "titration-hold",
        "reduce": "titration-reduce",
        "stop": "titration-stop",
    }[step.action]
    if tolerance.kind in ("severe", "not-tolerated"):
        reasons.insert(0, tolerance.reason)
    rate = step.rate_mg_per_kg_h if step.action != "stop" else current
    return _Choice(rule_id, _Target(None, rate=rate), tuple(reasons))


def _count(sessions: Sequence[SessionRecord]) -> int:
    """How many infusions: sessions with distinct start times."""
    return len({instant(s.at) for s in sessions})


def _score_after(
    sessions: list[SessionRecord], scores: Sequence[tuple[datetime, float]], number: int
) -> float | None:
    """The latest score taken after the start of the ``number``-th infusion, if any.

    A questionnaire after that start, or the own score of a later session: the futility rule
    judges the response to that infusion, never a score taken before it.
    """
    starts = sorted({instant(s.at) for s in sessions})
    if len(starts) < number:
        return None
    after = starts[number - 1]
    taken = [(instant(when), total) for when, total in scores if instant(when) > after]
    taken += [
        (instant(s.at), s.score) for s in sessions if instant(s.at) > after and s.score is not None
    ]
    return max(taken, key=lambda pair: pair[0])[1] if taken else None


def _scheduled_level(levels: list[_Level], session_number: int) -> int | None:
    """The highest rung a scheduled titration puts this session number on, if any."""
    due = [
        level.number
        for level in levels
        if level.step is not None
        and level.step.scheduled
        and level.step.from_session <= session_number
    ]
    return max(due, default=None)


def _earliest(
    entry: ProtocolEntry, limits: LimitLibrary, sessions: list[SessionRecord], at: datetime
) -> datetime:
    """The earliest time from ``at`` that keeps the minimum interval and the weekly cap.

    In elapsed time, shown in ``at``'s zone (the clinic's).
    """
    gap = minimum_gap(entry, limits)
    cap = weekly_cap(entry, limits)
    earliest = at
    if sessions:
        earliest = max(at, shift(sessions[-1].at, gap).astimezone(at.tzinfo), key=instant)
    # Each candidate hour counts the sessions of the last 7 days by bisection, not by a rescan.
    moments = sorted(instant(s.at) for s in sessions)
    while recent(moments, instant(earliest), timedelta(days=7)) >= cap:
        earliest = shift(earliest, timedelta(hours=1))
    return earliest


# --- what the decision reads --------------------------------------------------------------------


class SessionSource(Protocol):
    """The indexed reads of a record store that :func:`decisive_history` needs.

    :class:`ketadose.store.Store` is one; each is an indexed query (a count, the latest start,
    a time range), so a decision costs the same at 100 sessions as at 100,000.
    """

    def session_count(self, patient_id: str) -> int:
        """Infusions: distinct session starts."""
        ...

    def last_session_at(
        self, patient_id: str, *, until: datetime | None = None, scored: bool = False
    ) -> datetime | None:
        """The latest start (at or before ``until``; of a session with its own score)."""
        ...

    def sessions_between(
        self, patient_id: str, start: datetime | None = None, end: datetime | None = None
    ) -> list[SessionRecord]:
        """The sessions starting from ``start`` to ``end``, in time order."""
        ...

    def first_sessions(self, patient_id: str, starts: int) -> list[SessionRecord]:
        """The sessions at the first ``starts`` distinct starts, in time order."""
        ...


#: The widest window the decision looks back from ``at``: the weekly cap and the 7-day total
#: of the earliest date (which is never before ``at``).
LOOK_BACK = timedelta(days=7)


def decisive_history(
    source: SessionSource,
    entry: ProtocolEntry,
    patient_id: str,
    at: datetime,
    scores: Sequence[tuple[datetime, float]] = (),
) -> tuple[list[SessionRecord], int]:
    """The sessions :func:`decide` reads, and the infusions of the whole history.

    ``decide(..., history=sessions, count=count)`` gives the decision that the whole history
    gives (a property test holds them equal over generated histories), from indexed reads:

    - the count of infusions (distinct starts) is a COUNT;
    - a history of fewer infusions than the protocol's series is read whole: only then may
      the decision reach its first session (the run of sessions at the last dose, each of
      which must have been tolerated, is looked at only below the series' length);
    - otherwise the sessions from the earliest of: 7 days before ``at`` (the weekly cap, the
      7-day and 24-h totals and the interval of the recommended session), the last session
      (the dose, its tolerability, the gap, the basis), the last one with a score of its own
      or the one the latest questionnaire counts for (the improvement, the response, the
      futility rule's latest score). Each session in that suffix has the score ``decide``
      gives it in the whole history (a questionnaire counts for a session up to the next
      session's start, which is in the suffix too);
    - with a futility rule, also the sessions at its first starts (the session it judges
      after);
    - within a continuous titration, the suffix is widened until it holds the whole stay.

    Args:
        source: The store (its indexed reads).
        entry: The patient's protocol.
        patient_id: The patient.
        at: The time of the decision (as given to :func:`decide`).
        scores: The protocol instrument's ``(time, total)``, as given to :func:`decide`.

    Returns:
        ``(sessions in time order, infusions in the whole history)``.
    """
    protocol = entry.protocol
    count = source.session_count(patient_id)
    if count == 0:
        return [], 0
    if protocol.titration is None and count < protocol.series.sessions:
        return source.sessions_between(patient_id), count
    now = instant(aware(at, "the time of the next session"))
    last = source.last_session_at(patient_id)
    assert last is not None  # count > 0
    starts = [now - LOOK_BACK, instant(last)]
    scored = source.last_session_at(patient_id, scored=True)
    if scored is not None:
        starts.append(instant(scored))
    taken = [instant(when) for when, _ in scores if instant(when) <= now]
    if taken:
        counted = source.last_session_at(patient_id, until=max(taken) + SCORE_LEAD)
        if counted is not None:
            starts.append(instant(counted))
    since = min(starts)
    sessions = source.sessions_between(patient_id, since)
    if protocol.titration is not None:
        # The stay reaches back over rungs each within STAY_GAP of the one before: widen the
        # suffix until the stay starts inside it (or it is the whole history).
        span = max(instant(last) - since, timedelta(days=1))
        while _count(sessions) < count:
            ordered = sorted(sessions, key=lambda s: instant(s.at))
            if _stay(ordered)[0] is not ordered[0]:
                break
            span *= 2
            since = instant(last) - span
            sessions = source.sessions_between(patient_id, since)
    rules = protocol.rules
    futility = None if rules is None else rules.futility
    if futility is not None:
        first = [
            s
            for s in source.first_sessions(patient_id, futility.after_session)
            if instant(s.at) < since
        ]
        sessions = first + sessions
    return sessions, count
