"""The limit library (a smart pump's drug library for ketamine) and the pure checker.

A limit library is a TOML file: a header, a ``default`` profile and per-protocol profiles,
medications and conditions. Each limited parameter has up to four sides,
``lower_hard <= lower_soft <= upper_soft <= upper_hard``, written as quantities with units and
each parameter with its ``source`` and ``evidence``. A protocol's profile refines the default
parameter by parameter: where it names a parameter, its limit replaces the default's whole;
where it does not, the default's applies.

:func:`check` takes a computed session and what is known around it (patient, vitals,
medications, conditions, previous sessions) and returns every finding. It is monotone: moving a
value further beyond a side never makes its finding less severe. A value exactly at a limit
passes ("not more than 25 mg/h", "excluded above 115 kg"), unless the limit names that side
``inclusive``: a limit written "65 and over" includes 65, so a value exactly at it is past it.
A value within ``TOLERANCE`` (relative, :func:`slack`) of a limit counts as at it, so float
representation (0.1 x 3 = 0.30000000000000004) never turns a boundary dose into a finding, nor
keeps one from an inclusive side. A limit with a ``step`` (a 28-mg nasal device) also refuses a
value that is not a whole number of steps.
"""

import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib import resources
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, PrivateAttr, StrictInt, model_validator

from ketadose.authority import OverrideRule, check_classes
from ketadose.clock import aware, instant
from ketadose.errors import ConfigError, InputError, InputField, QuantityError
from ketadose.libfile import (
    Duration,
    LibraryHeader,
    Route,
    Sourced,
    Strict,
    read_file,
    read_library,
    read_shipped,
)
from ketadose.models import (
    CheckContext,
    DosedSession,
    Finding,
    LibraryRef,
    Patient,
    PreviousSession,
    Severity,
    Vitals,
)
from ketadose.series import History
from ketadose.units import Kind, format_number, parse, show

SHIPPED_FILE = "limits.toml"
#: Relative: a value within 1e-9 of a limit (plus 1e-12 absolute, for a limit of 0) is at it.
TOLERANCE = 1e-9
_ABSOLUTE = 1e-12


def slack(limit: float) -> float:
    """How far past a limit a value may lie and still be at it: float noise, nothing more.

    Args:
        limit: The limit.

    Returns:
        ``TOLERANCE`` of the limit (relative, whatever its size), plus 1e-12.
    """
    return TOLERANCE * abs(limit) + _ABSOLUTE


SIDES = ("lower_hard", "lower_soft", "upper_soft", "upper_hard")
Side = Literal["lower_hard", "lower_soft", "upper_soft", "upper_hard"]
#: Sides in the order they are tried (hard before soft), with the sign that means "beyond".
_ORDER = (
    ("upper_hard", Severity.HARD, 1.0),
    ("lower_hard", Severity.HARD, -1.0),
    ("upper_soft", Severity.SOFT, 1.0),
    ("lower_soft", Severity.SOFT, -1.0),
)


@dataclass(frozen=True, slots=True)
class Bounds:
    """A limit's four sides as numbers in ``kind.unit`` (None: no limit on that side)."""

    kind: Kind | None
    lower_hard: float | None = None
    lower_soft: float | None = None
    upper_soft: float | None = None
    upper_hard: float | None = None
    #: The sides whose limit value is itself past the limit ("65 and over" includes 65).
    inclusive: frozenset[str] = frozenset()
    #: A value must be a whole number of these (e.g. 28 mg, one nasal device), or None.
    step: float | None = None
    #: The sides given, in the order :func:`classify` tries them, each with the sign that
    #: means "beyond", its tolerance and whether the limit value itself is beyond: worked out
    #: once, used ~60 times a planned series.
    order: tuple[tuple[str, Severity, float, float, float, bool], ...] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        order = tuple(
            (side, severity, sign, limit, slack(limit), side in self.inclusive)
            for side, severity, sign in _ORDER
            if (limit := getattr(self, side)) is not None
        )
        object.__setattr__(self, "order", order)

    def off_step(self, value: float) -> bool:
        """Whether a value is not a whole number of ``step`` (False without a step).

        Args:
            value: The value, in ``kind.unit``.

        Returns:
            True when the value lies further than float noise from every multiple of the step.
        """
        if self.step is None:
            return False
        return abs(value - round(value / self.step) * self.step) > slack(value)

    @property
    def unit(self) -> str:
        """The unit of the values ("" for a count)."""
        return "" if self.kind is None else self.kind.unit


class Limit(Sourced):
    """One limited parameter: up to four sides, a source and a note.

    Sides are quantity strings (``"25 mg/h"``), or whole numbers for counts
    (``sessions_per_7d``). The parameter's field decides which unit kinds are accepted.

    ``inclusive`` names the sides whose own value is past the limit, for a limit worded
    "65 and over" or "at least 2 h" of a finding (by default a value exactly at a side passes,
    as "not more than" and "excluded above" read). ``step`` is a quantity in the sides' kind:
    a value that is not a whole number of steps is refused (hard), e.g. a nasal spray dose
    that is not a whole number of 28-mg devices.
    """

    # StrictInt: TOML ``true`` would otherwise be read as the count 1.
    lower_hard: str | StrictInt | None = None
    lower_soft: str | StrictInt | None = None
    upper_soft: str | StrictInt | None = None
    upper_hard: str | StrictInt | None = None
    inclusive: tuple[Side, ...] = ()
    step: str | None = None
    note: str | None = None
    _bounds: Bounds | None = PrivateAttr(default=None)

    @property
    def bounds(self) -> Bounds:
        """The parsed sides (set when the library is validated).

        Raises:
            RuntimeError: For a limit that was never validated: it must not pass silently.
        """
        # Read the private slot directly: pydantic's __getattr__ route costs ~4 us a call,
        # and the checker asks for bounds ~20 times a session.
        bounds: Bounds | None = (self.__pydantic_private__ or {}).get("_bounds")
        if bounds is None:
            raise RuntimeError("limit used without validation")
        return bounds


