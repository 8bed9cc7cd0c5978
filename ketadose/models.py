"""Frozen value types shared by the core: patients, requests, findings and results.

Values are plain floats in fixed units, with the unit in the field name (``dose_mg``,
``rate_mg_per_kg_per_h``); quantities with units only exist at the edge (``ketadose.units``).
"""

from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    computed_field,
    model_validator,
)

# Defined in the light module the command line reads its choices from; named here as well.
from ketadose.choices import DEFAULT_DRAW_STEP_ML, DEFAULT_PUMP_STEP_ML_PER_H
from ketadose.choices import DRAW_STEPS_ML as DRAW_STEPS_ML
from ketadose.choices import PUMP_STEPS_ML_PER_H as PUMP_STEPS_ML_PER_H
from ketadose.choices import Sex as Sex
from ketadose.choices import WeightPolicy as WeightPolicy
from ketadose.units import format_number

#: Bumped only when a key changes meaning; keys are added, never renamed. 2: a plan's sessions
#: and steps leave out the approval findings all of them carry, stated once in ``library_findings``.
SCHEMA_VERSION = 2
#: Significant digits a computed float keeps: all a double holds for sure (DBL_DIG), as many as
#: an input may have, and few enough to drop binary-float noise, which sits in the 16th and 17th
#: digits (0.11 * 80 is 8.8, not 8.799999999999999). Values derived from cleaned values stay
#: exact to ~1e-15. Rounding to clinical increments is never done here; rounded values travel
#: in their own ``*_rounded`` keys.
SIGNIFICANT_DIGITS = 15


def significant(value: float) -> float:
    """A float to ``SIGNIFICANT_DIGITS`` significant digits.

    Args:
        value: Any finite float.

    Returns:
        The value rounded to that many significant digits.
    """
    if value.is_integer() and abs(value) < 1e15:
        return value  # most doses, rates and volumes: nothing to round, and 6x faster
    return float("%.*g" % (SIGNIFICANT_DIGITS, value))  # noqa: UP031 (the fastest spelling)


#: A float in a result model, cleaned of float noise when the model is built: what is checked
#: is what is shown, and JSON is written in Rust with no Python call per number (a batch
#: writes ~120 numbers a plan). A model is changed with :func:`revised`, never ``model_copy``,
#: so that every value passes through here.
Real = Annotated[float, AfterValidator(significant)]

M = TypeVar("M", bound=BaseModel)


def revised(model: M, **changes: object) -> M:
    """A copy of a model with some fields changed, validated (``Real`` values cleaned).

    Args:
        model: The model.
        **changes: New field values.

    Returns:
        The new model.
    """
    return type(model).model_validate({**model.__dict__, **changes})


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


class Severity(StrEnum):
    """How serious a finding is; ``soft`` and ``hard`` come from limit checks."""

    INFO = "info"
    SOFT = "soft"
    HARD = "hard"


class Finding(_Frozen):
    """Something a clinician must see beside the numbers.

    Attributes:
        severity: ``info`` (shown, exit 0), ``soft`` (needs an override reason), ``hard``
            (refused).
        code: A stable machine-readable identifier, e.g. ``protocol-cap-applied``.
        message: One line for the clinician, with values and units.
        parameter: For a limit finding, the limited parameter (``session.rate_per_kg``).
        value: The value checked, in ``unit``.
        limit: The limit it crossed, in ``unit``.
        side: Which side: ``upper_hard``, ``upper_soft``, ``lower_soft``, ``lower_hard``.
        unit: The unit of ``value`` and ``limit``.
        source: The source of the limit (or of the medication or condition entry).
        overridden: A soft finding acknowledged with ``--override-reason``.
        override_reason: The reason given.

    """

    severity: Severity
    code: str
    message: str
    parameter: str | None = None
    value: Real | None = None
    limit: Real | None = None
    side: str | None = None
    unit: str | None = None
    source: str | None = None
    overridden: bool = False
    override_reason: str | None = None


class Patient(_Frozen):
    """The patient as far as dosing needs: all optional, each checked where it is needed.

    Attributes:
        weight_kg: Actual (total) body weight.
        height_cm: Height.
        sex: Needed by the ideal, adjusted and lean weight policies.
        age_years: Age, for limit checks.

    """

    weight_kg: Real | None = Field(default=None, gt=0)
    height_cm: Real | None = Field(default=None, gt=0)
    sex: Sex | None = None
    age_years: Real | None = Field(default=None, gt=0)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def bmi(self) -> Real | None:
        """Body-mass index in kg/m², or None without both weight and height."""
        if self.weight_kg is None or self.height_cm is None:
            return None
        return significant(self.weight_kg / (self.height_cm / 100) ** 2)


