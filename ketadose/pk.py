"""Predicted plasma concentration of racemic ketamine from published compartment models.

Plasma only: no validated ke0 exists for ketamine (clinical.md 9.1), so no effect-site curve is
offered. The models are IV models of racemic ketamine; other routes are refused.

The solution is exact for piecewise-constant infusions, with no time step: a mammillary model's
plasma concentration is a sum of exponential modes, ``C = sum(y_i)``, each obeying
``dy_i/dt = -lambda_i * y_i + A_i * u(t)`` (``u`` the infusion rate in mg/min). Over an interval
of constant ``u`` each mode moves exactly to ``y_i * e + A_i * u * (1 - e) / lambda_i`` with
``e = exp(-lambda_i * dt)``. The ``lambda_i`` are the roots of the model's characteristic
polynomial and the ``A_i`` its unit-bolus coefficients (closed forms, as in STANPUMP). Pure
Python: 14,400 one-minute points (10 days of 24 h) take a few milliseconds, and no numerical
library is loaded.
"""

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ketadose.choices import DEFAULT_PK_MODEL, PkModel

#: ng/mL per mg/L.
NG_PER_ML = 1000.0


@dataclass(frozen=True, slots=True)
class Model:
    """A published ketamine PK model and how its volumes and clearances scale with weight.

    Attributes:
        id: ``domino``, ``clements250``, ``hijazi`` or ``kamp``.
        name: As cited.
        source: The reference and where the parameters were taken from.
        evidence: The evidence tag of clinical.md.
        scaling: How weight enters, in words.
        v1_l_per_kg: Central volume per kg (compartment models).
        k10, k12, k13, k21, k31: Rate constants, 1/min (0 where the model has no such compartment).
        weight_linear: Every volume and clearance is proportional to weight, so a mg/kg dose
            gives the same concentrations at any weight.
    """

    id: str
    name: str
    source: str
    evidence: str
    scaling: str
    v1_l_per_kg: float
    k10: float
    k12: float = 0.0
    k13: float = 0.0
    k21: float = 0.0
    k31: float = 0.0
    weight_linear: bool = True

    def constants(self, weight_kg: float) -> tuple[float, float, float, float, float, float]:
        """V1 (L) and the rate constants (1/min) for a patient of this weight.

        Args:
            weight_kg: Body weight.

        Returns:
            ``(v1, k10, k12, k13, k21, k31)``.
        """
        if self.id == "kamp":
            # V scales with weight, clearance allometrically (see KAMP's scaling).
            volume = KAMP_V_L * weight_kg / 70
            clearance = KAMP_CL_L_PER_MIN * (weight_kg / 70) ** 0.75
            return volume, clearance / volume, 0.0, 0.0, 0.0, 0.0
        return self.v1_l_per_kg * weight_kg, self.k10, self.k12, self.k13, self.k21, self.k31


#: Kamp J et al. Anesthesiology 2020;133:1192: weighted means of the meta-analysis.
KAMP_V_L = 252.0
KAMP_CL_L_PER_MIN = 79.0 / 60

