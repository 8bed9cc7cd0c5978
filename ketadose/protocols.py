"""The protocol library: the shipped TOML file, a clinic's own file, and their validation.

A protocol is data, not code: its session programme (ordered phases), series defaults,
escalation steps and response scale are read from TOML and validated here, and every number
carries the ``source`` and ``evidence`` level it was taken from (``reference/clinical.md``).
Anything unexpected (an unknown key, a quantity without a unit, an evidence level of
"NOT CONFIRMED") stops loading with a :class:`~ketadose.errors.ConfigError` that names the
file and the field.
"""

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator
from pydantic import Strict as PydanticStrict

from ketadose.errors import InputError
from ketadose.libfile import (
    Count,
    Dose,
    Duration,
    Flag,
    LibraryHeader,
    MassRate,
    Rate,
    Route,
    Sourced,
    Strength,
    Strict,
    Volume,
    read_file,
    read_library,
    read_shipped,
)
from ketadose.models import LibraryRef
from ketadose.preparation import DEFAULT_DILUENT
from ketadose.units import Kind

SHIPPED_FILE = "protocols.toml"

#: Routes the source article names for treatment that no shipped protocol uses, and why.
ROUTES_NOT_SHIPPED = {
    "rectal": "the primary sources found give it only for anaesthesia in young children "
    "(9 mg/kg, bioavailability 0.25: Malinovsky JM et al. Br J Anaesth 1996;77:203-207); "
    "none gives a rectal dose for depression or pain in adults",
}

Category = Literal["psychiatric", "pain", "substance-use"]
PhaseKind = Literal["bolus", "timed", "rate", "fixed"]


class Phase(Sourced):
    """One step of a session's dose programme.

    ``timed`` gives an amount (mg/kg or mg) over a duration; ``bolus`` the same, where the
    duration may be absent outside IV (an IM injection); ``rate`` gives a rate (mg/kg/h or
    mg/h) for a duration, optionally capped in mg/h; ``fixed`` gives a fixed amount in mg (an
    esketamine device dose), with an optional duration.
    """

    kind: PhaseKind
    label: str | None = None
    dose: Dose | None = None
    rate: Rate | None = None
    duration: Duration | None = None
    cap: MassRate | None = None
    note: str | None = None

    @model_validator(mode="after")
    def _fields_fit_kind(self) -> "Phase":
        kind = self.kind
        if kind in ("bolus", "timed", "fixed"):
            if self.dose is None:
                raise ValueError(f"a {kind} phase needs a dose")
            if self.rate is not None or self.cap is not None:
                raise ValueError(f"a {kind} phase has a dose, not a rate or cap")
            if kind == "timed" and self.duration is None:
                raise ValueError("a timed phase needs a duration")
            if kind == "fixed" and self.dose.kind is not Kind.DOSE:
                raise ValueError("a fixed phase is dosed in mg, not per kg")
        else:
            if self.rate is None or self.duration is None:
                raise ValueError("a rate phase needs a rate and a duration")
            if self.dose is not None:
                raise ValueError("a rate phase has a rate, not a dose")
        return self

    @property
    def per_kg(self) -> bool:
        """Whether this phase is dosed by body weight."""
        value = self.dose if self.dose is not None else self.rate
        return value is not None and value.kind in (Kind.DOSE_PER_KG, Kind.RATE_PER_KG)

    @property
    def title(self) -> str:
        """The label, or the kind when the file gives none."""
        return self.label or self.kind


class Series(Sourced):
    """Induction-series defaults: how many sessions, how often."""

    sessions: Count = Field(ge=1, le=100)
    per_week: tuple[Count, Count] = Field(description="Sessions per week, lowest and highest.")
    min_interval: Duration | None = None
    note: str | None = None

    @model_validator(mode="after")
    def _ordered(self) -> "Series":
        low, high = self.per_week
        if not 1 <= low <= high <= 7:
            raise ValueError("per_week must be [low, high] with 1 <= low <= high <= 7")
        return self


