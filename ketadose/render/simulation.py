"""``simulate`` as text: the summary lines, a table of points and a chart, for a terminal."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ketadose.render.plot import chart
from ketadose.units import format_number

if TYPE_CHECKING:
    from ketadose.simulation import SimulationOutcome


def _ng(value: float | None) -> str:
    return "-" if value is None else f"{format_number(value, 0.1)} ng/mL"


def _at(minutes: float) -> str:
    return f"{format_number(minutes, 0.1)} min"


def text(outcome: SimulationOutcome) -> str:
    """The simulation for a reader: how it was dosed, the model, peak, end and discharge.

    Then the titration's rate schedule (a stay), a table of the curve every 10 min (every hour
    past 6 h) and a chart of every point.

    Args:
        outcome: The simulation and the dose behind it.

    Returns:
        The text, ending in a newline.
    """
    result, kg = outcome.result, outcome.dosing_weight
    given_as = (
        f"one stay, {result.sessions} rung(s) of one continuous infusion"
        if outcome.stay
        else f"{result.sessions} session(s)"
    )
    lines = [
        f"{outcome.protocol_name}: {given_as}; dosed on "
        f"{format_number(kg.kg, 0.01)} kg ({kg.basis.value} weight); the model uses the "
        f"body weight, {format_number(outcome.body_weight_kg, 0.01)} kg",
        f"Model: {result.model.name} [{result.model.evidence}]; {result.model.scaling}",
        f"Peak {_ng(result.peak_ng_per_ml)} at {_at(result.peak_time_min)}; end of infusion "
        f"{_ng(result.end_of_infusion_ng_per_ml)} at {_at(result.end_of_infusion_min)}; "
        f"at discharge {_ng(result.discharge_ng_per_ml)}"
        + ("" if result.discharge_min is None else f" at {_at(result.discharge_min)}"),
    ]
    if result.time_above_threshold_min is not None:
        lines.append(
            f"Above {_ng(result.threshold_ng_per_ml)} for {_at(result.time_above_threshold_min)}"
        )
    if result.schedule:
        lines.append("Infusion schedule (the titration's rungs, each at the earliest time):")
    for rung in result.schedule or ():
        per_kg = rung.rate_mg_per_kg_per_h
        lines.append(
            f"  {_at(rung.start_min)} to {_at(rung.end_min)}: "
            f"{format_number(rung.rate_mg_per_h, 0.01)} mg/h"
            + ("" if per_kg is None else f" ({format_number(per_kg, 0.001)} mg/kg/h)")
        )
    every = 10.0 if result.until_min <= 360 else 60.0
    rows = [p for p in result.series if abs(p.time_min / every - round(p.time_min / every)) < 1e-9]
    lines += ["", "  time      ng/mL"]
    lines += [
        f"{format_number(p.time_min, 0.1):>6} {_ng(p.concentration_ng_per_ml):>16}" for p in rows
    ]
    lines += ["", chart([(p.time_min, p.concentration_ng_per_ml) for p in result.series])]
    lines.append(result.note)
    return "\n".join(lines) + "\n"