class DosingWeight(_Frozen):
    """The weight a per-kg dose is multiplied by, and how it was chosen.

    Attributes:
        basis: The policy asked for.
        kg: The weight used.
        note: Why it differs from the formula's raw value, when it does.

    """

    basis: WeightPolicy
    kg: Real
    note: str | None = None


class Rounding(_Frozen):
    """Display increments; exact values are always kept beside the rounded ones.

    Attributes:
        pump_rate_ml_per_h: A pump is programmed in these steps (0.1 mL/h by default).
        draw_ml: A syringe is drawn in these steps (0.01 mL by default).

    """

    pump_rate_ml_per_h: Real = Field(default=DEFAULT_PUMP_STEP_ML_PER_H, gt=0)
    draw_ml: Real = Field(default=DEFAULT_DRAW_STEP_ML, gt=0)

    @model_validator(mode="after")
    def _sensible(self) -> "Rounding":
        problem = step_problem(self.pump_rate_ml_per_h, self.draw_ml)
        if problem is not None:
            raise ValueError(problem)
        return self


def step_problem(pump_step_ml_per_h: float, draw_step_ml: float) -> str | None:
    """Why a pump or draw step is not one a pump or syringe is read in, or None.

    Args:
        pump_step_ml_per_h: The pump rate increment.
        draw_step_ml: The draw volume increment.

    Returns:
        The one-line reason, naming the steps that are, or None for sensible steps.
    """

    def listed(steps: tuple[float, ...]) -> str:
        return ", ".join(f"{step:g}" for step in steps)

    if pump_step_ml_per_h not in PUMP_STEPS_ML_PER_H:
        return (
            f"pump step {pump_step_ml_per_h:g} mL/h is not a pump increment: "
            f"use {listed(PUMP_STEPS_ML_PER_H)} mL/h"
        )
    if draw_step_ml not in DRAW_STEPS_ML:
        return (
            f"draw step {draw_step_ml:g} mL is not a syringe graduation: "
            f"use {listed(DRAW_STEPS_ML)} mL"
        )
    return None


class PhaseDose(_Frozen):
    """One phase of a session as computed for a patient.

    Values that do not apply are None (e.g. the pump rate of an intranasal dose). The
    ``delivered_*`` values are what the patient receives once the pump runs at the rounded
    rate from a bag holding the rounded draw: those are the values the gate checks.
    """

    kind: Literal["bolus", "timed", "rate", "fixed"]
    label: str
    dose_mg: Real
    dose_mg_per_kg: Real | None
    duration_min: Real | None
    rate_mg_per_h: Real | None
    rate_mg_per_kg_per_h: Real | None
    pump_rate_ml_per_h: Real | None = None
    pump_rate_ml_per_h_rounded: Real | None = None
    volume_ml: Real | None = None
    drops_per_min: Real | None = None
    delivered_dose_mg: Real | None = None
    delivered_rate_mg_per_h: Real | None = None


class Preparation(_Frozen):
    """How the session's drug is drawn and made up.

    Attributes:
        vial_mg_per_ml: Strength of the vial drawn from.
        draw_ml: Volume of drug to draw (exact), ``draw_ml_rounded`` as drawn.
        final_volume_ml: Volume the drug is made up to (the bag or syringe), or the drawn
            volume when it is given undiluted (IM).
        final_mg_per_ml: Concentration of what reaches the patient.
        diluent_ml: Diluent to add (``final_volume_ml - draw_ml``); 0 when undiluted.
        diluent: What the drug is made up with, when it is diluted.
        drop_factor_drops_per_ml: Gravity set drop factor, when given.
        delivered_mg: What the bag or syringe holds: the rounded draw times the vial strength.
        delivered_mg_per_ml: The concentration made from the rounded draw.

    """

    vial_mg_per_ml: Real
    draw_ml: Real
    draw_ml_rounded: Real
    final_volume_ml: Real
    final_mg_per_ml: Real
    diluent_ml: Real
    diluent: str | None = None
    drop_factor_drops_per_ml: Real | None = None
    delivered_mg: Real
    delivered_mg_per_ml: Real


