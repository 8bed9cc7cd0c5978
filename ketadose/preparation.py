"""Pump arithmetic: vial, draw volume, final volume and concentration, mL/h, drops/min.

Pure functions on plain floats (mg, mL, min, h). The session's whole drug amount is made up
to one final volume (a bag or syringe); every IV phase runs from it, so each phase's pump
rate is its mg/h divided by the final concentration, and the phase volumes add up to the
final volume. Rounded values sit beside exact ones; nothing is rounded inside a computation.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ketadose.errors import InputError, InputField, joined
from ketadose.limits import slack
from ketadose.models import (
    Finding,
    Measured,
    PhaseDose,
    Preparation,
    Rounding,
    Severity,
    revised,
    step_problem,
)
from ketadose.units import format_number, round_to, show

if TYPE_CHECKING:
    from ketadose.libfile import Quantity
    from ketadose.protocols import Form

#: Ketalar vial strengths (Ketalar PI; Handbook on Injectable Drugs) [HIGH].
VIAL_STRENGTHS_MG_PER_ML = (10.0, 50.0, 100.0)
#: "100 mg/mL must be diluted before IV use" (Ketalar PI 2024) [HIGH].
MUST_DILUTE_MG_PER_ML = 100.0
#: Drop factors of common gravity sets (drops/mL): macro 10, 15, 20; micro 60.
DROP_FACTORS = (10, 15, 20, 60)
#: Routes given from a vial by syringe or bag; the others use a device or a tablet.
VIAL_ROUTES = ("iv", "im", "sc")
#: Preparation options that mean something for each route (the rest are refused).
_OPTIONS_BY_ROUTE = {
    "iv": (InputField.VIAL, InputField.BAG, InputField.DROP_FACTOR),
    "im": (InputField.VIAL,),
    "sc": (InputField.VIAL,),
    "sublingual": (InputField.STRENGTH,),
    "oral": (InputField.STRENGTH,),
}
DEFAULT_VIAL_MG_PER_ML = 10.0
#: Where a route's injection volume per site rules out the 10 mg/mL vial: SC is drawn from
#: 100 mg/mL by default. The SC volume per site is 1.5 mL soft, 3 mL hard (limits.toml,
#: routes.sc); 1 mg/kg SC (Glue 2017/2018 [HIGH]) at 115 kg is 115 mg: 11.5 mL of 10 mg/mL,
#: 2.3 mL of 50 mg/mL, 1.15 mL of 100 mg/mL [COMPUTED]. The choice of default is SITE-POLICY.
DEFAULT_VIAL_BY_ROUTE = {"sc": 100.0}
DEFAULT_DILUENT = "0.9% sodium chloride"


@dataclass(frozen=True, slots=True)
class Sides:
    """Limits a rounded value must not be pushed across, each with how a message names it.

    Rounding goes to the nearest step, unless that step crosses one of these limits that the
    exact value is within: then it goes the other way (down when a maximum is near, up when a
    minimum is), and says so. A value already past a limit is rounded to the nearest step;
    the gate refuses it anyway.

    Attributes:
        upper: Maxima, as (value, what names it: "the 25 mg/h hard maximum" once formatted).
        lower: Minima, likewise.
    """

    upper: tuple[tuple[float, object], ...] = ()
    lower: tuple[tuple[float, object], ...] = ()

    def scaled(self, factor: float) -> "Sides":
        """The same limits in another unit (e.g. mg/h to mL/h: ``1 / concentration``)."""
        return Sides(
            tuple((value * factor, name) for value, name in self.upper),
            tuple((value * factor, name) for value, name in self.lower),
        )

    def __add__(self, other: "Sides") -> "Sides":
        return Sides(self.upper + other.upper, self.lower + other.lower)


NO_SIDES = Sides()


@dataclass(frozen=True, slots=True)
class Steering:
    """The limits that steer a preparation's rounding (see :func:`round_safe`).

    Attributes:
        total: Limits on the session's total, in mg (they steer the draw).
        concentration: Limits on the final concentration, in mg/mL (likewise).
        doses: Each phase's limits in mg, in phase order (likewise: a draw rounded up gives
            every phase more).
        rates: Each phase's limits in mg/h, in phase order (they steer its pump rate).
        pump: Limits on the pump rate, in mL/h.
        measured: Limits on a measured amount (a liquid's mL or a tablet count), in its unit.
    """

    total: Sides = NO_SIDES
    concentration: Sides = NO_SIDES
    doses: tuple[Sides, ...] = ()
    rates: tuple[Sides, ...] = ()
    pump: Sides = NO_SIDES
    measured: Sides = NO_SIDES

    def dose(self, index: int) -> Sides:
        """Phase ``index``'s limits in mg (none given: no limit steers it)."""
        return self.doses[index] if index < len(self.doses) else NO_SIDES

    def rate(self, index: int) -> Sides:
        """Phase ``index``'s limits in mg/h (none given: no limit steers it)."""
        return self.rates[index] if index < len(self.rates) else NO_SIDES


NO_STEERING = Steering()


def _crossed(exact: float, rounded: float, sides: Sides) -> object | None:
    """The limit that rounding ``exact`` to ``rounded`` pushes it across, or None.

    "Across" as the checker reads it: beyond the limit by more than its tolerance.
    """
    if rounded > exact:
        for limit, name in sides.upper:
            if exact <= limit + slack(limit) < rounded:
                return name
    elif rounded < exact:
        for limit, name in sides.lower:
            if exact >= limit - slack(limit) > rounded:
                return name
    return None


def round_safe(exact: float, step: float, sides: Sides) -> tuple[float, object | None]:
    """Round to a step toward the safe side of the nearest limit.

    Args:
        exact: The exact value.
        step: The increment (one of the sensible steps).
        sides: The limits in the value's unit.

    Returns:
        The rounded value, and what names the limit that decided the direction when it is
        not the nearest step (None when it is); ``str()`` of it is the name.
    """
    nearest = round_to(exact, step)
    crossed = _crossed(exact, nearest, sides)
    if crossed is None:
        return nearest, None
    other = round_to(nearest - step if nearest > exact else nearest + step, step)
    if other <= 0 or _crossed(exact, other, sides) is not None:
        return nearest, None
    return other, crossed


def rounding(pump_step_ml_per_h: float, draw_step_ml: float) -> Rounding:
    """The pump and draw increments, refused unless a pump or a syringe is read in them.

    Args:
        pump_step_ml_per_h: Pump rate increment (default 0.1 mL/h).
        draw_step_ml: Draw volume increment (default 0.01 mL).

    Returns:
        The rounding.

    Raises:
        InputError: For a step that is not one of ``PUMP_STEPS_ML_PER_H`` or
            ``DRAW_STEPS_ML``: an odd step (0.7 mL/h) is a typing error, and a coarse one
            would change what is given.
    """
    problem = step_problem(pump_step_ml_per_h, draw_step_ml)
    if problem is not None:
        raise InputError(problem)
    return Rounding(pump_rate_ml_per_h=pump_step_ml_per_h, draw_ml=draw_step_ml)


def programme(
    phases: tuple[PhaseDose, ...],
    *,
    route: str,
    vial_mg_per_ml: float | None,
    final_volume_ml: float | None,
    diluent: str = DEFAULT_DILUENT,
    drop_factor: int | None = None,
    rounding: Rounding | None = None,
    steer: Steering = NO_STEERING,
) -> tuple[Preparation | None, tuple[PhaseDose, ...], list[Finding]]:
    """Work out how the session's drug is drawn, made up and pumped, and what that delivers.

    The nurse draws the rounded volume and the pump runs each phase's volume at the rounded
    rate: ``delivered_*`` values are the rounded pump rate (or draw) times the concentration
    made from the rounded draw. Each rounding goes toward the safe side of the nearest limit
    (:class:`Sides`).

    Args:
        phases: The session's phases as dosed (mg, mg/h).
        route: The protocol's route; only ``iv`` gets a pump programme, ``im``/``sc`` get a
            draw volume, the others no preparation at all.
        vial_mg_per_ml: Vial strength; None means the default 10 mg/mL (100 mg/mL for sc).
        final_volume_ml: Volume the drug is made up to (IV); required for ``iv``.
        diluent: What it is made up with.
        drop_factor: Drops per mL of a gravity set, to add drops/min.
        rounding: Pump mL/h and draw mL increments.
        steer: The limits that steer the draw's and each pump rate's rounding (none
            given: nearest steps).

    Returns:
        The preparation (or None), the phases with pump rate, volume, drops/min and
        delivered values filled in, and info findings (one per rounding turned from the
        nearest step).

    Raises:
        InputError: For a vial strength that is not made, a final volume smaller than the
            drug drawn, or preparation options that do not apply to the route.

    """
    rounding = rounding or Rounding()
    findings: list[Finding] = []
    given = {
        InputField.VIAL: vial_mg_per_ml,
        InputField.BAG: final_volume_ml,
        InputField.DROP_FACTOR: drop_factor,
    }
    _refuse_other_routes_options(given, route)
    if route not in VIAL_ROUTES:
        findings.append(
            Finding(
                severity=Severity.INFO,
                code="no-preparation",
                message=f"{route} route: no vial, dilution or pump programme",
            )
        )
        given_as_is = tuple(revised(phase, delivered_dose_mg=phase.dose_mg) for phase in phases)
        return None, given_as_is, findings

    vial = (
        DEFAULT_VIAL_BY_ROUTE.get(route, DEFAULT_VIAL_MG_PER_ML)
        if vial_mg_per_ml is None
        else vial_mg_per_ml
    )
    if vial not in VIAL_STRENGTHS_MG_PER_ML:
        strengths = ", ".join(format_number(v) for v in VIAL_STRENGTHS_MG_PER_ML)
        raise InputError(f"vial {format_number(vial)} mg/mL is not made; use {strengths} mg/mL")
    if drop_factor is not None and drop_factor not in DROP_FACTORS:
        factors = ", ".join(str(f) for f in DROP_FACTORS)
        raise InputError(f"drop factor {drop_factor} is not a standard set; use {factors}")
    if route == "iv" and final_volume_ml is None:
        raise InputError(
            "an iv session needs the volume the drug is made up to: ", InputField.BAG, " 100mL"
        )

    total_mg = sum(phase.dose_mg for phase in phases)
    draw_ml = total_mg / vial
    # The draw decides what the bag holds: its mg, and (made up to the bag) its mg/mL.
    draw_sides = steer.total.scaled(1 / vial)
    # Each phase delivers its dose and rate scaled by the drawn/exact ratio: their limits are
    # limits on the draw too (a draw rounded up gives every phase more).
    for index, phase in enumerate(phases):
        if phase.dose_mg:
            draw_sides = draw_sides + steer.dose(index).scaled(draw_ml / phase.dose_mg)
        if route == "iv" and phase.rate_mg_per_h:
            draw_sides = draw_sides + steer.rate(index).scaled(draw_ml / phase.rate_mg_per_h)
    if route == "iv" and final_volume_ml is not None:
        draw_sides = draw_sides + steer.concentration.scaled(final_volume_ml / vial)
    draw, why = round_safe(draw_ml, rounding.draw_ml, draw_sides)
    if draw <= 0:
        raise InputError(
            f"draw volume {show(draw_ml)} mL rounds to 0 at {format_number(rounding.draw_ml)} mL "
            "steps: use a weaker vial or a finer ",
            InputField.DRAW_STEP,
        )
    if why is not None:
        findings.append(_turned("draw", "draw", draw_ml, draw, rounding.draw_ml, "mL", why))
    delivered_mg = draw * vial

    if route != "iv":
        share = delivered_mg / total_mg
        preparation = Preparation(
            vial_mg_per_ml=vial,
            draw_ml=draw_ml,
            draw_ml_rounded=draw,
            final_volume_ml=draw_ml,
            final_mg_per_ml=vial,
            diluent_ml=0.0,
            delivered_mg=delivered_mg,
            delivered_mg_per_ml=vial,
        )
        injected = tuple(
            revised(phase, volume_ml=phase.dose_mg / vial, delivered_dose_mg=phase.dose_mg * share)
            for phase in phases
        )
        return preparation, injected, findings

    assert final_volume_ml is not None  # refused above
    if draw_ml > final_volume_ml:
        raise InputError(
            f"{format_number(draw_ml, 0.01)} mL of {format_number(vial)} mg/mL does not fit in "
            f"{format_number(final_volume_ml)} mL: use a stronger vial or a larger ",
            InputField.BAG,
        )
    diluent_ml = final_volume_ml - draw_ml
    if vial >= MUST_DILUTE_MG_PER_ML:
        if diluent_ml <= 0:
            raise InputError(
                f"{format_number(vial)} mg/mL must be diluted before IV use: use a larger ",
                InputField.BAG,
            )
        findings.append(
            Finding(
                severity=Severity.INFO,
                code="vial-needs-dilution",
                message=f"{format_number(vial)} mg/mL vial: dilute before IV use "
                "(Ketalar PI); made up here to "
                f"{format_number(final_volume_ml)} mL",
            )
        )
    final_mg_per_ml = total_mg / final_volume_ml
    made_mg_per_ml = delivered_mg / final_volume_ml
    pumped = tuple(
        _pump(
            phase,
            final_mg_per_ml,
            made_mg_per_ml,
            drop_factor,
            rounding,
            steer.rate(index).scaled(1 / made_mg_per_ml) + steer.pump,
            findings,
        )
        for index, phase in enumerate(phases)
    )
    preparation = Preparation(
        vial_mg_per_ml=vial,
        draw_ml=draw_ml,
        draw_ml_rounded=draw,
        final_volume_ml=final_volume_ml,
        final_mg_per_ml=final_mg_per_ml,
        diluent_ml=diluent_ml,
        diluent=diluent,
        drop_factor_drops_per_ml=None if drop_factor is None else float(drop_factor),
        delivered_mg=delivered_mg,
        delivered_mg_per_ml=made_mg_per_ml,
    )
    return preparation, pumped, findings


def _refuse_other_routes_options(given: Mapping[InputField, object], route: str) -> None:
    """Refuse preparation options given for another route (a bag on an oral dose)."""
    wrong = [
        name
        for name, value in given.items()
        if value is not None and name not in _OPTIONS_BY_ROUTE.get(route, ())
    ]
    if wrong:
        raise InputError(*joined(wrong, ", "), f" does not apply to the {route} route")


def _turned(
    code: str, what: str, exact: float, rounded: float, step: float, unit: str, why: object
) -> Finding:
    """The finding that says a rounding went away from the nearest step, and for which limit."""
    direction = "down" if rounded < exact else "up"
    nearest = round_to(exact, step)
    return Finding(
        severity=Severity.INFO,
        code=f"{code}-rounded-{direction}",
        message=f"{what} {show(exact)} {unit} rounded {direction} to "
        f"{format_number(rounded, step)} {unit}, not to {format_number(nearest, step)} {unit}, "
        f"to stay within {why}",
    )


def _pump(
    phase: PhaseDose,
    mg_per_ml: float,
    made_mg_per_ml: float,
    drop_factor: int | None,
    rounding: Rounding,
    sides: Sides,
    findings: list[Finding],
) -> PhaseDose:
    """Fill in one phase's volume, pump rate, drops/min and delivered values.

    ``mg_per_ml`` is the exact programme's concentration: the pump runs the phase volumes,
    which add up to the bag. ``made_mg_per_ml`` is the bag's as made from the rounded draw:
    what each mL actually carries, so what the rounded pump rate delivers. ``sides`` are the
    phase's limits in mL/h at that concentration.
    """
    volume_ml = phase.dose_mg / mg_per_ml
    if phase.rate_mg_per_h is None or phase.duration_min is None:
        share = made_mg_per_ml / mg_per_ml
        return revised(phase, volume_ml=volume_ml, delivered_dose_mg=phase.dose_mg * share)
    pump = phase.rate_mg_per_h / mg_per_ml
    rounded, why = round_safe(pump, rounding.pump_rate_ml_per_h, sides)
    if rounded <= 0:
        raise InputError(
            f"{phase.label}: pump rate {show(pump)} mL/h rounds to 0 at "
            f"{format_number(rounding.pump_rate_ml_per_h)} mL/h steps: use a larger ",
            InputField.BAG,
            " or a finer ",
            InputField.PUMP_STEP,
        )
    if why is not None:
        findings.append(
            _turned(
                "pump-rate",
                f"{phase.label}: pump rate",
                pump,
                rounded,
                rounding.pump_rate_ml_per_h,
                "mL/h",
                why,
            )
        )
    drops = None if drop_factor is None else pump * drop_factor / 60
    delivered_rate = rounded * made_mg_per_ml
    return revised(
        phase,
        volume_ml=volume_ml,
        pump_rate_ml_per_h=pump,
        pump_rate_ml_per_h_rounded=rounded,
        drops_per_min=drops,
        delivered_rate_mg_per_h=delivered_rate,
        delivered_dose_mg=delivered_rate * phase.duration_min / 60,
    )


def measure(
    phases: tuple[PhaseDose, ...],
    *,
    route: str,
    form: "Form",
    strength: "Quantity | None",
    given: dict[InputField, object],
    steer: Steering = NO_STEERING,
) -> tuple[Measured, tuple[PhaseDose, ...], list[Finding]]:
    """Measure a dose out of a liquid or tablets, rounded toward the safe side of the limits.

    The dose is ``amount = total mg / strength`` mL or tablets; what can be measured is a
    whole number of the form's steps (a syringe's graduation, a tablet's parts), rounded as
    :func:`round_safe` does, so ``delivered_mg`` is the measured amount times the strength.

    Args:
        phases: The session's phases as dosed (mg).
        route: The protocol's route (for messages).
        form: What the protocol's doses are measured from.
        strength: The strength chosen, mg/mL or mg a tablet; None: the
            form's first.
        given: Preparation options given, by field (those that do not apply to the route
            are refused).
        steer: The limits that steer the rounding.

    Returns:
        The measured amount, the phases with their delivered values, and info findings.

    Raises:
        InputError: For a strength the form does not list, an option that does not apply,
            or a dose that rounds to nothing.
    """
    _refuse_other_routes_options(given, route)
    unit = "mL" if form.kind == "solution" else "tablet"
    per = "mg/mL" if form.kind == "solution" else "mg"
    listed = [s.value for s in form.strengths]
    names = ", ".join(f"{format_number(v)} {per}" for v in listed)
    if strength is not None and strength.kind is not form.strengths[0].kind:
        # 10 mg (a tablet) for a solution of 10 mg/mL names another dose form, not a strength.
        raise InputError(
            f"{form.name}: ",
            InputField.STRENGTH,
            f" {strength} is not in {per}, the unit of a {form.kind}'s strength; use {names}",
        )
    chosen = listed[0] if strength is None else strength.value
    if chosen not in listed:
        raise InputError(
            f"{form.name}: {format_number(chosen)} {per} is not a strength this protocol lists; "
            f"use {names}"
        )
    total_mg = sum(phase.dose_mg for phase in phases)
    amount = total_mg / chosen
    sides = steer.total.scaled(1 / chosen) + steer.measured
    for index, phase in enumerate(phases):
        if phase.dose_mg:
            sides = sides + steer.dose(index).scaled(amount / phase.dose_mg)
    step = form.increment
    rounded, why = round_safe(amount, step, sides)
    what = f"{form.name} {format_number(chosen)} {per}"
    if rounded <= 0:
        raise InputError(
            f"{show(total_mg)} mg is {show(amount)} {unit} of {what}: it rounds to nothing at "
            f"{format_number(step)} {unit} steps; use a weaker strength"
        )
    findings: list[Finding] = []
    if why is not None:
        findings.append(_turned("measure", "measured", amount, rounded, step, unit, why))
    delivered = rounded * chosen
    measured = Measured(
        form=form.kind,
        name=form.name,
        strength=chosen,
        amount=amount,
        amount_rounded=rounded,
        step=step,
        unit=unit,
        delivered_mg=delivered,
    )
    share = delivered / total_mg
    given_out = tuple(revised(phase, delivered_dose_mg=phase.dose_mg * share) for phase in phases)
    return measured, given_out, findings