class EscalationStep(Sourced):
    """A conditional change of the session programme from a given session on."""

    from_session: Count = Field(ge=2)
    scheduled: Flag = Field(
        default=False,
        description="A fixed titration the plan applies; otherwise the step depends on "
        "response and tolerance, and only ``next`` takes it.",
    )
    dose: Dose | None = None
    rate: Rate | None = None
    duration: Duration | None = None
    condition: str = Field(min_length=3)

    @model_validator(mode="after")
    def _changes_something(self) -> "EscalationStep":
        if self.dose is None and self.rate is None:
            raise ValueError("an escalation step sets a dose or a rate")
        return self


Score = Annotated[float, PydanticStrict()]


class Response(Sourced):
    """How response is measured and what counts as one.

    ``threshold_pct`` is the improvement from baseline (percent fall on the scale, where a
    lower score is better) that counts as a response; ``next`` escalates below it.
    ``target_max`` is an absolute target instead (or as well): a score at or below it counts
    as a response whatever the baseline (migraine: pain <= 3/10).
    """

    scale: str
    threshold: str
    threshold_pct: Score | None = Field(default=None, gt=0, le=100)
    target_max: Score | None = Field(default=None, ge=0)
    instrument: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9][a-z0-9-]*$",
        description="The questionnaire (ketadose/data/instruments.toml) whose scores drive "
        "the decisions, read from `score record` beside the sessions' own scores.",
    )


class TitrationRate(Sourced):
    """One sourced rate of a titration (its start, its step, its maximum), per kg."""

    rate: Rate

    @model_validator(mode="after")
    def _per_kg(self) -> "TitrationRate":
        if self.rate.kind is not Kind.RATE_PER_KG:
            raise ValueError("a titration rate is per kg of dosing weight, e.g. 0.1 mg/kg/h")
        if self.rate.value <= 0:
            raise ValueError("a titration rate must be above 0")
        return self


class TitrationInterval(Sourced):
    """How long each rate runs before the next step may be taken: the source's range."""

    low: Duration
    high: Duration

    @model_validator(mode="after")
    def _ordered(self) -> "TitrationInterval":
        if not 0 < self.low.value <= self.high.value:
            raise ValueError("the step interval must be 0 < low <= high")
        return self


class TitrationTarget(Sourced):
    """The end point: a score at or below ``score_max`` held for ``hold``."""

    score_max: Score = Field(ge=0)
    scale_max: Score = Field(gt=0, description="The top of the scale (10 for a 0-10 score).")
    hold: Duration

    @model_validator(mode="after")
    def _within(self) -> "TitrationTarget":
        if self.score_max >= self.scale_max:
            raise ValueError("the target score must be below the top of the scale")
        if self.hold.value <= 0:
            raise ValueError("the target must be held for a time above 0")
        return self


class TitrationStay(Sourced):
    """How long the inpatient stay (the whole infusion) lasts at most."""

    maximum: Duration

    @model_validator(mode="after")
    def _positive(self) -> "TitrationStay":
        if self.maximum.value <= 0:
            raise ValueError("the longest stay must be above 0")
        return self


class ObservedRates(Sourced):
    """Rates a cohort was reported at (e.g. the rate at target), which rungs are judged by."""

    low: Rate
    high: Rate
    what: str = Field(min_length=3)

    @model_validator(mode="after")
    def _ordered(self) -> "ObservedRates":
        if self.low.kind is not Kind.RATE_PER_KG or self.high.kind is not Kind.RATE_PER_KG:
            raise ValueError("observed rates are per kg of dosing weight, e.g. 0.42 mg/kg/h")
        if not 0 < self.low.value <= self.high.value:
            raise ValueError("observed rates must be 0 < low <= high")
        return self