class Measured(_Frozen):
    """How a dose taken by mouth or under the tongue is measured out: a liquid or tablets.

    A liquid is measured in mL of a ``strength`` in mg/mL, in steps of ``step`` mL (an oral
    syringe's graduation); tablets (troches, lozenges, capsules) are counted in steps of
    ``step`` tablet (1: whole only, 0.5: scored halves) of ``strength`` mg each.

    Attributes:
        form: ``solution`` (measured in mL) or ``tablet`` (counted).
        name: The dose form as the protocol names it ("sublingual solution").
        strength: mg/mL for a solution, mg per tablet for tablets.
        amount: What the dose is exactly, in ``unit``.
        amount_rounded: What is measured out: ``amount`` rounded to ``step``, toward the
            safe side of the nearest limit.
        step: The smallest amount that can be measured, in ``unit``.
        unit: ``mL`` or ``tablet``.
        delivered_mg: What the measured amount holds: ``amount_rounded * strength``.
    """

    form: Literal["solution", "tablet"]
    name: str
    strength: Real
    amount: Real
    amount_rounded: Real
    step: Real
    unit: Literal["mL", "tablet"]
    delivered_mg: Real

    @property
    def strength_unit(self) -> str:
        """``mg/mL`` for a solution, ``mg`` (per tablet) for tablets."""
        return "mg/mL" if self.form == "solution" else "mg"

    @property
    def text(self) -> str:
        """The amount as measured: ``0.1 mL of sublingual solution 100 mg/mL (10 mg)``."""
        amount = format_number(self.amount_rounded, self.step)
        strength = f"{format_number(self.strength)} {self.strength_unit}"
        delivered = f"{format_number(self.delivered_mg, 0.01)} mg"
        if self.form == "solution":
            return f"{amount} mL of {self.name} {strength} ({delivered})"
        tablets = "tablet" if self.amount_rounded == 1 else "tablets"
        return f"{amount} {tablets} of {self.name} {strength} ({delivered})"


class Systemic(_Frozen):
    """The source's estimate of how much of a non-IV dose reaches the circulation.

    Shown beside the dose, never dosed on: ``mg`` is the delivered dose times the protocol's
    bioavailability (``percent``, or the range ``percent`` to ``percent_high``).

    Attributes:
        route: The route the bioavailability is for.
        percent: Bioavailability, %, or the low end of the source's range.
        percent_high: The high end of the range, when the source gives one.
        mg: The delivered dose times ``percent``; ``mg_high`` times ``percent_high``.
        cite: The short citation shown beside the dose ("Chong 2006").
        source: The full source; ``evidence`` its level.
        equivalence: The source's own estimate of an equivalent IV dose, as it states it:
            shown, never applied.
        library: The file that set the value (the shipped protocols or a clinic's file).
    """

    route: str
    percent: Real
    percent_high: Real | None = None
    mg: Real
    mg_high: Real | None = None
    cite: str
    source: str
    evidence: str
    equivalence: str | None = None
    library: str

    @property
    def text(self) -> str:
        """The estimate as shown: ``about 12 mg systemic at 30 % (Chong 2006)``."""
        mg = format_number(self.mg, 0.1)
        pct = format_number(self.percent, 1)
        if self.percent_high is not None and self.mg_high is not None:
            mg += f"-{format_number(self.mg_high, 0.1)}"
            pct += f"-{format_number(self.percent_high, 1)}"
        return f"about {mg} mg systemic at {pct} % ({self.cite})"


class LibraryRef(_Frozen):
    """Which library file a number came from: enough to trace any output back to its data.

    Attributes:
        name: The library's own name.
        version: Its version.
        sha256: Hash of the file's bytes.
        approved: Whether the file names who approved it and when.
        path: The file as the user named it, or ``ketadose/data/protocols.toml``.

    """

    name: str
    version: str
    sha256: str
    approved: bool
    path: str


class ProtocolRef(_Frozen):
    """The protocol a result was computed for.

    Attributes:
        form: What a sublingual or oral dose is measured from (``solution`` or ``tablet``),
            None for the other routes: the dose form of the medication, even when a refused
            dose is not measured. Not serialised: the JSON ``protocol`` object keeps its four
            keys, and a measured dose names its form in ``measured``.
    """

    id: str
    name: str
    category: str
    route: str
    form: Literal["solution", "tablet"] | None = Field(default=None, exclude=True)


# --- what the checker is given (plain dataclasses: built per run, never validated) ---


@dataclass(frozen=True, slots=True)
class Vitals:
    """Vital signs as measured (None: not measured)."""

    systolic: Real | None = None
    diastolic: Real | None = None
    heart_rate: Real | None = None
    spo2: Real | None = None


@dataclass(frozen=True, slots=True)
class MedicationUse:
    """A medication the patient takes, and how long ago the last dose was (if known)."""

    name: str
    hours_since: Real | None = None


@dataclass(frozen=True, slots=True)
class PreviousSession:
    """A session already given (from ``--previous``/``--last-session`` or the store).

    ``at`` must be aware (a zone or UTC offset): the checker refuses a naive time.
    """

    at: datetime
    dose_mg: Real | None = None
    dose_mg_per_kg: Real | None = None


