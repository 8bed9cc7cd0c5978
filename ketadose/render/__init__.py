"""Renderers: terminal tables (rich) and JSON; the core never prints."""

from __future__ import annotations

from collections.abc import Sequence

from ketadose.models import Measured, PhaseDose, Preparation, Systemic
from ketadose.units import format_number


def route_lines(route: str, systemic: Systemic | None, *, refused: bool = False) -> list[str]:
    """What a non-IV dose is shown with: the source's systemic estimate, or that none is sourced.

    Args:
        route: The protocol's route.
        systemic: The estimate, or None (no bioavailability in the sources).
        refused: The dose is refused (a hard limit): no amount of it is shown as reaching
            the patient.

    Returns:
        No lines for IV; otherwise one or two.
    """
    if route == "iv":
        return []
    if refused:
        return ["Systemic: not shown, the dose is refused"]
    if systemic is None:
        return [f"Systemic: not estimated (no {route} bioavailability in the sources)"]
    lines = [f"Systemic: {systemic.text} [{systemic.evidence}], the source's estimate"]
    if systemic.equivalence:
        lines.append(f"Source's estimate: {systemic.equivalence}")
    return lines


def given(
    status: str,
    phases: Sequence[PhaseDose],
    preparation: Preparation | None,
    measured: Measured | None,
) -> str:
    """What a session gives, in a few words: pump rates, a draw, a measured amount, or none.

    Args:
        status: The session's status (a hard one withholds everything).
        phases: Its phases (their rounded pump rates).
        preparation: Its preparation (a vial draw), or None.
        measured: Its measured liquid or tablets, or None.

    Returns:
        "withheld", "30/60 mL/h", "draw 0.4 mL of 100 mg/mL", "1.5 mL of 50 mg/mL", or "-".
    """
    if status == "hard":
        return "withheld"
    pumps = [p.pump_rate_ml_per_h_rounded for p in phases if p.pump_rate_ml_per_h_rounded]
    if pumps:
        return "/".join(format_number(rate) for rate in pumps) + " mL/h"
    if preparation is not None:
        return (
            f"draw {format_number(preparation.draw_ml_rounded)} mL of "
            f"{format_number(preparation.vial_mg_per_ml)} mg/mL"
        )
    if measured is not None:
        unit = "mL" if measured.unit == "mL" else "tablet"
        if unit == "tablet" and measured.amount_rounded != 1:
            unit = "tablets"
        return (
            f"{format_number(measured.amount_rounded, measured.step)} {unit} of "
            f"{format_number(measured.strength)} {measured.strength_unit}"
        )
    return "-"