class Titration(Sourced):
    """A continuous inpatient titration: one infusion whose rate steps up within one stay.

    The rate starts at ``start``, rises by ``step`` no sooner than ``interval.low`` after the
    last step, while the score is above the target and the infusion is tolerated, and never
    above ``maximum``; once the score is at or below ``target.score_max`` the rate is held,
    and when that has held for ``target.hold`` the target is reached. Not tolerated: the
    rate is reduced by one step (stopped from the start rate). The ladder's rungs are
    ``start + n * step`` up to ``maximum``; ``observed`` says which rates a cohort reached.
    """

    scale: str = Field(min_length=3)
    start: TitrationRate
    step: TitrationRate
    interval: TitrationInterval
    maximum: TitrationRate
    target: TitrationTarget
    stay: TitrationStay
    untolerated: "Note"
    observed: tuple[ObservedRates, ...] = ()
    note: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> "Titration":
        if self.maximum.rate.value < self.start.rate.value:
            raise ValueError("the titration maximum must be at or above its start")
        if self.stay.maximum.value < self.interval.low.value:
            raise ValueError("the longest stay is shorter than one step interval")
        if len(self.rungs) > 100:
            raise ValueError("a titration of more than 100 rungs: check its step")
        return self

    @property
    def rungs(self) -> tuple[float, ...]:
        """The ladder's rates in mg/kg/h: ``start + n * step`` up to the maximum (inclusive)."""
        start, step, top = self.start.rate.value, self.step.rate.value, self.maximum.rate.value
        count = int((top - start) / step + 1e-9)
        return tuple(round(start + n * step, 9) for n in range(min(count, 100) + 1))


class Note(Sourced):
    """A sourced line of practice: an instruction, a discharge criterion, a maintenance option."""

    text: str = Field(min_length=3)


class Adjunct(Sourced):
    """A medication the protocol's sources give alongside ketamine."""

    name: str = Field(min_length=1)
    dose: str = Field(min_length=1, description="As the source gives it, e.g. 4 mg IV.")
    purpose: str = Field(min_length=3)
    timing: str | None = None


class Evaluation(Sourced):
    """When the induction series is evaluated."""

    after_session: Count = Field(ge=1)
    text: str = Field(min_length=3)


class Observation(Sourced):
    """The minimum observation after dosing before a patient may leave."""

    minimum: Duration


class Futility(Sourced):
    """An early non-response rule, offered as a protocol option.

    After a given session, an improvement below a threshold predicts overall non-response,
    so ``next`` says reassess.
    """

    after_session: Count = Field(ge=1)
    below_pct: Annotated[float, PydanticStrict()] = Field(gt=0, le=100)
    text: str = Field(min_length=3, description="The rule as its source states it.")


class Rules(Sourced):
    """How ``next`` decides: sessions at a dose before escalation, the longest gap, futility."""

    sessions_per_step: Count = Field(ge=1, le=20)
    max_gap: Duration | None = None
    futility: Futility | None = None


class Cadence(Strict):
    """Readings every ``every``, for ``span`` (None: to the end of the period)."""

    every: Duration
    span: Duration | None = None


class Monitoring(Sourced):
    """When the vital signs are read around a session: the protocol's monitoring schedule.

    Times are from the start of dosing. ``during`` runs to the end of the infusion (or to the
    dose, for a bolus or device), ``after`` from then to the end of the observation; ``at``
    adds readings at fixed times after the start (the esketamine label's 40 min). A scheduled
    reading is present when one is taken within ``window`` of its time; the reading before the
    dose within ``before_within`` before the start.
    """

    before: Flag = True
    before_within: Duration
    during: tuple[Cadence, ...] = ()
    after: tuple[Cadence, ...] = ()
    at: tuple[Duration, ...] = ()
    before_discharge: Flag = False
    window: Duration
    sedation_scale: str | None = Field(
        default=None, description="The public scale sedation is observed on at each reading."
    )
    note: str | None = None


FormKind = Literal["solution", "tablet"]
#: Routes whose doses are measured out from a form the protocol names (not a vial or device).
FORM_ROUTES = ("sublingual", "oral")