@dataclass(frozen=True, slots=True)
class CheckContext:
    """Everything around a session the checker may use; all optional.

    Attributes:
        at: When the session takes place (needed for series limits), aware: intervals and
            windows are elapsed time, so the checker refuses a naive time.
        vitals: Vital signs.
        during: The vitals are a reading during the session: checked against the
            during-session limits, and the answer is continue / pause / stop, never a start
            programme. Otherwise they are checked against the pre-session limits (go /
            caution / do not start).
        peak: Readings during a session already given (a recorded session), checked against
            the during-session limits beside the pre-session ``vitals``.
        medications: Medications taken.
        conditions: Conditions the patient has.
        history: Previous sessions, any order.
    """

    at: datetime | None = None
    vitals: Vitals | None = None
    during: bool = False
    peak: Vitals | None = None
    medications: tuple[MedicationUse, ...] = ()
    conditions: tuple[str, ...] = ()
    history: tuple[PreviousSession, ...] = field(default=())


Status = Literal["ok", "soft", "hard"]

#: Set only by ``ketadose.gate`` while it builds a checked result: the one way to make one.
_GATE_OPEN: ContextVar[bool] = ContextVar("ketadose_gate_open", default=False)


class Sealed(_Frozen):
    """A result that only the safety gate (``ketadose.gate``) can make.

    Renderers accept only sealed types, so a session that did not pass the gate cannot be
    shown: mypy rejects passing a :class:`DosedSession` where a :class:`SessionDose` is
    wanted, and building a sealed model outside the gate raises at run time.
    """

    @model_validator(mode="before")
    @classmethod
    def _made_by_the_gate(cls, data: Any) -> Any:
        if not _GATE_OPEN.get():
            raise ValueError(f"a {cls.__name__} is made only by ketadose.gate")
        return data


class DosedSession(_Frozen):
    """One session's dose programme as computed, before the gate has checked it.

    Attributes:
        delivered_total_mg: What the patient can receive: the rounded draw times the vial
            strength (vial routes), the measured amount times its strength (a liquid or
            tablets), else the computed total.
        delivered_total_mg_per_kg: The same per kg of the dosing weight.
    """

    protocol: ProtocolRef
    patient: Patient
    dosing_weight: DosingWeight | None
    phases: tuple[PhaseDose, ...]
    total_dose_mg: Real
    total_dose_mg_per_kg: Real | None
    total_duration_min: Real | None
    delivered_total_mg: Real | None = None
    delivered_total_mg_per_kg: Real | None = None
    preparation: Preparation | None
    measured: Measured | None = None
    systemic: Systemic | None = None
    rounding: Rounding
    findings: tuple[Finding, ...]
    protocol_library: LibraryRef


DuringAction = Literal["continue", "pause", "stop"]


class During(_Frozen):
    """The answer to a reading taken during a session: never a start programme.

    Attributes:
        action: ``continue``, ``pause`` (a soft during-session limit crossed) or ``stop`` (a
            hard one).
        reasons: The readings that decided it, one line each.
    """

    action: DuringAction
    reasons: tuple[str, ...]


class SessionDose(Sealed):
    """One session, checked by the gate: the ``dose --json`` and ``check --json`` document.

    The fields of :class:`DosedSession` (in the order scripts have always read them) and what
    the gate decided.

    Attributes:
        at: When the session takes place, as used for the series and hold checks.
        context: What else was checked: vitals, medications, conditions, previous sessions.
        status: The most severe finding: ``ok``, ``soft`` (overridden or not) or ``hard``.
        ready: True only when the session may start (exit 0): no hard finding, every soft
            finding overridden with a reason, and not a during-session reading. On a hard
            finding the pump programme and preparation are withheld (null).
        override_reason: The reason given for overriding soft findings, if any.
        during: For a reading taken during a session: continue, pause or stop.
        library: The limit library the session was checked against.
        protocol_library: The library the protocol came from.
    """

    protocol: ProtocolRef
    patient: Patient
    dosing_weight: DosingWeight | None
    phases: tuple[PhaseDose, ...]
    total_dose_mg: Real
    total_dose_mg_per_kg: Real | None
    total_duration_min: Real | None
    delivered_total_mg: Real | None
    delivered_total_mg_per_kg: Real | None
    preparation: Preparation | None
    measured: Measured | None = None
    systemic: Systemic | None = None
    rounding: Rounding
    at: AwareDatetime | None = None
    context: CheckContext | None = None
    status: Status
    ready: bool
    override_reason: str | None = None
    during: During | None = None
    findings: tuple[Finding, ...]
    library: LibraryRef
    protocol_library: LibraryRef
