"""A concentration curve as a small text chart, for a terminal (no colour, no library)."""

from __future__ import annotations

from collections.abc import Sequence

from ketadose.units import format_number


def chart(points: Sequence[tuple[float, float]], *, width: int = 60, height: int = 12) -> str:
    """Plot ``(time in min, ng/mL)`` points: y from 0 to the peak, x from the first to the last.

    Each column shows the highest value in its time slice, so a peak is never lost.

    Args:
        points: The curve, in time order.
        width: Columns of the plot area.
        height: Rows of the plot area.

    Returns:
        The chart, with a y axis in ng/mL and an x axis in minutes (hours past 6 h).
    """
    if not points:
        return ""
    top = max(value for _, value in points) or 1.0
    start, end = points[0][0], points[-1][0]
    span = (end - start) or 1.0
    columns = [0.0] * width
    for time, value in points:
        column = min(width - 1, int((time - start) / span * width))
        columns[column] = max(columns[column], value)
    rows = []
    for row in range(height, 0, -1):
        level = top * (row - 0.5) / height
        label = format_number(top * row / height, 1) if row in (height, (height + 1) // 2) else ""
        line = "".join("█" if value >= level else " " for value in columns)
        rows.append(f"{label:>7} ┤{line}")
    hours = span > 360
    scale = 60 if hours else 1
    unit = "h" if hours else "min"
    left, right = format_number(start / scale, 0.1), format_number(end / scale, 0.1)
    rows.append(f"{'0':>7} └{'─' * width}")
    rows.append(f"{'ng/mL':>7}  {left}{right.rjust(width - len(left))} {unit}")
    return "\n".join(rows) + "\n"