def _sides(*kinds: Kind) -> Callable[[Limit | None], Limit | None]:
    """Validator: parse a limit's sides as one of ``kinds`` (none: a count) and order them."""

    def validate(limit: Limit | None) -> Limit | None:
        if limit is None:
            return None
        values: dict[str, float] = {}
        found: Kind | None = None
        for side in SIDES:
            raw = getattr(limit, side)
            if raw is None:
                continue
            if not kinds:
                if not isinstance(raw, int) or isinstance(raw, bool) or raw < 0:
                    raise ValueError(f"{side}: a count is a whole number, e.g. 3")
                values[side] = float(raw)
                continue
            if not isinstance(raw, str):
                examples = " or ".join(k.example for k in kinds)
                raise ValueError(f'{side}: write a quantity with its unit, e.g. "{examples}"')
            try:
                kind, value = parse(raw, *kinds)
            except QuantityError as error:
                raise ValueError(f"{side}: {error}") from None
            if found is not None and kind is not found:
                raise ValueError(
                    f"{side}: {raw} is in {kind.unit}, the other sides in {found.unit}; "
                    "write all four sides in one kind"
                )
            found = kind
            values[side] = value
        step: float | None = None
        if limit.step is not None:
            if not kinds:
                raise ValueError("step: a count has no step")
            try:
                step_kind, step = parse(limit.step, *kinds)
            except QuantityError as error:
                raise ValueError(f"step: {error}") from None
            if found is not None and step_kind is not found:
                raise ValueError(
                    f"step: {limit.step} is in {step_kind.unit}, the sides in {found.unit}"
                )
            if step <= 0:
                raise ValueError(f"step: {limit.step} must be above 0")
            found = step_kind
        if not values and step is None:
            raise ValueError("a limit needs at least one of " + ", ".join((*SIDES, "step")))
        missing = [side for side in limit.inclusive if side not in values]
        if missing:
            raise ValueError(f"inclusive names {', '.join(missing)}, which the limit does not give")
        ordered = [(side, values[side]) for side in SIDES if side in values]
        for (low_side, low), (high_side, high) in pairwise(ordered):
            if low > high:
                raise ValueError(
                    f"{low_side} ({format_number(low)}) is above {high_side} "
                    f"({format_number(high)}): need lower_hard <= lower_soft <= upper_soft "
                    "<= upper_hard"
                )
        limit._bounds = Bounds(
            kind=found if kinds else None,
            inclusive=frozenset(limit.inclusive),
            step=step,
            **values,
        )
        return limit

    return validate


DosePerKgLimit = Annotated[Limit | None, AfterValidator(_sides(Kind.DOSE_PER_KG))]
DoseLimit = Annotated[Limit | None, AfterValidator(_sides(Kind.DOSE))]
RatePerKgLimit = Annotated[Limit | None, AfterValidator(_sides(Kind.RATE_PER_KG))]
RateLimit = Annotated[Limit | None, AfterValidator(_sides(Kind.RATE))]
DurationLimit = Annotated[Limit | None, AfterValidator(_sides(Kind.DURATION))]
ConcentrationLimit = Annotated[Limit | None, AfterValidator(_sides(Kind.CONCENTRATION))]
PumpRateLimit = Annotated[Limit | None, AfterValidator(_sides(Kind.PUMP_RATE))]
VolumeLimit = Annotated[Limit | None, AfterValidator(_sides(Kind.VOLUME))]
PlasmaLimit = Annotated[Limit | None, AfterValidator(_sides(Kind.PLASMA))]
WeightLimit = Annotated[Limit | None, AfterValidator(_sides(Kind.WEIGHT))]
AgeLimit = Annotated[Limit | None, AfterValidator(_sides(Kind.AGE))]
BmiLimit = Annotated[Limit | None, AfterValidator(_sides(Kind.BMI))]
AccumulatedLimit = Annotated[Limit | None, AfterValidator(_sides(Kind.DOSE, Kind.DOSE_PER_KG))]
CountLimit = Annotated[Limit | None, AfterValidator(_sides())]
PressureLimit = Annotated[Limit | None, AfterValidator(_sides(Kind.PRESSURE))]
HeartRateLimit = Annotated[Limit | None, AfterValidator(_sides(Kind.HEART_RATE))]
SaturationLimit = Annotated[Limit | None, AfterValidator(_sides(Kind.SATURATION))]


class SessionLimits(Strict):
    """Per-session parameters (checked on every ``dose``), on the values delivered.

    Rates and doses are checked as prescribed and as delivered (the rounded pump rate times
    the concentration made from the rounded draw); the worse of the two decides.
    """

    total_dose_per_kg: DosePerKgLimit = None
    total_dose: DoseLimit = None
    #: The total per kg of *actual* body weight, for a clinic dosing on ideal or lean weight.
    total_dose_per_kg_actual: DosePerKgLimit = None
    #: Each bolus, and the boluses of a session summed.
    bolus_dose_per_kg: DosePerKgLimit = None
    bolus_dose: DoseLimit = None
    #: The number of boluses in one session.
    bolus_count: CountLimit = None
    #: How fast an IV bolus is pushed (a bolus is not an infusion: its own limits).
    bolus_rate_per_kg: RatePerKgLimit = None
    bolus_duration: DurationLimit = None
    #: Every IV phase that is not a bolus (timed, rate, fixed over a duration).
    rate_per_kg: RatePerKgLimit = None
    rate: RateLimit = None
    rate_per_kg_actual: RatePerKgLimit = None
    infusion_duration: DurationLimit = None
    #: The whole session, every phase.
    total_duration: DurationLimit = None
    final_concentration: ConcentrationLimit = None
    pump_rate: PumpRateLimit = None
    #: The volume of each injection that is not infused (IM, SC): what one site receives,
    #: from the rounded draw.
    injection_volume: VolumeLimit = None
    #: The volume of a liquid dose taken by mouth or held under the tongue (sublingual, oral),
    #: as measured.
    liquid_volume: VolumeLimit = None
    #: The tablets (troches, lozenges, capsules) of one dose, as counted.
    tablet_count: CountLimit = None
    #: The predicted plasma peak (ng/mL, the default PK model; ``ketadose simulate``).
    predicted_peak: PlasmaLimit = None


class PatientLimits(Strict):
    """Plausibility and suitability of the patient."""

    weight: WeightLimit = None
    age: AgeLimit = None
    bmi: BmiLimit = None


