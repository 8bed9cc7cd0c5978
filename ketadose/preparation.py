"""Pump arithmetic: vial, draw volume, final volume and concentration, mL/h, drops/min.

Pure functions on plain floats (mg, mL, min, h). The session's whole drug amount is made up
to one final volume (a bag or syringe); every IV phase runs from it, so each phase's pump
rate is its mg/h divided by the final concentration, and the phase volumes add up to the
final volume. Rounded values sit beside exact ones; nothing is rounded inside a computation.
"""

from __future__ import annotations

from ketadose.errors import InputError
from ketadose.models import Finding, PhaseDose, Preparation, Rounding, Severity, revised
from ketadose.units import format_number, round_to, show

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
    "iv": ("--vial", "--bag", "--drop-factor"),
    "im": ("--vial",),
    "sc": ("--vial",),
}
DEFAULT_VIAL_MG_PER_ML = 10.0
DEFAULT_DILUENT = "0.9% sodium chloride"


#: Coarsest display steps: a pump is programmed to 0.1 mL/h (1 mL/h at most); a syringe is
#: read to 0.01-0.1 mL. A coarser step would change the programmed rate or draw materially.
MAX_PUMP_STEP_ML_PER_H = 1.0
MAX_DRAW_STEP_ML = 0.1


def rounding(pump_step_ml_per_h: float, draw_step_ml: float) -> Rounding:
    """Display increments, refused when coarse enough to change what is given.

    Args:
        pump_step_ml_per_h: Pump rate increment (default 0.1 mL/h).
        draw_step_ml: Draw volume increment (default 0.01 mL).

    Returns:
        The rounding.

    Raises:
        InputError: Above 1 mL/h or 0.1 mL.
    """
    if pump_step_ml_per_h > MAX_PUMP_STEP_ML_PER_H:
        raise InputError(
            f"--pump-step {format_number(pump_step_ml_per_h)} mL/h is coarser than 1 mL/h"
        )
    if draw_step_ml > MAX_DRAW_STEP_ML:
        raise InputError(f"--draw-step {format_number(draw_step_ml)} mL is coarser than 0.1 mL")
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
) -> tuple[Preparation | None, tuple[PhaseDose, ...], list[Finding]]:
    """Work out how the session's drug is drawn, made up and pumped.

    Args:
        phases: The session's phases as dosed (mg, mg/h).
        route: The protocol's route; only ``iv`` gets a pump programme, ``im``/``sc`` get a
            draw volume, the others no preparation at all.
        vial_mg_per_ml: Vial strength; None means the default 10 mg/mL.
        final_volume_ml: Volume the drug is made up to (IV); required for ``iv``.
        diluent: What it is made up with.
        drop_factor: Drops per mL of a gravity set, to add drops/min.
        rounding: Display increments (pump mL/h, draw mL).

    Returns:
        The preparation (or None), the phases with pump rate, volume and drops/min filled
        in, and info findings.

    Raises:
        InputError: For a vial strength that is not made, a final volume smaller than the
            drug drawn, or preparation options that do not apply to the route.

    """
    rounding = rounding or Rounding()
    findings: list[Finding] = []
    given = {
        "--vial": vial_mg_per_ml,
        "--bag": final_volume_ml,
        "--drop-factor": drop_factor,
    }
    wrong = [
        name
        for name, value in given.items()
        if value is not None and name not in _OPTIONS_BY_ROUTE.get(route, ())
    ]
    if wrong:
        raise InputError(f"{', '.join(wrong)} does not apply to the {route} route")
    if route not in VIAL_ROUTES:
        findings.append(
            Finding(
                severity=Severity.INFO,
                code="no-preparation",
                message=f"{route} route: no vial, dilution or pump programme",
            )
        )
        return None, phases, findings

    vial = DEFAULT_VIAL_MG_PER_ML if vial_mg_per_ml is None else vial_mg_per_ml
    if vial not in VIAL_STRENGTHS_MG_PER_ML:
        strengths = ", ".join(format_number(v) for v in VIAL_STRENGTHS_MG_PER_ML)
        raise InputError(f"vial {format_number(vial)} mg/mL is not made; use {strengths} mg/mL")
    if drop_factor is not None and drop_factor not in DROP_FACTORS:
        factors = ", ".join(str(f) for f in DROP_FACTORS)
        raise InputError(f"drop factor {drop_factor} is not a standard set; use {factors}")

    total_mg = sum(phase.dose_mg for phase in phases)
    draw_ml = total_mg / vial
    draw = round_to(draw_ml, rounding.draw_ml)
    if draw <= 0:
        raise InputError(
            f"draw volume {show(draw_ml)} mL rounds to 0 at {format_number(rounding.draw_ml)} mL "
            "steps: use a weaker vial or a finer --draw-step"
        )

    if route != "iv":
        preparation = Preparation(
            vial_mg_per_ml=vial,
            draw_ml=draw_ml,
            draw_ml_rounded=draw,
            final_volume_ml=draw_ml,
            final_mg_per_ml=vial,
            diluent_ml=0.0,
        )
        injected = tuple(revised(phase, volume_ml=phase.dose_mg / vial) for phase in phases)
        return preparation, injected, findings

    if final_volume_ml is None:
        raise InputError("an iv session needs the volume the drug is made up to: --bag 100mL")
    if draw_ml > final_volume_ml:
        raise InputError(
            f"{format_number(draw_ml, 0.01)} mL of {format_number(vial)} mg/mL does not fit in "
            f"{format_number(final_volume_ml)} mL: use a stronger vial or a larger --bag"
        )
    diluent_ml = final_volume_ml - draw_ml
    if vial >= MUST_DILUTE_MG_PER_ML:
        if diluent_ml <= 0:
            raise InputError(
                f"{format_number(vial)} mg/mL must be diluted before IV use: use a larger --bag"
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
    pumped = tuple(_pump(phase, final_mg_per_ml, drop_factor, rounding) for phase in phases)
    preparation = Preparation(
        vial_mg_per_ml=vial,
        draw_ml=draw_ml,
        draw_ml_rounded=draw,
        final_volume_ml=final_volume_ml,
        final_mg_per_ml=final_mg_per_ml,
        diluent_ml=diluent_ml,
        diluent=diluent,
        drop_factor_drops_per_ml=None if drop_factor is None else float(drop_factor),
    )
    return preparation, pumped, findings


def _pump(
    phase: PhaseDose, mg_per_ml: float, drop_factor: int | None, rounding: Rounding
) -> PhaseDose:
    """Fill in one phase's volume, pump rate and drops/min at a final concentration."""
    volume_ml = phase.dose_mg / mg_per_ml
    if phase.rate_mg_per_h is None:
        return revised(phase, volume_ml=volume_ml)
    pump = phase.rate_mg_per_h / mg_per_ml
    rounded = round_to(pump, rounding.pump_rate_ml_per_h)
    if rounded <= 0:
        raise InputError(
            f"{phase.label}: pump rate {show(pump)} mL/h rounds to 0 at "
            f"{format_number(rounding.pump_rate_ml_per_h)} mL/h steps: use a larger --bag or a "
            "finer --pump-step"
        )
    drops = None if drop_factor is None else pump * drop_factor / 60
    return revised(
        phase,
        volume_ml=volume_ml,
        pump_rate_ml_per_h=pump,
        pump_rate_ml_per_h_rounded=rounded,
        drops_per_min=drops,
    )