class Form(Sourced):
    """What a dose taken by mouth or under the tongue is measured out from.

    A ``solution`` is measured in mL of one of its ``strengths`` (mg/mL) in steps of
    ``step`` (the graduation of the syringe or dropper used); a ``tablet`` (troche,
    lozenge, capsule) is counted in ``1 / split`` tablets of one of its ``strengths`` (mg).
    The first strength is the default; ``--strength`` chooses another of the list, never one
    the list does not name (10 for 100 mg/mL is a typing error that changes the dose tenfold).
    """

    kind: FormKind
    name: str = Field(min_length=3, description="The dose form, e.g. sublingual solution.")
    strengths: tuple[Strength, ...] = Field(min_length=1)
    step: Volume | None = None
    split: Count | None = Field(default=None, ge=1, le=4)
    note: str | None = None

    @model_validator(mode="after")
    def _fits_kind(self) -> "Form":
        wanted = Kind.CONCENTRATION if self.kind == "solution" else Kind.DOSE
        for strength in self.strengths:
            if strength.kind is not wanted:
                unit = "mg/mL" if self.kind == "solution" else "mg per tablet"
                raise ValueError(f"a {self.kind}'s strengths are in {unit}, not {strength}")
            if strength.value <= 0:
                raise ValueError("a strength must be above 0")
        if len({s.value for s in self.strengths}) != len(self.strengths):
            raise ValueError("a strength is listed twice")
        if self.kind == "solution":
            if self.step is None or self.split is not None:
                raise ValueError("a solution is measured in a step of mL (step), not split")
            if not 0.001 <= self.step.value <= 5:
                raise ValueError("a solution's measuring step is 0.001 to 5 mL")
        elif self.split is None or self.step is not None:
            raise ValueError("tablets are counted in parts (split = 1, 2 or 4), not a step")
        elif self.split == 3:
            raise ValueError("tablets are split in 1, 2 or 4 parts")
        return self

    @property
    def increment(self) -> float:
        """The smallest amount that can be measured: mL, or a fraction of a tablet."""
        if self.step is not None:
            return self.step.value
        assert self.split is not None  # guaranteed by validation
        return 1 / self.split


class Bioavailability(Sourced):
    """How much of a non-IV dose reaches the circulation, as a source gives it.

    Shown beside every dose of the route as the source's estimate ("about 12 mg systemic at
    30 % (Chong 2006)"); never used to change a dose. ``equivalence`` is the source's own
    statement of an equivalent IV dose, shown as it is written, never applied.
    """

    percent: Annotated[float, PydanticStrict()] = Field(gt=0, le=100)
    percent_high: Annotated[float, PydanticStrict()] | None = Field(default=None, gt=0, le=100)
    cite: str = Field(min_length=3, max_length=60, description="Short citation: Chong 2006.")
    equivalence: str | None = Field(default=None, min_length=3)

    @model_validator(mode="after")
    def _ordered(self) -> "Bioavailability":
        if self.percent_high is not None and self.percent_high < self.percent:
            raise ValueError("percent_high must be at or above percent")
        return self


class RouteBioavailability(Bioavailability):
    """A clinic's own bioavailability for a route: every protocol of that route in effect."""

    route: Route

    @model_validator(mode="after")
    def _not_iv(self) -> "RouteBioavailability":
        if self.route == "iv":
            raise ValueError("IV is the reference (100 %): it takes no bioavailability")
        return self


class PreparationDefaults(Sourced):
    """How the protocol's sources made the drug up (bag or syringe volume, diluent)."""

    final_volume: Volume
    diluent: str = DEFAULT_DILUENT


