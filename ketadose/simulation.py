"""The ``simulate`` result: a session's (or a series') predicted plasma concentration over time.

Pure: the caller gives the computed sessions and their start times; :mod:`ketadose.pk` does
the arithmetic.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import TYPE_CHECKING, Any, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, GetCoreSchemaHandler
from pydantic_core import core_schema

from ketadose.errors import InputError, InputField
from ketadose.models import PhaseDose, ProtocolRef, Real, significant
from ketadose.pk import MODELS, Infusion, concentrations, session_infusions

if TYPE_CHECKING:
    from datetime import date, tzinfo

    from ketadose.dosing import DoseRequest
    from ketadose.limits import LimitLibrary
    from ketadose.models import DosingWeight, Status
    from ketadose.protocols import Protocol, ProtocolEntry

#: Most points in one series (10 days at one minute is 14,400).
MAX_POINTS = 200_000
NOTE = (
    "Predicted plasma concentration of racemic ketamine from a population model: an estimate, "
    "not a measurement. No validated effect-site model (ke0) exists for ketamine, so none is "
    "shown."
)


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


class ModelRef(_Out):
    """The PK model used, with its source and how it scales with weight."""

    id: str
    name: str
    source: str
    evidence: str
    scaling: str


class Point(_Out):
    """One point of the curve (ng/mL to 6 decimals: plain floats, validated in bulk)."""

    time_min: float
    concentration_ng_per_ml: float


class Sample(NamedTuple):
    """One point of a :class:`Series`, as it iterates."""

    time_min: float
    concentration_ng_per_ml: float


class Series:
    """The curve as two arrays of floats: 16 bytes a point, no object per point.

    Its JSON is the list of :class:`Point` objects it always was (and its schema that list's),
    written by pydantic; a list of point objects (``model_validate`` of a document) is
    validated as points and stored as arrays.
    """

    __slots__ = ("concentrations", "times")

    def __init__(self, times: Iterable[float], concentrations: Iterable[float]) -> None:
        """Store the points.

        Args:
            times: Minutes, one a point.
            concentrations: ng/mL, one a point.

        Raises:
            ValueError: When the two differ in length.
        """
        self.times = array("d", times)
        self.concentrations = array("d", concentrations)
        if len(self.times) != len(self.concentrations):
            raise ValueError(
                f"{len(self.times)} times but {len(self.concentrations)} concentrations"
            )

    def __len__(self) -> int:
        return len(self.times)

    def __iter__(self) -> Iterator[Sample]:
        return map(Sample, self.times, self.concentrations)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Series):
            return NotImplemented
        return self.times == other.times and self.concentrations == other.concentrations

    def __hash__(self) -> int:
        return hash((self.times.tobytes(), self.concentrations.tobytes()))

    def __repr__(self) -> str:
        return f"Series({len(self)} points)"

    def rows(self) -> list[dict[str, float]]:
        """The points as ``Point``'s dicts (what the JSON and CSV write), in order."""
        return [
            {"time_min": t, "concentration_ng_per_ml": c}
            for t, c in zip(self.times, self.concentrations, strict=True)
        ]

    def _written(self, info: core_schema.SerializationInfo) -> Iterable[dict[str, float]]:
        if info.mode_is_json():
            return self._streamed()
        return tuple(self.rows())  # as a tuple[Point, ...] field dumps

    def _streamed(self) -> Iterator[dict[str, float]]:
        """The points for pydantic's JSON writer, which writes each before it asks for the next.

        One dict, refilled: no dict a point (that halves the time to write 100 days). Both JSON
        paths copy or write an item at once (``tests/test_simulation.py`` compares them with the
        list of points over several distinct points, so a writer that kept the items fails).
        """
        point = {"time_min": 0.0, "concentration_ng_per_ml": 0.0}
        for point["time_min"], point["concentration_ng_per_ml"] in zip(
            self.times, self.concentrations, strict=True
        ):
            yield point

    @classmethod
    def _of_points(cls, points: tuple[Point, ...]) -> Series:
        return cls((p.time_min for p in points), (p.concentration_ng_per_ml for p in points))

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        """A Series as is; points validated as ``tuple[Point, ...]``; written as that list."""
        points = core_schema.no_info_after_validator_function(
            cls._of_points, handler.generate_schema(tuple[Point, ...])
        )
        return core_schema.json_or_python_schema(
            json_schema=points,
            python_schema=core_schema.union_schema([core_schema.is_instance_schema(cls), points]),
            serialization=core_schema.plain_serializer_function_ser_schema(
                cls._written, info_arg=True
            ),
        )


class RateStep(_Out):
    """One constant rate of a continuous titration's infusion schedule."""

    start_min: Real
    end_min: Real
    rate_mg_per_h: Real
    rate_mg_per_kg_per_h: Real | None


class Simulation(_Out):
    """The ``simulate --json`` document (plus ``schema_version``)."""

    model: ModelRef
    protocol: ProtocolRef
    weight_kg: Real
    sessions: int
    peak_ng_per_ml: Real
    peak_time_min: Real
    end_of_infusion_min: Real
    end_of_infusion_ng_per_ml: Real
    discharge_min: Real | None
    discharge_ng_per_ml: Real | None
    threshold_ng_per_ml: Real | None
    time_above_threshold_min: Real | None
    step_min: Real
    until_min: Real
    note: str
    series: Series
    #: A continuous titration's stepped rate (absent for sessions, whose JSON stays as it was).
    schedule: tuple[RateStep, ...] | None = Field(
        default=None, exclude_if=lambda value: value is None
    )


@dataclass(frozen=True, slots=True)
class Given:
    """One session as given: when its first phase starts (minutes from 0) and its phases."""

    start_min: float
    phases: tuple[PhaseDose, ...]


def simulate(
    model_id: str,
    protocol: ProtocolRef,
    weight_kg: float,
    sessions: Sequence[Given],
    *,
    step_min: float = 1.0,
    until_min: float | None = None,
    discharge_min: float | None = None,
    threshold_ng_per_ml: float | None = None,
    titration: bool = False,
) -> Simulation:
    """Predict the plasma concentration of the given sessions, superposed.

    Args:
        model_id: A key of ``pk.MODELS``.
        protocol: What was simulated.
        weight_kg: Body weight (the models scale with it).
        sessions: The sessions, in time order.
        step_min: Time between points.
        until_min: Last point (default: 4 h after the last infusion ends).
        discharge_min: When the patient may leave, to report the concentration then.
        threshold_ng_per_ml: Report the time spent above this concentration.
        titration: The sessions are the rungs of one continuous infusion: report its stepped
            rate as ``schedule``.

    Returns:
        The curve and its summary.

    Raises:
        InputError: For an unknown model, no dose, a step or end that does not fit.
    """
    model = MODELS.get(model_id)
    if model is None:
        raise InputError(f'unknown model "{model_id}"; models: {", ".join(sorted(MODELS))}')
    infusions = [i for s in sessions for i in session_infusions(s.phases, s.start_min)]
    if not infusions:
        raise InputError("nothing to simulate: no session has a dose")
    end = max(i.start_min + i.duration_min for i in infusions)
    until = end + 240 if until_min is None else until_min
    if not 0.01 <= step_min <= 1440:
        raise InputError(InputField.STEP, ": from 0.01 min to 24 h")
    count = int(until / step_min + 1e-9) + 1
    if until <= 0 or count > MAX_POINTS:
        raise InputError(
            InputField.UNTIL, " / ", InputField.STEP, f": 1 to {MAX_POINTS} points (asked {count})"
        )
    # An integral step's grid is exact as it is (round(x, 9) of a whole number is itself).
    if float(step_min).is_integer():
        grid = [n * step_min for n in range(count)]
    else:
        grid = [round(n * step_min, 9) for n in range(count)]
    marks = sorted({end, *(i.start_min + i.duration_min for i in infusions)})
    extra = [*marks, *([] if discharge_min is None else [discharge_min])]
    # The marks between grid points join it (the grid is ascending and has no repeats).
    between = sorted({t for t in extra if 0 <= t <= until and _find(grid, t) is None})
    times = sorted([*grid, *between]) if between else grid
    values = concentrations(model, weight_kg, infusions, times)
    peak = max(values)
    peak_time = times[values.index(peak)]  # the first time it is reached
    on_grid = values
    if between:
        on_grid = list(values)
        for index in sorted((bisect_left(times, t) for t in between), reverse=True):
            del on_grid[index]
    series = Series(grid, map(round, on_grid, repeat(6)))
    above = None
    if threshold_ng_per_ml is not None:
        above = _time_above(values, times, threshold_ng_per_ml)

    # The end and discharge are among the times unless --until stops before them.
    beyond = sorted({t for t in (end, discharge_min) if t is not None and _find(times, t) is None})
    later = dict(zip(beyond, concentrations(model, weight_kg, infusions, beyond), strict=True))

    def at(time: float) -> float:
        index = _find(times, time)
        return later[time] if index is None else values[index]

    discharge = None if discharge_min is None else at(discharge_min)
    at_end = at(end)
    return Simulation(
        model=ModelRef(
            id=model.id,
            name=model.name,
            source=model.source,
            evidence=model.evidence,
            scaling=model.scaling,
        ),
        protocol=protocol,
        weight_kg=weight_kg,
        sessions=len(sessions),
        peak_ng_per_ml=peak,
        peak_time_min=peak_time,
        end_of_infusion_min=end,
        end_of_infusion_ng_per_ml=at_end,
        discharge_min=discharge_min,
        discharge_ng_per_ml=discharge,
        threshold_ng_per_ml=threshold_ng_per_ml,
        time_above_threshold_min=above,
        step_min=step_min,
        until_min=until,
        note=NOTE,
        series=series,
        schedule=schedule(sessions) if titration else None,
    )


def schedule(sessions: Sequence[Given]) -> tuple[RateStep, ...]:
    """The infusion schedule of the sessions: each phase's constant rate, in time order.

    Args:
        sessions: The sessions (a titration's rungs, one after another).

    Returns:
        One step per phase with a duration.
    """
    steps = []
    for given in sessions:
        at = given.start_min
        for phase in given.phases:
            duration = phase.duration_min or 0.0
            if duration > 0 and phase.rate_mg_per_h is not None:
                steps.append(
                    RateStep(
                        start_min=at,
                        end_min=at + duration,
                        rate_mg_per_h=phase.rate_mg_per_h,
                        rate_mg_per_kg_per_h=phase.rate_mg_per_kg_per_h,
                    )
                )
            at += duration
    return tuple(steps)


def _find(times: list[float], time: float) -> int | None:
    """Where ``time`` is in ``times`` (ascending, no repeats), or None."""
    index = bisect_left(times, time)
    return index if index < len(times) and times[index] == time else None


def _time_above(values: list[float], times: list[float], threshold: float) -> float:
    """Minutes above ``threshold``, crossings placed by linear interpolation between points."""
    total = 0.0
    for (t0, c0), (t1, c1) in zip(
        zip(times, values, strict=True), zip(times[1:], values[1:], strict=True), strict=False
    ):
        if c0 > threshold and c1 > threshold:
            total += t1 - t0
        elif (c0 > threshold) != (c1 > threshold):
            crossing = t0 + (threshold - c0) / (c1 - c0) * (t1 - t0)
            total += (t1 - crossing) if c1 > threshold else (crossing - t0)
    return significant(total)


def infusion_end(phases: Sequence[PhaseDose], start_min: float = 0.0) -> float:
    """When a session's last phase ends.

    Args:
        phases: The phases.
        start_min: When the first starts.

    Returns:
        Minutes.
    """
    infusions: list[Infusion] = session_infusions(phases, start_min)
    return max((i.start_min + i.duration_min for i in infusions), default=start_min)


def simulation_refusal(protocol: Protocol) -> str:
    """Why a non-IV protocol is not simulated: what a source would have to give.

    A route is simulated only where one source gives both an absorption rate and a
    bioavailability for it; none of the sources seen gives an absorption rate for any non-IV
    route (Rolan 2014 and Chong 2006 report F and Tmax, not a model), so every one is refused.

    Args:
        protocol: A protocol whose route is not IV.

    Returns:
        The one-line reason.
    """
    found = protocol.bioavailability
    have = (
        f"its bioavailability ({found.percent:g} %, {found.cite}) has no absorption rate beside it"
        if found is not None
        else f"no {protocol.route} bioavailability is in the sources either"
    )
    return (
        f"{protocol.id} is given {protocol.route}: the models are of IV racemic ketamine, "
        f"and no source gives an absorption rate for the {protocol.route} route ({have})"
    )


@dataclass(frozen=True, slots=True)
class SimulationOutcome:
    """What ``simulate`` shows: the curve, and the checked dose it was computed from.

    Attributes:
        result: The curve and its summary (the ``simulate --json`` document).
        status: The verdict of the session (or the worst of the series) simulated.
        ready: Whether that session (or series) may go ahead.
        dosing_weight: The weight the dose was based on.
        body_weight_kg: The weight the model scales with, the patient's total body weight.
        protocol_name: The protocol's name, for the text output.
        stay: The protocol is one continuous stay (a titration's rungs), not sessions.
    """

    result: Simulation
    status: Status
    ready: bool
    dosing_weight: DosingWeight
    body_weight_kg: float
    protocol_name: str
    stay: bool


def simulate_session(
    entry: ProtocolEntry,
    request: DoseRequest,
    limits: LimitLibrary,
    *,
    model: str,
    series: bool = False,
    start: date | None = None,
    zone: tzinfo | None = None,
    step_min: float = 1.0,
    until_min: float | None = None,
    threshold_ng_per_ml: float | None = None,
) -> SimulationOutcome:
    """Check a session (or plan its series) through the gate, then predict its concentration.

    One session is given at minute 0 and the patient may leave at the end of its infusion plus
    the longer of the chair's recovery time and the protocol's observation. A series
    (``series``) is planned from ``start`` and its sessions superposed, discharge after the
    last. A protocol of one continuous stay (a titration) is always planned: its rungs as one
    stepped infusion, with no planned discharge (the inpatient team decides its end).

    Args:
        entry: The protocol (IV only).
        request: Patient and dose options.
        limits: The limit library the dose is checked against.
        model: A key of ``pk.MODELS``.
        series: Simulate the whole planned series (needs ``start``).
        start: The first day a session may take place (with ``series``).
        zone: The clinic's zone, the series' sessions are placed in (with ``start``).
        step_min: Time between points.
        until_min: Last point (default: 4 h after the last infusion ends).
        threshold_ng_per_ml: Report the time spent above this concentration.

    Returns:
        The curve, the verdict of the dose behind it and how it was dosed.

    Raises:
        InputError: For a route that is not IV, ``start`` without ``series`` (or ``series``
            without ``start``), no weight, and whatever the gate, the plan or
            :func:`simulate` refuse.
    """
    from ketadose import gate
    from ketadose.planning import RECOVERY_MIN

    if entry.protocol.route != "iv":
        raise InputError(simulation_refusal(entry.protocol))
    observation = entry.protocol.observation
    after = max(RECOVERY_MIN, 0.0 if observation is None else observation.minimum.value)
    stay = entry.protocol.titration is not None  # one continuous infusion, stepped
    if series or stay:
        from datetime import UTC
        from datetime import date as day_of

        from ketadose.clock import elapsed
        from ketadose.planning import PlanRequest
        from ketadose.planning import plan as make_plan

        if start is None and not stay:
            raise InputError(
                InputField.SERIES,
                " needs ",
                InputField.START,
                ": the first day a session may take place",
            )
        if start is not None and zone is None:
            raise ValueError("a start day needs the clinic's zone")  # a caller's bug
        # A stay's rungs are elapsed time from its start: without --start, any day in UTC.
        planned = make_plan(
            entry,
            PlanRequest(
                dose=request,
                start=day_of(2026, 1, 5) if start is None else start,
                zone=UTC if start is None or zone is None else zone,
            ),
            limits,
        )
        zero = planned.sessions[0].timeline.infusion_start
        given = [
            Given(elapsed(s.timeline.infusion_start, zero).total_seconds() / 60, s.phases)
            for s in planned.sessions
        ]
        last = planned.sessions[-1].timeline
        # A stay ends at its end point, as the inpatient team decides: no planned discharge.
        discharge = None if stay else elapsed(last.discharge_earliest, zero).total_seconds() / 60
        status, ready, kg = planned.status, planned.ready, planned.dosing_weight
        simulated = planned.protocol
    else:
        if start is not None:
            raise InputError(InputField.START, " is for ", InputField.SERIES)
        session = gate.session(entry, request, limits)
        given = [Given(0.0, session.phases)]
        discharge = infusion_end(session.phases) + after
        status, ready, kg = session.status, session.ready, session.dosing_weight
        simulated = session.protocol
    body = request.patient.weight_kg
    if kg is None or body is None:
        raise InputError("the models need the patient's weight: ", InputField.WEIGHT)
    result = simulate(
        model,
        simulated,
        body,  # the models scale with total body weight, whatever the dose was based on
        given,
        step_min=step_min,
        until_min=until_min,
        discharge_min=discharge,
        threshold_ng_per_ml=threshold_ng_per_ml,
        titration=stay,
    )
    return SimulationOutcome(
        result=result,
        status=status,
        ready=ready,
        dosing_weight=kg,
        body_weight_kg=body,
        protocol_name=entry.protocol.name,
        stay=stay,
    )
