"""Renderers: terminal tables (rich) and JSON; the core never prints."""

from __future__ import annotations

from ketadose.models import Systemic


def route_lines(route: str, systemic: Systemic | None) -> list[str]:
    """What a non-IV dose is shown with: the source's systemic estimate, or that none is sourced.

    Args:
        route: The protocol's route.
        systemic: The estimate, or None.

    Returns:
        No lines for IV; otherwise one or two.
    """
    if route == "iv":
        return []
    if systemic is None:
        return [f"Systemic: not estimated (no {route} bioavailability in the sources)"]
    lines = [f"Systemic: {systemic.text} [{systemic.evidence}], the source's estimate"]
    if systemic.equivalence:
        lines.append(f"Source's estimate: {systemic.equivalence}")
    return lines