class Protocol(Strict):
    """A dosing protocol: the session programme and the series around it."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=64)
    name: str
    category: Category
    route: Route
    summary: str
    phases: tuple[Phase, ...] = Field(min_length=1)
    series: Series
    escalation: tuple[EscalationStep, ...] = ()
    response: Response | None = None
    preparation: PreparationDefaults | None = None
    observation: Observation | None = None
    evaluation: Evaluation | None = None
    rules: Rules | None = None
    monitoring: Monitoring | None = None
    titration: Titration | None = None
    form: Form | None = None
    bioavailability: Bioavailability | None = None
    setting: Literal["clinic", "take-home"] = Field(
        default="clinic",
        description="take-home: the patient takes each dose away from the clinic, on any day.",
    )
    instructions: tuple[Note, ...] = Field(
        default=(), description="How the patient takes each dose, as the sources give it."
    )
    adjuncts: tuple[Adjunct, ...] = ()
    before: tuple[Note, ...] = Field(default=(), description="Pre-session instructions.")
    discharge: tuple[Note, ...] = Field(default=(), description="Discharge criteria.")
    maintenance: tuple[Note, ...] = Field(default=(), description="Options after induction.")
    references: tuple[str, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> "Protocol":
        if self.route != "iv" and self.preparation is not None:
            raise ValueError(f"[preparation] applies to iv protocols, not {self.route}")
        if self.route == "iv":
            if self.preparation is None:
                raise ValueError("an iv protocol needs a [preparation] final_volume")
            if any(p.duration is None for p in self.phases):
                raise ValueError("every phase of an iv protocol needs a duration (for the pump)")
        if self.route in FORM_ROUTES and self.form is None:
            raise ValueError(f"a {self.route} protocol needs a [form] its doses are measured from")
        if self.route not in FORM_ROUTES and self.form is not None:
            raise ValueError(f"[form] applies to sublingual and oral protocols, not {self.route}")
        if self.route == "iv" and self.bioavailability is not None:
            raise ValueError("IV is the reference (100 %): it takes no [bioavailability]")
        if self.setting == "take-home":
            if self.route not in FORM_ROUTES:
                raise ValueError(f"a take-home protocol is sublingual or oral, not {self.route}")
            if self.monitoring is not None or self.observation is not None:
                raise ValueError("a take-home dose has no clinic monitoring or observation")
        if self.titration is not None:
            self._titration_fits(self.titration)
        if self.monitoring is not None and self.monitoring.after and self.observation is None:
            # Without an observation time "after" is empty and discharge could follow dosing.
            raise ValueError("a [monitoring] schedule with readings after needs an [observation]")
        for step in self.escalation:
            if step.from_session > self.series.sessions:
                raise ValueError(
                    f"escalation from session {step.from_session} is after the series' "
                    f"{self.series.sessions} sessions"
                )
        return self

    def _titration_fits(self, titration: Titration) -> None:
        """A titration is one IV stay whose programme is its first rung, without session steps."""
        if self.route != "iv":
            raise ValueError(f"a [titration] is a continuous IV infusion, not {self.route}")
        if len(self.phases) != 1 or self.phases[0].kind != "rate":
            raise ValueError("a titrated protocol's programme is one rate phase (its first rung)")
        rate = self.phases[0].rate
        if rate is None or rate.kind is not Kind.RATE_PER_KG:
            raise ValueError("a titrated protocol's rate phase is per kg, as its titration")
        if abs(rate.value - titration.start.rate.value) > 1e-9:
            raise ValueError("the rate phase must run at the titration's start rate")
        if self.escalation:
            raise ValueError("a titrated protocol steps by its [titration], not [[escalation]]")
        if self.series.sessions != 1:
            raise ValueError("a titrated protocol's series is one stay: sessions = 1")

    @property
    def weight_based(self) -> bool:
        """Whether any phase is dosed by body weight (so a weight is required)."""
        return any(phase.per_kg for phase in self.phases)


class ProtocolFile(Strict):
    """The whole of one protocol file."""

    library: LibraryHeader
    protocol: tuple[Protocol, ...] = Field(default=(), description="Protocols, by id.")
    bioavailability: tuple[RouteBioavailability, ...] = Field(
        default=(), description="A clinic's own bioavailability for a route's protocols."
    )

    @model_validator(mode="after")
    def _unique_ids(self) -> "ProtocolFile":
        if not self.protocol and not self.bioavailability:
            raise ValueError(
                "a protocol file gives at least one [[protocol]] or [[bioavailability]]"
            )
        seen: set[str] = set()
        for protocol in self.protocol:
            if protocol.id in seen:
                raise ValueError(f'protocol id "{protocol.id}" appears twice')
            seen.add(protocol.id)
        routes = [b.route for b in self.bioavailability]
        if len(set(routes)) != len(routes):
            raise ValueError("a route's [[bioavailability]] appears twice")
        return self


@dataclass(frozen=True, slots=True)
class ProtocolEntry:
    """A protocol and the library file it came from."""

    protocol: Protocol
    library: LibraryRef
    overrides_shipped: bool = False
    #: The file the protocol's bioavailability came from, when a clinic's [[bioavailability]]
    #: replaced the protocol's own.
    bioavailability_from: LibraryRef | None = None


class ProtocolLibrary(Mapping[str, ProtocolEntry]):
    """The protocols in effect: the shipped ones, replaced or extended by a clinic's file."""

    def __init__(self, entries: Mapping[str, ProtocolEntry]) -> None:
        self._entries = dict(entries)

    def __getitem__(self, protocol_id: str) -> ProtocolEntry:
        return self._entries[protocol_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def get_protocol(self, protocol_id: str) -> ProtocolEntry:
        """Look a protocol up by id.

        Args:
            protocol_id: E.g. ``"depression"``.

        Returns:
            The protocol and its library.

        Raises:
            InputError: When no protocol has this id; the message lists the known ids.

        """
        entry = self._entries.get(protocol_id)
        if entry is None:
            known = ", ".join(sorted(self._entries))
            raise InputError(f'unknown protocol "{protocol_id}"; known protocols: {known}')
        return entry


def load_file(data: bytes, path: str) -> tuple[ProtocolFile, LibraryRef]:
    """Parse and validate the bytes of one protocol file.

    Args:
        data: The file's bytes.
        path: How to name the file in messages.

    Returns:
        The validated file and its reference (name, version, sha256, approval).

    Raises:
        ConfigError: When the bytes are not UTF-8 TOML or do not validate.

    """
    return read_library(data, path, ProtocolFile)


def _shipped() -> tuple[ProtocolFile, LibraryRef]:
    return read_shipped(SHIPPED_FILE, ProtocolFile)


def load_library(clinic_file: Path | None = None) -> ProtocolLibrary:
    """Load the shipped protocols, then a clinic's file on top (same id replaces).

    Args:
        clinic_file: A clinic's protocol file, or None for the shipped library alone.

    Returns:
        The protocols in effect.

    Raises:
        ConfigError: When a file cannot be read or does not validate.

    """
    if clinic_file is None:
        return library_from(None)
    return library_from(read_file(clinic_file), str(clinic_file))


def library_from(clinic_data: bytes | None, name: str = "stdin") -> ProtocolLibrary:
    """The shipped protocols, then a clinic's file given as bytes on top (same id replaces).

    Args:
        clinic_data: The bytes of a clinic's protocol file, or None for the shipped library.
        name: How messages name that file (its path, or ``stdin``).

    Returns:
        The protocols in effect.

    Raises:
        ConfigError: When the file does not validate.
    """
    shipped, shipped_ref = _shipped()
    entries = {p.id: ProtocolEntry(p, shipped_ref) for p in shipped.protocol}
    if clinic_data is not None:
        clinic, clinic_ref = load_file(clinic_data, name)
        for protocol in clinic.protocol:
            entries[protocol.id] = ProtocolEntry(
                protocol, clinic_ref, overrides_shipped=protocol.id in entries
            )
        for own in clinic.bioavailability:
            value = Bioavailability.model_validate(own.model_dump(exclude={"route"}))
            for pid, entry in entries.items():
                if entry.protocol.route == own.route:
                    entries[pid] = replace(
                        entry,
                        protocol=entry.protocol.model_copy(update={"bioavailability": value}),
                        bioavailability_from=clinic_ref,
                    )
    return ProtocolLibrary(entries)