MODELS: dict[str, Model] = {
    model.id: model
    for model in (
        Model(
            id=PkModel.CLEMENTS250.value,
            name="Clements & Nimmo 1981 (250 mcg/kg bolus data)",
            source="Clements JA, Nimmo WS. Br J Anaesth 1981;53:27 (PMID 7459184); parameters "
            "as implemented in opentiva Clements250 (clinical.md 9.1)",
            evidence="HIGH",
            scaling="V1 = 1.7522 L/kg x weight; rate constants fixed (weight-linear)",
            v1_l_per_kg=1.7522,
            k10=0.0109,
            k12=0.0186,
            k21=0.0137,
        ),
        Model(
            id=PkModel.DOMINO.value,
            name="Domino 1984 (3-compartment)",
            source="Domino EF et al. Clin Pharmacol Ther 1984;36:645 (PMID 6488686); parameters "
            "identical in stanpumpR, opentiva, STANPUMP and fus_anes (clinical.md 9.1)",
            evidence="HIGH",
            scaling="V1 = 0.063 L/kg x weight; rate constants fixed (weight-linear)",
            v1_l_per_kg=0.063,
            k10=0.4381,
            k12=0.5921,
            k13=0.5900,
            k21=0.2470,
            k31=0.0146,
        ),
        Model(
            id=PkModel.HIJAZI.value,
            name="Hijazi 2003 (2-compartment)",
            source="Hijazi Y et al. Br J Anaesth 2003;90:155 (PMID 12538370); parameters as "
            "implemented in opentiva Hijazi (clinical.md 9.1)",
            evidence="HIGH",
            scaling="V1 = 1.08 L/kg x weight; rate constants fixed (weight-linear)",
            v1_l_per_kg=1.08,
            k10=0.0333,
            k12=0.0088,
            k21=0.0030,
        ),
        Model(
            id=PkModel.KAMP.value,
            name="Kamp 2020 meta-analysis (1-compartment stand-in from its pooled means)",
            source="Kamp J et al. Anesthesiology 2020;133:1192: weighted mean Vd 252 L and CL "
            "79 L/h at 70 kg [HIGH, abstract]. Not the published model: a one-compartment "
            "stand-in built from those two pooled means (COMPUTED), so it has no distribution "
            "phase and underestimates the peak",
            evidence="COMPUTED",
            scaling="V = 252 L x (weight/70), linear: volumes scale with body mass; CL = 79 L/h "
            "x (weight/70)^0.75, allometric: the usual scaling of clearance with metabolic rate. "
            "At 110 kg the clearance is 10.7% below linear scaling ((110/70)^-0.25 = 0.893), so "
            "a mg/kg dose gives about 12% more exposure than at 70 kg",
            v1_l_per_kg=KAMP_V_L / 70,
            k10=KAMP_CL_L_PER_MIN / KAMP_V_L,
            weight_linear=False,
        ),
    )
}
#: The default (why: :data:`ketadose.choices.DEFAULT_PK_MODEL`).
DEFAULT_MODEL = DEFAULT_PK_MODEL.value


@dataclass(frozen=True, slots=True)
class Infusion:
    """Drug going in at a constant rate (or all at once, for a duration of 0).

    Attributes:
        start_min: When it starts, minutes from time 0.
        duration_min: How long it runs; 0 for a bolus given at once.
        dose_mg: The amount given over that time.
    """

    start_min: float
    duration_min: float
    dose_mg: float


@functools.lru_cache(maxsize=1024)
def modes(model: Model, weight_kg: float) -> list[tuple[float, float]]:
    """The exponential modes of a model: ``(lambda_i in 1/min, A_i in 1/L)``.

    After a unit bolus (1 mg) the plasma concentration is ``sum(A_i * exp(-lambda_i * t))``
    mg/L.

    Args:
        model: The model.
        weight_kg: Body weight.

    Returns:
        One to three modes, fastest first.
    """
    v1, k10, k12, k13, k21, k31 = model.constants(weight_kg)
    if k12 == 0 and k13 == 0:
        return [(k10, 1 / v1)]
    if k13 == 0:
        # Two compartments: lambda are the roots of x^2 - (k10 + k12 + k21) x + k10 k21.
        total = k10 + k12 + k21
        root = math.sqrt(total * total - 4 * k10 * k21)
        fast, slow = (total + root) / 2, (total - root) / 2
        return [
            (fast, (k21 - fast) / (slow - fast) / v1),
            (slow, (k21 - slow) / (fast - slow) / v1),
        ]
    rates = _cubic_roots(k10, k12, k13, k21, k31)
    out = []
    for index, rate in enumerate(rates):
        others = [r for j, r in enumerate(rates) if j != index]
        coefficient = (k21 - rate) * (k31 - rate)
        coefficient /= (others[0] - rate) * (others[1] - rate)
        out.append((rate, coefficient / v1))
    return out


