"""A bar chart of the dose per session, as an inline SVG string for the HTML sheets.

Pure and small: no JavaScript, no external reference of any kind (not even the SVG namespace
URI: an ``<svg>`` inside HTML takes its namespace from the HTML parser, and a sheet must contain
no URL), a fixed ``viewBox`` with ``width``/``height`` so it prints at a stable size, and every
text escaped. The y axis starts at 0 and ends on a "nice" tick (1, 2 or 5 x 10^n).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal
from html import escape

from ketadose.units import show

#: Drawing size in CSS pixels (169 x 64 mm): fits the 180 mm of A4 and the 186 mm of Letter.
WIDTH, HEIGHT = 640, 240
_LEFT, _RIGHT, _TOP, _BOTTOM = 56, 12, 42, 30
#: Below this bar slot width (px) the value labels would overlap, so they are left out.
_MIN_LABELLED_SLOT = 26.0
#: The least horizontal room (px) an x-axis label gets; labels are thinned to keep it.
_MIN_LABEL_SPACING = 30.0


def nice_ticks(maximum: float, count: int = 5) -> list[float]:
    """Axis ticks from 0 to the smallest "nice" value at or above ``maximum``.

    The step is 1, 2 or 5 x 10^n, the smallest one that covers ``maximum`` in at most
    ``count`` intervals. Ticks are computed in decimal, so 0.1-steps print as 0.3, not
    0.30000000000000004.

    Args:
        maximum: The largest value to show; 0 (or less) gives the axis 0 to 1.
        count: The most intervals wanted (at least 1).

    Returns:
        The ticks, starting at 0.0, strictly increasing, all finite (``nice_ticks(46)`` is
        ``[0, 10, 20, 30, 40, 50]``). Where a nice top would not fit in a float (values near
        1.8e308) or would round to 0 (below about 1e-323), the ticks are ``[0, maximum]``.

    Raises:
        ValueError: For a ``maximum`` that is not finite, or a ``count`` below 1.
    """
    if not math.isfinite(maximum):
        raise ValueError(f"axis maximum {maximum!r} is not finite")
    if count < 1:
        raise ValueError(f"tick count {count} is below 1")
    if maximum <= 0:
        return [0.0, 1.0]
    exact = Decimal(maximum)  # exact binary value: no rounding before the search
    exponent = exact.adjusted() - len(str(count))  # a step at or below the one wanted
    while True:
        for multiple in (1, 2, 5):
            step = Decimal(multiple).scaleb(exponent)
            whole, rest = divmod(exact, step)  # exact: the quotient is small
            intervals = int(whole) + (1 if rest else 0)
            if intervals <= count:
                ticks = [float(step * i) for i in range(intervals + 1)]
                if math.isfinite(ticks[-1]) and ticks[-1] >= maximum and ticks[1] > 0:
                    return ticks
                return [0.0, maximum]
        exponent += 1


def dose_chart(
    points: Sequence[tuple[str, float]],
    *,
    unit: str = "mg",
    title: str = "Dose per session",
) -> str:
    """Draw one bar per point, with the value on the bar when there is room for it.

    Args:
        points: ``(label, value)`` pairs in order, e.g. ``[("S1", 40.0), ("S2", 40.0)]``;
            values are non-negative and finite.
        unit: The values' unit, shown on the y axis.
        title: The chart's title (also its accessible name).

    Returns:
        An ``<svg>`` element as text, for inlining in HTML.

    Raises:
        ValueError: For a negative, NaN or infinite value.
    """
    for label, value in points:
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"chart value {value!r} for {label!r} is not a finite value >= 0")
    ticks = nice_ticks(max((value for _, value in points), default=0.0))
    top = ticks[-1]
    plot_w = WIDTH - _LEFT - _RIGHT
    plot_h = HEIGHT - _TOP - _BOTTOM
    base = _TOP + plot_h

    def y(value: float) -> float:
        return base - plot_h * min(value / top, 1.0)

    out = [
        f'<svg class="chart" role="img" aria-label="{escape(title)}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
        'font-family="sans-serif" font-size="11">',
        f"<title>{escape(title)}</title>",
        f'<text x="{_LEFT}" y="14" font-size="13" font-weight="bold">{escape(title)}</text>',
        f'<text x="{_LEFT - 6}" y="{_TOP - 14}" text-anchor="end">{escape(unit)}</text>',
    ]
    for tick in ticks:
        ty = _f(y(tick))
        out.append(
            f'<line x1="{_LEFT}" y1="{ty}" x2="{WIDTH - _RIGHT}" y2="{ty}" '
            'stroke="#999" stroke-width="0.5"/>'
        )
        out.append(
            f'<text x="{_LEFT - 6}" y="{_f(y(tick) + 4)}" text-anchor="end">'
            f"{escape(show(tick))}</text>"
        )
    slot = plot_w / max(len(points), 1)
    every = math.ceil(_MIN_LABEL_SPACING / slot)
    for index, (label, value) in enumerate(points):
        x = _LEFT + slot * index
        top_y = y(value)
        out.append(
            f'<rect class="bar" x="{_f(x + slot * 0.15)}" y="{_f(top_y)}" '
            f'width="{_f(slot * 0.7)}" height="{_f(base - top_y)}" '
            'fill="#666" stroke="#000" stroke-width="0.5"/>'
        )
        centre = _f(x + slot / 2)
        if slot >= _MIN_LABELLED_SLOT:
            out.append(
                f'<text class="value" x="{centre}" y="{_f(top_y - 4)}" text-anchor="middle">'
                f"{escape(show(value))}</text>"
            )
        if index % every == 0:
            out.append(
                f'<text x="{centre}" y="{base + 16}" text-anchor="middle">{escape(label)}</text>'
            )
    out.append(f'<line x1="{_LEFT}" y1="{base}" x2="{WIDTH - _RIGHT}" y2="{base}" stroke="#000"/>')
    out.append(f'<line x1="{_LEFT}" y1="{_TOP}" x2="{_LEFT}" y2="{base}" stroke="#000"/>')
    out.append("</svg>")
    return "\n".join(out)


def _f(value: float) -> str:
    """A coordinate with two decimals at most, no trailing zeros."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def curve_chart(
    points: Sequence[tuple[float, float]], *, title: str = "Predicted plasma concentration"
) -> str:
    """A line chart of a concentration curve (minutes, ng/mL) as inline SVG.

    Args:
        points: The curve in time order.
        title: The caption.

    Returns:
        The SVG element (empty for no points).
    """
    if not points:
        return ""
    left, right, top, bottom = 56.0, 16.0, 28.0, 36.0
    plot_w, plot_h = WIDTH - left - right, HEIGHT - top - bottom
    ticks = nice_ticks(max(value for _, value in points))
    ceiling = ticks[-1] or 1.0
    start, end = points[0][0], points[-1][0]
    span = (end - start) or 1.0
    path = " ".join(
        f"{left + (t - start) / span * plot_w:.1f},{top + plot_h - v / ceiling * plot_h:.1f}"
        for t, v in points
    )
    parts = [
        f'<svg class="chart" role="img" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" aria-label="{escape(title)}">',
        f'<text x="{left}" y="16" font-size="12">{escape(title)} (ng/mL)</text>',
    ]
    for tick in ticks:
        y = top + plot_h - tick / ceiling * plot_h
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{WIDTH - right}" y2="{y:.1f}" stroke="#ccc"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="10" text-anchor="end">'
            f"{escape(show(tick))}</text>"
        )
    parts.append(f'<polyline fill="none" stroke="#000" stroke-width="1.5" points="{path}"/>')
    parts.append(
        f'<text x="{left}" y="{HEIGHT - 10}" font-size="10">{escape(show(start))}'
        f' min</text><text x="{WIDTH - right}" y="{HEIGHT - 10}" font-size="10" '
        f'text-anchor="end">{escape(show(end))} min</text>'
    )
    parts.append("</svg>")
    return "".join(parts)