class SeriesLimits(Strict):
    """Parameters across sessions (need previous sessions and a session time)."""

    dose_per_24h: AccumulatedLimit = None
    dose_per_7d: AccumulatedLimit = None
    #: The session's total when no previous session is known: the first of a series (e.g.
    #: esketamine: "84 mg only after an initial 56-mg dose").
    first_session_dose: AccumulatedLimit = None
    sessions_per_7d: CountLimit = None
    interval: DurationLimit = None
    #: The step from the previous session's dose: per kg (weight-based) or in mg (a fixed
    #: dose, e.g. an oral ladder of +25 mg).
    escalation_step: AccumulatedLimit = None


class VitalLimits(Strict):
    """Vital signs: before a session (hold / do not start) or during it (pause / stop)."""

    systolic: PressureLimit = None
    diastolic: PressureLimit = None
    heart_rate: HeartRateLimit = None
    spo2: SaturationLimit = None


class Profile(Strict):
    """The limits of one protocol, of one route, or the ``default`` profile.

    A protocol's profile names the route it is written for (``route = "iv"``), and applies
    only to a protocol of that id *and* that route: IM limits never reach an IV protocol
    that happens to share the id.
    """

    route: Route | None = None
    # Factories, not instances: an instance here would build validators at import time.
    session: SessionLimits = Field(default_factory=SessionLimits)
    patient: PatientLimits = Field(default_factory=PatientLimits)
    series: SeriesLimits = Field(default_factory=SeriesLimits)
    vitals_pre: VitalLimits = Field(default_factory=VitalLimits)
    vitals_during: VitalLimits = Field(default_factory=VitalLimits)


Screening = Literal["info", "soft", "hard"]


class Medication(Sourced):
    """A medication (or class) screened before a session."""

    name: str = Field(min_length=1)
    drug_class: str = Field(alias="class", min_length=1)
    aliases: tuple[str, ...] = ()
    severity: Screening
    hold: Duration | None = Field(default=None, description="No dose within this time before.")
    message: str = Field(min_length=3)
    protocols: tuple[str, ...] = Field(default=(), description="Only these (empty: all).")


class Condition(Sourced):
    """A contraindication: absolute (hard) or relative (soft)."""

    name: str = Field(min_length=1)
    aliases: tuple[str, ...] = ()
    severity: Literal["soft", "hard"]
    message: str = Field(min_length=3)
    protocols: tuple[str, ...] = Field(default=(), description="Only these (empty: all).")


def _names(entry: Medication | Condition) -> Iterator[str]:
    yield entry.name.casefold()
    yield from (alias.casefold() for alias in entry.aliases)


class LimitFile(Strict):
    """The whole of one limit library file."""

    library: LibraryHeader
    profiles: dict[str, Profile]
    #: Route profiles (``[routes.im]``): between the default and a protocol's profile.
    routes: dict[Route, Profile] = Field(default_factory=dict)
    medications: tuple[Medication, ...] = ()
    conditions: tuple[Condition, ...] = ()
    #: Who may override each finding class, and which overrides a second clinician co-signs
    #: (:mod:`ketadose.authority`); none: a prescriber overrides, nobody co-signs.
    overrides: dict[str, OverrideRule] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> "LimitFile":
        check_classes(self.overrides)
        if "default" not in self.profiles:
            raise ValueError("profiles needs a [profiles.default]")
        if self.profiles["default"].route is not None:
            raise ValueError("profiles.default applies to every route: it names none")
        for name, profile in self.profiles.items():
            if name != "default" and profile.route is None:
                raise ValueError(
                    f'profiles.{name} must name the route it is written for, e.g. route = "iv"'
                )
        for route, profile in self.routes.items():
            if profile.route is not None:
                raise ValueError(f"routes.{route} is a route profile: it names no other route")
        for kind, entries in (("medication", self.medications), ("condition", self.conditions)):
            seen: dict[str, str] = {}
            for entry in entries:
                for name in _names(entry):
                    if name in seen:
                        raise ValueError(
                            f'{kind} name "{name}" is used by "{seen[name]}" and "{entry.name}"'
                        )
                    seen[name] = entry.name
        return self


SECTIONS: dict[str, type[Strict]] = {
    "session": SessionLimits,
    "patient": PatientLimits,
    "series": SeriesLimits,
    "vitals_pre": VitalLimits,
    "vitals_during": VitalLimits,
}


#: What a library must limit, with a hard side, for every protocol it serves (through the
#: default profile, a route profile or the protocol's own): the session's doses, rates,
#: concentration, pump and duration, and the plausibility of the patient and the vital signs.
REQUIRED: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("session", "total_dose_per_kg", ("upper_hard",)),
    ("session", "total_dose", ("upper_hard",)),
    ("session", "rate_per_kg", ("upper_hard",)),
    ("session", "rate", ("upper_hard",)),
    ("session", "bolus_dose_per_kg", ("upper_hard",)),
    ("session", "final_concentration", ("upper_hard",)),
    ("session", "pump_rate", ("upper_hard",)),
    ("session", "infusion_duration", ("upper_hard",)),
    ("patient", "weight", ("lower_hard", "upper_hard")),
    ("patient", "age", ("lower_hard", "upper_hard")),
    *(
        (section, parameter, sides)
        for section in ("vitals_pre", "vitals_during")
        for parameter, sides in (
            ("systolic", ("lower_hard", "upper_hard")),
            ("diastolic", ("lower_hard", "upper_hard")),
            ("heart_rate", ("lower_hard", "upper_hard")),
            ("spo2", ("lower_hard",)),
        )
    ),
)

#: What each route's protocols need limited beyond ``REQUIRED``: what one injection site
#: receives (IM, SC), and what a dose measured out of a liquid or tablets holds.
REQUIRED_BY_ROUTE: dict[str, tuple[tuple[str, str, tuple[str, ...]], ...]] = {
    "im": (("session", "injection_volume", ("upper_hard",)),),
    "sc": (("session", "injection_volume", ("upper_hard",)),),
    "sublingual": (
        ("session", "liquid_volume", ("upper_hard",)),
        ("session", "tablet_count", ("upper_hard",)),
    ),
    "oral": (
        ("session", "liquid_volume", ("upper_hard",)),
        ("session", "tablet_count", ("upper_hard",)),
    ),
}