def _cubic_roots(k10: float, k12: float, k13: float, k21: float, k31: float) -> list[float]:
    """The three (real, positive, distinct) lambda of a 3-compartment mammillary model."""
    a0 = k10 * k21 * k31
    a1 = k10 * k31 + k21 * k31 + k21 * k13 + k10 * k21 + k31 * k12
    a2 = k10 + k12 + k13 + k21 + k31
    # x^3 - a2 x^2 + a1 x - a0 = 0; with x = t + a2/3: t^3 + p t + q = 0 (three real roots).
    p = a1 - a2 * a2 / 3
    q = -2 * a2**3 / 27 + a1 * a2 / 3 - a0
    radius = 2 * math.sqrt(-p / 3)
    angle = math.acos(max(-1.0, min(1.0, 3 * q / (p * radius))))
    roots = [radius * math.cos((angle - 2 * math.pi * n) / 3) + a2 / 3 for n in range(3)]
    return sorted(roots, reverse=True)


def concentrations(
    model: Model, weight_kg: float, infusions: Sequence[Infusion], times: Sequence[float]
) -> list[float]:
    """Plasma concentration (ng/mL) at each of ``times`` (minutes, ascending).

    Args:
        model: The model.
        weight_kg: Body weight.
        infusions: What is given, in any order; they may overlap (superposition).
        times: When to report, ascending, from 0.

    Returns:
        One concentration per time, never negative.
    """
    terms = modes(model, weight_kg)
    # Every moment the total rate changes, with the change in mg/min; boluses separately.
    changes: dict[float, float] = {}
    boluses: dict[float, float] = {}
    for infusion in infusions:
        if infusion.dose_mg == 0:
            continue
        if infusion.duration_min <= 0:
            boluses[infusion.start_min] = boluses.get(infusion.start_min, 0.0) + infusion.dose_mg
            continue
        rate = infusion.dose_mg / infusion.duration_min
        end = infusion.start_min + infusion.duration_min
        changes[infusion.start_min] = changes.get(infusion.start_min, 0.0) + rate
        changes[end] = changes.get(end, 0.0) - rate
    events = sorted(set(changes) | set(boluses))
    rate = 0.0
    now = 0.0
    decays: dict[float, list[float]] = {}
    # The loop below runs once a point: its modes are three locals (a model with fewer has
    # modes of zero, adding exactly nothing), moved as _step moves them, with each span's
    # factors (e, A_i * u * (1 - e) / lambda_i) computed once per rate.
    moves: dict[float, tuple[float, ...]] = {}
    out: list[float] = []
    append, ng_per_mg_per_l = out.append, NG_PER_ML
    s0 = s1 = s2 = 0.0
    e0 = e1 = e2 = g0 = g1 = g2 = 0.0
    last = math.nan  # the span e0 ... g2 are for
    event = 0
    upcoming = events[0] if events else math.inf
    for time in times:
        if upcoming <= time:
            state = [s0, s1, s2][: len(terms)]
            while event < len(events) and events[event] <= time:
                at = events[event]
                _step(terms, state, at - now, rate, decays)
                now = max(now, at)
                rate += changes.get(at, 0.0)
                if abs(rate) < 1e-12:
                    rate = 0.0  # what started has stopped: no float residue
                given = boluses.get(at, 0.0)
                if given:
                    for index, (_, coefficient) in enumerate(terms):
                        state[index] += coefficient * given
                event += 1
            s0, s1, s2 = (*state, 0.0, 0.0)[:3]
            upcoming = events[event] if event < len(events) else math.inf
            moves.clear()
            last = math.nan
        span = time - now
        if span > 0.0:
            if span != last:
                move = moves.get(span)
                if move is None:
                    move = moves[span] = _move(terms, span, rate, decays)
                e0, e1, e2, g0, g1, g2 = move
                last = span
            s0 = s0 * e0 + g0
            s1 = s1 * e1 + g1
            s2 = s2 * e2 + g2
            now = time
        total = sum((s0, s1, s2))
        append(total * ng_per_mg_per_l if total > 0.0 else 0.0)  # max(0.0, total) * NG_PER_ML
    return out


class PhaseLike(Protocol):
    """What :func:`session_infusions` reads of a phase (``models.PhaseDose`` has it)."""

    @property
    def dose_mg(self) -> float: ...  # noqa: D102

    @property
    def duration_min(self) -> float | None: ...  # noqa: D102


