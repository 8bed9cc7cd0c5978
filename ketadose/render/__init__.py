"""Renderers: terminal tables (rich) and JSON; the core never prints."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ketadose.models import Measured, PhaseDose, Preparation, Systemic


def format_number(value: float, step: float | None = None) -> str:
    """:func:`ketadose.units.format_number`, imported on first use.

    The command line reads :mod:`ketadose.render.schema` (its document names) at start-up, and
    this package with it: the unit code loads only when something is formatted.
    """
    from ketadose.units import format_number as formatted

    return formatted(value, step)


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
    *,
    short: bool = False,
) -> str:
    """What a session gives, in a few words: pump rates, a draw, a measured amount, or none.

    Args:
        status: The session's status (a hard one withholds everything).
        phases: Its phases (their rounded pump rates).
        preparation: Its preparation (a vial draw), or None.
        measured: Its measured liquid or tablets, or None.
        short: Only the amount ("draw 0.4 mL", "1.5 mL", "2 tab"), where the strength is said
            once elsewhere (the terminal's narrow column).

    Returns:
        "withheld", "30/60 mL/h", "draw 0.4 mL of 100 mg/mL", "1.5 mL of 50 mg/mL", or "-".
    """
    if status == "hard":
        return "withheld"
    pumps = [p.pump_rate_ml_per_h_rounded for p in phases if p.pump_rate_ml_per_h_rounded]
    if pumps:
        return "/".join(format_number(rate) for rate in pumps) + " mL/h"
    if preparation is not None:
        draw = f"draw {format_number(preparation.draw_ml_rounded)} mL"
        return draw if short else f"{draw} of {format_number(preparation.vial_mg_per_ml)} mg/mL"
    if measured is not None:
        unit = "mL" if measured.unit == "mL" else "tab" if short else "tablet"
        if unit != "mL" and not short and measured.amount_rounded != 1:
            unit = "tablets"
        amount = f"{format_number(measured.amount_rounded, measured.step)} {unit}"
        strength = f"{format_number(measured.strength)} {measured.strength_unit}"
        return amount if short else f"{amount} of {strength}"
    return "-"


def _plain(text: str) -> str:
    return text


def draw_text(
    preparation: Preparation,
    *,
    step: float | None = None,
    escape: Callable[[str], str] = _plain,
    strong: Callable[[str], str] = _plain,
    space: str = " ",
) -> str:
    """What to draw and make up, in one line: the one wording every format uses.

    E.g. "draw 3.5 mL of 10 mg/mL (35 mg), add 96.5 mL 0.9% sodium chloride to make 100 mL
    of 0.35 mg/mL", or "draw 0.4 mL of 100 mg/mL (40 mg), undiluted". "To make" says the
    final volume is the bag's, not a volume the diluent is added to.

    Args:
        preparation: A session's preparation.
        step: The syringe graduation the draw and the diluent are shown in (the session's
            ``rounding.draw_ml``); None shows them as rounded, 0.01 mL for the diluent.
        escape: Applied to the free text (the diluent's name): Markdown or HTML escaping.
        strong: Applied to the two numbers a nurse acts on (the volume drawn, the final
            concentration): bold in HTML.
        space: Between a number and its unit (HTML: a no-break space).

    Returns:
        One line a nurse reads: vial strength, volume drawn, the mg in it, diluent and final
        concentration.
    """

    def amount(value: float, unit: str, at: float | None = None) -> str:
        return f"{format_number(value, at)}{space}{unit}"

    draw = strong(amount(preparation.draw_ml_rounded, "mL", step))
    text = (
        f"draw {draw} of {amount(preparation.vial_mg_per_ml, 'mg/mL')} "
        f"({amount(preparation.delivered_mg, 'mg', 0.01)})"
    )
    if preparation.diluent_ml <= 0:
        return f"{text}, undiluted"
    diluent = escape(preparation.diluent or "diluent")
    final = strong(amount(preparation.delivered_mg_per_ml, "mg/mL", 0.001))
    return (
        f"{text}, add {amount(preparation.diluent_ml, 'mL', step or 0.01)} {diluent} "
        f"to make {amount(preparation.final_volume_ml, 'mL')} of {final}"
    )


def preparation_line(
    preparation: Preparation,
    *,
    step: float | None = None,
    escape: Callable[[str], str] = _plain,
) -> str:
    """A single session's preparation line: "Preparation: draw ..." (see :func:`draw_text`)."""
    return "Preparation: " + draw_text(preparation, step=step, escape=escape)


def preparation_lines(sessions: Sequence[Any]) -> list[str]:
    """A plan's preparations, once each, with the sessions they are for.

    Args:
        sessions: The plan's sessions (``number``, ``preparation``).

    Returns:
        "Sessions 1-6: draw ..." lines, in session order; none when nothing is drawn.
    """
    groups: dict[str, list[int]] = {}
    for session in sessions:
        if session.preparation is not None:
            groups.setdefault(draw_text(session.preparation), []).append(session.number)
    lines = []
    for text, numbers in groups.items():
        label = "Session" if len(numbers) == 1 else "Sessions"
        lines.append(f"{label} {ranges(numbers)}: {text}")
    return lines


def ranges(numbers: list[int], *, dash: str = "-") -> str:
    """Session numbers as ranges: 1, 2, 3, 5 -> "1-3, 5"."""
    parts: list[str] = []
    start = previous = numbers[0]
    for number in [*numbers[1:], None]:
        if number is not None and number == previous + 1:
            previous = number
            continue
        parts.append(str(start) if start == previous else f"{start}{dash}{previous}")
        if number is not None:
            start = previous = number
    return ", ".join(parts)