@dataclass(frozen=True, slots=True)
class LimitLibrary:
    """A validated limit library and the file it came from."""

    content: LimitFile
    ref: LibraryRef
    _effective: dict[tuple[str, str], Profile] = field(
        default_factory=dict, compare=False, repr=False
    )
    _resolved: dict[tuple[str, str, str, str], Limit | None] = field(
        default_factory=dict, compare=False, repr=False
    )
    _names: dict[str, dict[str, Medication | Condition]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def profile(self, protocol_id: str, route: str) -> Profile:
        """The limits in effect for a protocol given by a route.

        The default profile, refined by the route's profile (``[routes.ROUTE]``), refined by
        the protocol's own profile if it is written for this route: where a later one names a
        parameter, its limit replaces the earlier one's whole.

        Args:
            protocol_id: The protocol.
            route: The protocol's route.

        Returns:
            A profile with every parameter resolved (computed once per protocol and route).
        """
        key = (protocol_id, route)
        cached = self._effective.get(key)
        if cached is not None:
            return cached
        profile = self.content.profiles["default"]
        layers = [self.content.routes.get(route)]  # type: ignore[call-overload]
        own = self.content.profiles.get(protocol_id)
        if protocol_id != "default" and own is not None and own.route == route:
            layers.append(own)
        for layer in layers:
            if layer is not None:
                profile = _refined(profile, layer)
        self._effective[key] = profile
        return profile

    def limit(self, protocol_id: str, section: str, parameter: str, route: str) -> Limit | None:
        """The limit in effect for one parameter of a protocol (see :meth:`profile`).

        Args:
            protocol_id: The protocol.
            section: ``session``, ``patient``, ``series``, ``vitals_pre`` or ``vitals_during``.
            parameter: The parameter's name in that section.
            route: The protocol's route.

        Returns:
            The limit, or None where no profile in effect limits the parameter.
        """
        key = (protocol_id, section, parameter, route)
        try:
            return self._resolved[key]  # the checker asks ~20 times a session: resolve once
        except KeyError:
            limit: Limit | None = getattr(
                getattr(self.profile(protocol_id, route), section), parameter
            )
            self._resolved[key] = limit
            return limit

    def foreign_profile(self, protocol_id: str, route: str) -> str | None:
        """The route of a profile that shares a protocol's id but not its route, or None.

        Args:
            protocol_id: The protocol.
            route: Its route.

        Returns:
            The profile's route, when it exists and differs (so it does not apply).
        """
        own = self.content.profiles.get(protocol_id)
        if protocol_id == "default" or own is None or own.route == route:
            return None
        return own.route

    def named(self, kind: Literal["medications", "conditions"]) -> dict[str, Any]:
        """The medications or conditions by every casefolded name and alias (built once).

        Args:
            kind: ``medications`` or ``conditions``.

        Returns:
            Name to entry.
        """
        index = self._names.get(kind)
        if index is None:
            entries: tuple[Medication | Condition, ...] = getattr(self.content, kind)
            index = {name: entry for entry in entries for name in _names(entry)}
            self._names[kind] = index
        return index

    def missing(self, protocol_id: str, route: str) -> list[str]:
        """What the library fails to limit for a protocol (see ``REQUIRED``).

        Args:
            protocol_id: The protocol.
            route: Its route.

        Returns:
            ``section.parameter.side`` for each hard side that no profile in effect gives.
        """
        gaps = []
        for section, parameter, sides in (*REQUIRED, *REQUIRED_BY_ROUTE.get(route, ())):
            limit = self.limit(protocol_id, section, parameter, route)
            for side in sides:
                if limit is None or getattr(limit.bounds, side) is None:
                    gaps.append(f"{section}.{parameter}.{side}")
        return gaps

    def check_protocols(self, protocols: Mapping[str, str]) -> None:
        """Refuse a library that does not fit the protocols it serves.

        A profile, medication or condition naming an unknown protocol is refused (a typo
        would otherwise silently not apply, or turn a contraindication into "listed for
        other protocols"), and so is a library that leaves any protocol's doses, rates,
        concentration, pump rate, duration, patient or vital signs without a hard limit.

        Args:
            protocols: The protocols in effect, id to route.

        Raises:
            ConfigError: Naming the library file and the field.
        """
        for name in self.content.profiles:
            if name != "default" and name not in protocols:
                raise ConfigError(
                    f'profile "{name}" names no protocol in the protocol library',
                    path=self.ref.path,
                    location=f"profiles.{name}",
                )
        listed: tuple[tuple[str, tuple[Medication | Condition, ...]], ...] = (
            ("medications", self.content.medications),
            ("conditions", self.content.conditions),
        )
        for section, entries in listed:
            for index, entry in enumerate(entries):
                for protocol_id in entry.protocols:
                    if protocol_id not in protocols:
                        raise ConfigError(
                            f'"{protocol_id}" names no protocol in the protocol library',
                            path=self.ref.path,
                            location=f"{section}[{index}]({entry.name}).protocols",
                        )
        for protocol_id, route in sorted(protocols.items()):
            gaps = self.missing(protocol_id, route)
            if gaps:
                raise ConfigError(
                    f"limits nothing for {protocol_id} ({route}) on {len(gaps)} side(s): "
                    f"{', '.join(gaps)}; give them in [profiles.default], [routes.{route}] "
                    f"or the protocol's profile",
                    path=self.ref.path,
                    location=f"profiles.{protocol_id}"
                    if protocol_id in self.content.profiles
                    else "profiles.default",
                )


def _refined(base: Profile, layer: Profile) -> Profile:
    """``base`` with every parameter ``layer`` names replaced by ``layer``'s."""
    updates: dict[str, Any] = {}
    for section in SECTIONS:
        mine = getattr(layer, section)
        named = {
            key: value
            for key in type(mine).model_fields
            if (value := getattr(mine, key)) is not None
        }
        if named:
            updates[section] = getattr(base, section).model_copy(update=named)
    return base.model_copy(update=updates)


def load_file(data: bytes, path: str) -> LimitLibrary:
    """Parse and validate the bytes of a limit library.

    Args:
        data: The file's bytes.
        path: How to name the file in messages.

    Returns:
        The library.

    Raises:
        ConfigError: When the file is not UTF-8 TOML or does not validate.
    """
    content, ref = read_library(data, path, LimitFile)
    return LimitLibrary(content, ref)


def shipped_bytes() -> bytes:
    """The shipped example library's bytes (for ``limits init``)."""
    return resources.files("ketadose.data").joinpath(SHIPPED_FILE).read_bytes()


def load_library(path: Path | None = None) -> LimitLibrary:
    """Load a clinic's limit library, or the shipped example when no path is given.

    Args:
        path: The file (``--limits`` or ``KETADOSE_LIMITS``), or None.

    Returns:
        The library.

    Raises:
        ConfigError: When the file cannot be read or does not validate.
    """
    if path is None:
        return LimitLibrary(*read_shipped(SHIPPED_FILE, LimitFile))
    return load_file(read_file(path), str(path))


# --- the checker -------------------------------------------------------------------------


_LABELS = {
    "total_dose_per_kg": "total dose",
    "total_dose": "total dose",
    "total_dose_per_kg_actual": "total dose per kg of actual weight",
    "bolus_dose_per_kg": "bolus dose",
    "bolus_dose": "bolus dose",
    "bolus_count": "number of boluses",
    "bolus_rate_per_kg": "bolus rate",
    "bolus_duration": "bolus push time",
    "rate_per_kg": "rate",
    "rate": "rate",
    "rate_per_kg_actual": "rate per kg of actual weight",
    "infusion_duration": "infusion duration",
    "total_duration": "session duration",
    "final_concentration": "final concentration",
    "pump_rate": "pump rate",
    "injection_volume": "injection volume",
    "liquid_volume": "liquid volume",
    "tablet_count": "tablets",
    "first_session_dose": "first-session dose (no previous session)",
    "predicted_peak": "predicted plasma peak",
    "weight": "weight",
    "age": "age",
    "bmi": "BMI",
    "dose_per_24h": "dose in 24 h",
    "dose_per_7d": "dose in 7 days",
    "sessions_per_7d": "sessions in 7 days",
    "interval": "interval since the last session",
    "escalation_step": "escalation step",
    "systolic": "systolic BP",
    "diastolic": "diastolic BP",
    "heart_rate": "heart rate",
    "spo2": "SpO2",
}


def classify(value: float, bounds: Bounds) -> tuple[Severity, str] | None:
    """Which side a value crosses, if any.

    Args:
        value: The value, in ``bounds.kind.unit``.
        bounds: The limit's sides.

    Returns:
        ``(severity, side)`` for the most severe side crossed (``upper_hard`` before
        ``upper_soft``), or None within limits. Exactly at a limit is within it, unless the
        limit names that side ``inclusive`` ("65 and over"): then exactly at it is past it.
    """
    for side, severity, sign, limit, tolerance, inclusive in bounds.order:
        beyond = sign * (value - limit)
        if beyond > tolerance or (inclusive and beyond >= -tolerance):
            return severity, side
    return None


_SIDE_WORDS = {
    "upper_hard": ("exceeds", "hard maximum"),
    "upper_soft": ("exceeds", "soft maximum"),
    "lower_hard": ("is below", "hard minimum"),
    "lower_soft": ("is below", "soft minimum"),
}
#: For an inclusive side the limit value itself is past it: "is at or above the soft limit".
_INCLUSIVE_WORDS = {
    "upper_hard": ("is at or above", "hard limit"),
    "upper_soft": ("is at or above", "soft limit"),
    "lower_hard": ("is at or below", "hard limit"),
    "lower_soft": ("is at or below", "soft limit"),
}


def _pair(value: float, limit: float, unit: str) -> tuple[str, str]:
    """A value and its limit for a message, told apart, durations in h once long."""
    if unit == "min" and limit >= 120:
        value, limit, unit = value / 60, limit / 60, "h"
    suffix = f" {unit}" if unit else ""
    return f"{show(value, limit)}{suffix}", f"{show(limit)}{suffix}"


def _evidence(evidence: str, approved: bool) -> str:
    """How a limit's basis reads in a message: "site policy example", "HIGH evidence"."""
    if evidence == "SITE-POLICY":
        return "site policy" if approved else "site policy example"
    if evidence == "COMPUTED":
        return "computed from sources"
    return f"{evidence} evidence"


class _Checker:
    """Collects the findings of one check."""

    def __init__(self, library: LimitLibrary, protocol_id: str, route: str) -> None:
        self.library = library
        self.protocol_id = protocol_id
        self.route = route
        self.findings: list[Finding] = []

    def value(
        self,
        section: str,
        parameter: str,
        value: float | None,
        what: str = "",
        *,
        delivered: float | None = None,
        how: str | Callable[[], str] = "",
    ) -> None:
        """Check a value, as prescribed and as delivered, against the parameter's limit.

        Args:
            section: The limit's section.
            parameter: The limited parameter.
            value: The value as prescribed (computed), or None when it does not apply.
            what: What the value is of, for the message (a phase's label).
            delivered: The value as delivered after rounding, where it differs.
            how: How it is delivered, for the message ("at the rounded 16 mL/h"), or a
                function that says it (called only for a finding).
        """
        limit = self.library.limit(self.protocol_id, section, parameter, self.route)
        if limit is None:
            return
        bounds = limit.bounds
        if bounds.step is not None:
            self._step(section, parameter, limit, value, delivered, what)
        found = None if value is None else classify(value, bounds)
        late = None if delivered is None else classify(delivered, bounds)
        # The worse of the two decides; a tie goes to the value as prescribed.
        shown_value = value
        if late is not None and (found is None or _RANK[late[0]] > _RANK[found[0]]):
            found, shown_value = late, delivered
        if found is None or shown_value is None:
            return
        severity, side = found
        limit_value = getattr(bounds, side)
        verb, noun = (_INCLUSIVE_WORDS if side in bounds.inclusive else _SIDE_WORDS)[side]
        label = _LABELS[parameter] + (f" ({what})" if what else "")
        if shown_value is delivered and how:
            label += f" delivered {how if isinstance(how, str) else how()}"
        shown, shown_limit = _pair(shown_value, limit_value, bounds.unit)
        message = (
            f"{label} {shown} {verb} the {noun} {shown_limit} for {self.protocol_id} "
            f"({_evidence(limit.evidence, self.library.ref.approved)})"
        )
        direction = "high" if side.startswith("upper") else "low"
        self.findings.append(
            Finding(
                severity=severity,
                code=f"{parameter.replace('_', '-')}-{direction}",
                message=message,
                parameter=f"{section}.{parameter}",
                value=shown_value,
                limit=limit_value,
                side=side,
                unit=bounds.unit or None,
                source=limit.source,
            )
        )

    def _step(
        self,
        section: str,
        parameter: str,
        limit: Limit,
        value: float | None,
        delivered: float | None,
        what: str,
    ) -> None:
        """Refuse a value that is not a whole number of the limit's ``step`` (hard)."""
        bounds = limit.bounds
        step = bounds.step
        off = next((v for v in (value, delivered) if v is not None and bounds.off_step(v)), None)
        if step is None or off is None:
            return
        unit = f" {bounds.unit}" if bounds.unit else ""
        below = math.floor(off / step) * step
        label = _LABELS[parameter] + (f" ({what})" if what else "")
        choices = [c for c in (below, below + step) if c > 0]
        message = (
            f"{label} {show(off)}{unit} is not a whole number of {show(step)}{unit} steps for "
            f"{self.protocol_id}: give "
            + " or ".join(f"{show(c)}{unit}" for c in choices)
            + f" ({_evidence(limit.evidence, self.library.ref.approved)})"
        )
        self.findings.append(
            Finding(
                severity=Severity.HARD,
                code=f"{parameter.replace('_', '-')}-step",
                message=message,
                parameter=f"{section}.{parameter}",
                value=off,
                limit=step,
                unit=bounds.unit or None,
                source=limit.source,
            )
        )

    def note(self, severity: Severity, code: str, message: str, source: str | None = None) -> None:
        """Add a finding that is not a numeric limit (medication, condition, missing data)."""
        self.findings.append(Finding(severity=severity, code=code, message=message, source=source))


_RANK = {Severity.INFO: 0, Severity.SOFT: 1, Severity.HARD: 2}


def check_dose(session: DosedSession, library: LimitLibrary) -> list[Finding]:
    """Check what depends on the session alone: its doses, rates, pump and the patient.

    Args:
        session: The session as computed by :mod:`ketadose.dosing`, prepared or not (before
            preparation only the prescribed values are checked).
        library: The limit library.

    Returns:
        The session and patient findings, in that order.
    """
    return check_programme(session, library) + check_patient(
        session.patient, library, session.protocol.id, session.protocol.route
    )


def check_programme(session: DosedSession, library: LimitLibrary) -> list[Finding]:
    """The session findings of :func:`check_dose`: its doses, rates, pump, concentration.

    Args:
        session: The dosed session, prepared or not.
        library: The limit library.

    Returns:
        The findings.
    """
    checker = _Checker(library, session.protocol.id, session.protocol.route)
    _check_session(checker, session)
    return checker.findings


def check_patient(
    patient: Patient, library: LimitLibrary, protocol_id: str, route: str
) -> list[Finding]:
    """The patient findings of :func:`check_dose`: weight, age and BMI plausibility.

    Args:
        patient: The patient.
        library: The limit library.
        protocol_id: Whose limits apply.
        route: The protocol's route.

    Returns:
        The findings.
    """
    checker = _Checker(library, protocol_id, route)
    checker.value("patient", "weight", patient.weight_kg)
    checker.value("patient", "age", patient.age_years)
    checker.value("patient", "bmi", patient.bmi)
    return checker.findings


def check(
    session: DosedSession,
    library: LimitLibrary,
    context: CheckContext | None = None,
    *,
    dose_findings: list[Finding] | None = None,
) -> list[Finding]:
    """Check a computed session against the limit library.

    Args:
        session: The session as computed by :mod:`ketadose.dosing`.
        library: The limit library.
        context: Vitals, medications, conditions, previous sessions and the session time.
        dose_findings: :func:`check_dose` of this same session and library, when the caller
            checks one session in several contexts (a plan's sessions at one dose).

    Returns:
        Every finding, in a stable order: session, patient, series, vitals, medications,
        conditions.
    """
    context = context or CheckContext()
    checker = _Checker(library, session.protocol.id, session.protocol.route)
    checker.findings = list(
        check_dose(session, library) if dose_findings is None else dose_findings
    )
    _check_series(checker, session, context)
    if context.vitals is not None:
        _check_vitals(checker, context.vitals, context.during)
    if context.peak is not None:
        _check_vitals(checker, context.peak, True)
    _check_medications(checker, library, session.protocol.id, context)
    _check_conditions(checker, library, session.protocol.id, context.conditions)
    return checker.findings


def _at_pump(pump_ml_per_h: float) -> Callable[[], str]:
    """How a delivered value comes about, said only if a message needs it."""
    return lambda: f"at the rounded {format_number(pump_ml_per_h)} mL/h"


def _check_session(checker: _Checker, session: DosedSession) -> None:
    """Every phase of every kind, on the values as prescribed and as delivered."""
    kg = None if session.dosing_weight is None else session.dosing_weight.kg
    actual = session.patient.weight_kg
    infused = session.protocol.route == "iv"

    def per(mg: float | None, weight: float | None) -> float | None:
        return None if mg is None or weight is None else mg / weight

    def amount(
        names: tuple[str | None, str | None, str | None],
        prescribed: float | None,
        delivered: float | None,
        what: str = "",
        how: str | Callable[[], str] = "",
    ) -> None:
        """One amount (mg or mg/h) against its per-kg, absolute and per-actual-kg limits."""
        for name, weight in zip(names, (kg, 1.0, actual), strict=True):
            if name is not None:
                checker.value(
                    "session",
                    name,
                    per(prescribed, weight),
                    what,
                    delivered=per(delivered, weight),
                    how=how,
                )

    drawn = "from the rounded draw"
    preparation = session.preparation
    # The rounded draw over the exact one: how much more (or less) each phase's volume holds.
    drawn_share = (
        None
        if preparation is None or preparation.draw_ml <= 0
        else preparation.draw_ml_rounded / preparation.draw_ml
    )
    totals = ("total_dose_per_kg", "total_dose", "total_dose_per_kg_actual")
    amount(totals, session.total_dose_mg, session.delivered_total_mg, how=drawn)
    checker.value("session", "total_duration", session.total_duration_min)
    bolus = ("bolus_dose_per_kg", "bolus_dose", None)
    boluses = [phase for phase in session.phases if phase.kind == "bolus"]
    for phase in session.phases:
        how: str | Callable[[], str] = ""
        if (pump := phase.pump_rate_ml_per_h_rounded) is not None:
            how = _at_pump(pump)
        label, timed = phase.label, infused and phase.duration_min is not None
        rate, given = phase.rate_mg_per_h, phase.delivered_rate_mg_per_h
        if phase.kind == "bolus":
            amount(bolus, phase.dose_mg, phase.delivered_dose_mg, label, how)
            if timed:
                amount(("bolus_rate_per_kg", None, None), rate, given, label, how)
                checker.value("session", "bolus_duration", phase.duration_min, label)
        elif timed:
            # Timed, rate and fixed phases alike: an IV dose over a duration is an infusion.
            amount(("rate_per_kg", "rate", "rate_per_kg_actual"), rate, given, label, how)
            checker.value("session", "infusion_duration", phase.duration_min, label)
        # The pump is programmed with the rounded rate: that is the one checked.
        programmed = phase.pump_rate_ml_per_h_rounded or phase.pump_rate_ml_per_h
        checker.value("session", "pump_rate", programmed, label)
        if not infused and phase.volume_ml is not None:
            # An injection (IM, SC): the volume one site receives, as drawn.
            checker.value(
                "session",
                "injection_volume",
                phase.volume_ml,
                label,
                delivered=None if drawn_share is None else phase.volume_ml * drawn_share,
                how=drawn,
            )
    if len(boluses) > 1:
        # Several boluses are one dose given fast: their sum meets the bolus limits too.
        total = sum(phase.dose_mg for phase in boluses)
        given_total = sum(phase.delivered_dose_mg or phase.dose_mg for phase in boluses)
        amount(bolus, total, given_total, f"{len(boluses)} boluses together")
    if boluses:
        checker.value("session", "bolus_count", float(len(boluses)))
    measured = session.measured
    if measured is not None:
        # What is measured out: the exact amount as prescribed, the measured one as given.
        parameter = "liquid_volume" if measured.unit == "mL" else "tablet_count"
        checker.value(
            "session",
            parameter,
            measured.amount,
            measured.name,
            delivered=measured.amount_rounded,
            how="as measured",
        )
    if session.preparation is not None:
        checker.value(
            "session",
            "final_concentration",
            session.preparation.final_mg_per_ml,
            delivered=session.preparation.delivered_mg_per_ml,
            how=drawn,
        )


def _check_series(checker: _Checker, session: DosedSession, context: CheckContext) -> None:
    if context.at is not None:
        aware(context.at, "the session time")
    if not context.history:
        # Without previous sessions, a 24-h or 7-day total is this session's own dose, and
        # this session is the first of its series.
        _accumulated(checker, session, None, None)
        _first_session(checker, session)
        return
    if context.at is None:
        raise InputError("previous sessions need the session time to be known")
    # Real (elapsed) time, in UTC: a wall-clock difference is an hour off across a DST change.
    # Each moment is converted once; every interval and window below is a UTC difference.
    # The other sessions may lie on both sides of this one (a session recorded after the
    # fact, between two others): each limit then takes the worse side, and each window is the
    # worst of every 24-h or 7-day window that contains this session.
    at = instant(aware(context.at, "the session time"))
    history = History.of(context.history)  # ordered once: a plan passes one it keeps ordered
    before = history.until(at)  # the sessions at or before this one come first
    moments = history.moments
    gaps = [at - moments[before - 1]] if before else []
    gaps += [moments[before] - at] if before < len(moments) else []
    checker.value("series", "interval", min(gaps).total_seconds() / 60)
    checker.value("series", "sessions_per_7d", float(history.busiest(at, timedelta(days=7))))
    _accumulated(checker, session, history, at)
    if not before:
        _first_session(checker, session)  # the first of its series, others recorded after it
        return
    last = history[before - 1]
    kg = None if session.dosing_weight is None else session.dosing_weight.kg
    previous_per_kg = last.dose_mg_per_kg
    if previous_per_kg is None and last.dose_mg is not None and kg is not None:
        previous_per_kg = last.dose_mg / kg
    # The step between two prescribed doses: a draw rounded by 0.01 mL is not a step. A dose
    # measured out of tablets or a liquid is also checked as measured: half a 200-mg tablet
    # is a 100-mg step of its own.
    measured = None if session.measured is None else session.delivered_total_mg
    step = checker.library.limit(checker.protocol_id, "series", "escalation_step", checker.route)
    if step is not None and step.bounds.kind is Kind.DOSE:
        # A previous dose recorded per kg is a dose in mg at this patient's weight.
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


def _first_session(checker: _Checker, session: DosedSession) -> None:
    """The first session of a series (no previous one known) against its own dose limit."""
    limit = checker.library.limit(
        checker.protocol_id, "series", "first_session_dose", checker.route
    )
    if limit is None:
        return
    mg = _given_mg(session)
    if limit.bounds.kind is Kind.DOSE_PER_KG:
        kg = None if session.dosing_weight is None else session.dosing_weight.kg
        if kg is None:
            return
        checker.value("series", "first_session_dose", mg / kg)
        return
    checker.value("series", "first_session_dose", mg)


def _given_mg(session: DosedSession) -> float:
    """A session's dose for the series limits: the larger of prescribed and delivered."""
    return max(session.total_dose_mg, session.delivered_total_mg or 0.0)


def _accumulated(
    checker: _Checker,
    session: DosedSession,
    history: History | None,
    at: datetime | None,
) -> None:
    """Accumulated dose in 24 h and 7 days, in mg or mg/kg as each limit is written.

    The worst of the windows of :meth:`History.windows` around ``at`` (an instant in UTC);
    without a history, the session's own dose.
    """
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
        windows: Iterable[tuple[PreviousSession, ...]] = (
            [()] if history is None or at is None else history.windows(at, window)
        )
        for window_sessions in windows:
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
            # The worst window; of equal ones, the one with most sessions of unknown dose.
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


def check_predicted_peak(
    library: LimitLibrary, protocol_id: str, route: str, peak_ng_per_ml: float
) -> list[Finding]:
    """Check a predicted plasma peak against ``session.predicted_peak``, if the library has one.

    Args:
        library: The limit library.
        protocol_id: Whose limits apply.
        route: The protocol's route.
        peak_ng_per_ml: The predicted peak.

    Returns:
        The findings.
    """
    checker = _Checker(library, protocol_id, route)
    checker.value("session", "predicted_peak", peak_ng_per_ml)
    return checker.findings


def check_vitals(
    library: LimitLibrary, protocol_id: str, route: str, vitals: Vitals, *, during: bool
) -> list[Finding]:
    """Check vital signs alone (e.g. a recorded session's peak readings).

    Args:
        library: The limit library.
        protocol_id: Whose limits apply.
        route: The protocol's route.
        vitals: The readings.
        during: Against the during-session limits (pause/stop) rather than pre-session ones.

    Returns:
        The vital-sign findings.
    """
    checker = _Checker(library, protocol_id, route)
    _check_vitals(checker, vitals, during)
    return checker.findings


def _check_vitals(checker: _Checker, vitals: Vitals, during: bool) -> None:
    section = "vitals_during" if during else "vitals_pre"
    checker.value(section, "systolic", vitals.systolic)
    checker.value(section, "diastolic", vitals.diastolic)
    checker.value(section, "heart_rate", vitals.heart_rate)
    checker.value(section, "spo2", vitals.spo2)


def _applies(entry: Medication | Condition, protocol_id: str) -> bool:
    return not entry.protocols or protocol_id in entry.protocols


def _check_medications(
    checker: _Checker, library: LimitLibrary, protocol_id: str, context: CheckContext
) -> None:
    index: dict[str, Medication] = library.named("medications") if context.medications else {}
    for use in context.medications:
        medication = index.get(use.name.strip().casefold())
        if medication is None:
            checker.note(
                Severity.SOFT,
                "medication-unknown",
                f'medication "{use.name}" is not in the limit library, so it was not screened: '
                "check the spelling or add it to the library",
            )
            continue
        if not _applies(medication, protocol_id):
            checker.note(
                Severity.INFO,
                f"medication-{_slug(medication.name)}-other-protocols",
                f"{use.name} ({medication.drug_class}) is screened for "
                f"{', '.join(medication.protocols)} only, not {protocol_id}",
                medication.source,
            )
            continue
        severity = Severity(medication.severity)
        name = f"{use.name} ({medication.drug_class})"
        hold = medication.hold
        code = f"medication-{_slug(medication.name)}"
        if hold is None:
            # No hold in the library: the entry says nothing about how long ago is long ago,
            # so a medication taken is screened as current, whenever its last dose was.
            since = (
                ""
                if use.hours_since is None
                else f" (last dose {format_number(use.hours_since, 0.1)} h ago; the library "
                "gives no hold for it, so it is screened as current)"
            )
            checker.note(severity, code, f"{name}{since}: {medication.message}", medication.source)
            continue
        hold_text = hold.text.strip()
        if use.hours_since is None:
            checker.note(
                severity,
                code,
                f"{name}: time of last dose not given; hold {hold_text} before a session, "
                f"measured from the last dose: {medication.message}",
                medication.source,
            )
        # A hold is "no dose within this time before": a last dose exactly the hold ago is
        # outside it. Compared in minutes, the unit the hold is kept in.
        elif use.hours_since * 60 < hold.value - slack(hold.value):
            checker.note(
                severity,
                code,
                f"{name}: last dose {format_number(use.hours_since, 0.1)} h ago, hold "
                f"{hold_text} from the last dose "
                f"({format_number(hold.value / 60 - use.hours_since, 0.1)} h to go): "
                f"{medication.message}",
                medication.source,
            )
        else:
            checker.note(
                Severity.INFO,
                f"{code}-held",
                f"{name}: last dose {format_number(use.hours_since, 0.1)} h ago, at least the "
                f"{hold_text} hold: not a current interaction",
                medication.source,
            )


def _check_conditions(
    checker: _Checker, library: LimitLibrary, protocol_id: str, conditions: tuple[str, ...]
) -> None:
    index: dict[str, Condition] = library.named("conditions") if conditions else {}
    for given in conditions:
        condition = index.get(given.strip().casefold())
        if condition is None:
            checker.note(
                Severity.SOFT,
                "condition-unknown",
                f'condition "{given}" is not in the limit library, so it was not screened: '
                "check the spelling or add it to the library",
            )
        elif not _applies(condition, protocol_id):
            checker.note(
                Severity.INFO,
                f"condition-{_slug(condition.name)}-other-protocols",
                f"{condition.name} is listed for {', '.join(condition.protocols)} only, not "
                f"{protocol_id}",
                condition.source,
            )
        else:
            kind = (
                "contraindication" if condition.severity == "hard" else "relative contraindication"
            )
            checker.note(
                Severity(condition.severity),
                f"condition-{_slug(condition.name)}",
                f"{condition.name} ({kind}): {condition.message}",
                condition.source,
            )


def _slug(name: str) -> str:
    return "-".join("".join(c if c.isalnum() else " " for c in name.casefold()).split())


# --- outcome -------------------------------------------------------------------------------


def clean_reason(reason: str | None) -> str | None:
    """An override reason as recorded: stripped, one printable line.

    Args:
        reason: As given, or None.

    Returns:
        The reason, or None when none was given.

    Raises:
        InputError: For a blank or multi-line reason.
    """
    if reason is None:
        return None
    text = reason.strip()
    if not text or not text.isprintable():
        raise InputError(InputField.OVERRIDE_REASON, " must be one line of text saying why")
    return text


def override(findings: list[Finding], reason: str | None) -> list[Finding]:
    """Acknowledge every soft finding with a reason; hard findings cannot be overridden.

    Args:
        findings: The findings of a check.
        reason: The clinician's reason (``--override-reason``), or None.

    Returns:
        The findings, soft ones marked ``overridden`` with the reason.

    Raises:
        InputError: For a blank or multi-line reason.
    """
    text = clean_reason(reason)
    if text is None:
        return findings
    return [
        f.model_copy(update={"overridden": True, "override_reason": text})
        if f.severity is Severity.SOFT
        else f
        for f in findings
    ]


def status(findings: list[Finding]) -> Literal["ok", "soft", "hard"]:
    """The most severe finding: ``hard``, ``soft`` (overridden or not) or ``ok``."""
    severities = {f.severity for f in findings}
    if Severity.HARD in severities:
        return "hard"
    if Severity.SOFT in severities:
        return "soft"
    return "ok"