def session_infusions(phases: Sequence[PhaseLike], start_min: float = 0.0) -> list[Infusion]:
    """A session's phases as infusions, one after another from ``start_min``.

    Args:
        phases: The session's phases (``dose_mg`` and ``duration_min`` each; a phase without a
            duration is a bolus given at once).
        start_min: When the first phase starts.

    Returns:
        The infusions.
    """
    infusions = []
    at = start_min
    for phase in phases:
        duration = phase.duration_min or 0.0
        infusions.append(Infusion(at, duration, phase.dose_mg))
        at += duration
    return infusions


def peaks(model: Model, weight_kg: float, sessions: Sequence[Sequence[Infusion]]) -> list[float]:
    """Each session's predicted peak (ng/mL), with what is left of the sessions before it.

    The peak of a session is taken at its phase boundaries (the end of each phase, where a
    constant-rate infusion reaches its highest concentration).

    Args:
        model: The model.
        weight_kg: Body weight.
        sessions: Each session's infusions, one after another, in time order.

    Returns:
        One peak per session.
    """
    terms = modes(model, weight_kg)
    state = [0.0] * len(terms)
    now = 0.0
    out: list[float] = []
    decays: dict[float, list[float]] = {}  # a plan repeats its gaps and phase lengths
    for session in sessions:
        if not session or session[0].start_min < now:  # overlapping: the general path
            return _peaks_overlapping(model, weight_kg, sessions)
        best = 0.0
        for infusion in session:
            # Decay to the infusion's start, then run it (a bolus is added at once).
            _step(terms, state, infusion.start_min - now, 0.0, decays)
            best = max(best, sum(state))  # what earlier sessions left, as this one starts
            if infusion.duration_min > 0:
                rate = infusion.dose_mg / infusion.duration_min
                _step(terms, state, infusion.duration_min, rate, decays)
            else:
                for index, (_, coefficient) in enumerate(terms):
                    state[index] += coefficient * infusion.dose_mg
            now = infusion.start_min + infusion.duration_min
            best = max(best, sum(state))
        out.append(max(0.0, best) * NG_PER_ML)
    return out


def _step(
    terms: list[tuple[float, float]],
    state: list[float],
    span: float,
    rate: float,
    decays: dict[float, list[float]],
) -> None:
    """Move the modes ``span`` minutes on at a constant ``rate`` (mg/min), exactly."""
    if span <= 0:
        return
    decay = decays.get(span)
    if decay is None:
        decay = decays[span] = [math.exp(-lam * span) for lam, _ in terms]
    for index, (lam, coefficient) in enumerate(terms):
        e = decay[index]
        state[index] = state[index] * e + coefficient * rate * (1 - e) / lam


def _move(
    terms: list[tuple[float, float]], span: float, rate: float, decays: dict[float, list[float]]
) -> tuple[float, ...]:
    """What :func:`_step` multiplies each mode by and then adds to it, for this span and rate.

    Returns:
        ``(e0, e1, e2, g0, g1, g2)``: three modes, the ones a model lacks multiplied by and
        added 0 (their state stays 0.0).
    """
    decay = decays.get(span)
    if decay is None:
        decay = decays[span] = [math.exp(-lam * span) for lam, _ in terms]
    gain = [
        coefficient * rate * (1 - e) / lam
        for (lam, coefficient), e in zip(terms, decay, strict=True)
    ]
    padding = (0.0,) * (3 - len(terms))
    return (*decay, *padding, *gain, *padding)


def _peaks_overlapping(
    model: Model, weight_kg: float, sessions: Sequence[Sequence[Infusion]]
) -> list[float]:
    flat = [infusion for session in sessions for infusion in session]
    marks = [
        sorted({i.start_min + i.duration_min for i in session} | {session[0].start_min})
        for session in sessions
        if session
    ]
    times = sorted({t for mark in marks for t in mark})
    values = dict(zip(times, concentrations(model, weight_kg, flat, times), strict=True))
    return [max(values[t] for t in mark) for mark in marks]
