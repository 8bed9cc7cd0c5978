"""Printable HTML sheets: a treatment plan and a single session, one self-contained file each.

A sheet has its CSS inline and no URL of any kind (no font, script, image or link), so it
prints the same anywhere and can be archived as one file. It prints on A4 by default
(``paper="letter"`` for US Letter) and reads in black and white: severity and approval are
words, never colour alone. Output is deterministic: nothing reads the clock, and weekday names
do not depend on the locale.

Jinja2 is imported on first use, not with this module (start-up time matters for the CLI).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from typing import TYPE_CHECKING, Any, Literal

from ketadose.clock import label
from ketadose.render import draw_text, ranges, route_lines
from ketadose.render.svg import curve_chart, dose_chart
from ketadose.units import format_number

if TYPE_CHECKING:
    from jinja2 import Environment
    from markupsafe import Markup

    from ketadose.models import Finding, Preparation, SessionDose
    from ketadose.planning import Plan

Paper = Literal["a4", "letter"]

#: Locale-independent, so a sheet is the same bytes on every machine.
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True, slots=True)
class FindingRow:
    """A finding and the sessions it was raised for (identical findings are listed once).

    Attributes:
        sessions: The session numbers as text, e.g. ``"1-3, 5"``; empty for a single session.
        finding: The finding.
    """

    sessions: str
    finding: Finding


def plan_sheet(
    plan: Plan, *, paper: Paper = "a4", chain_head: tuple[int, str] | None = None
) -> str:
    """Render a treatment plan as one printable, self-contained HTML document.

    Args:
        plan: The planned series (``ketadose.planning.plan``).
        paper: ``a4`` (default) or ``letter``.
        chain_head: The audit log's last entry id and hash when printed (the store's, if
            there is one): the paper is matched to the log by it later.

    Returns:
        The HTML text; the same bytes for the same plan.
    """
    refused = [s.number for s in plan.sessions if s.status == "hard"]
    chart = dose_chart(
        [
            (f"S{s.number}" + ("*" if s.number in refused else ""), s.total_dose_mg)
            for s in plan.sessions
        ],
        unit="mg",
        title="Dose per session (mg)",
    )
    curve = _first_session_curve(plan)
    groups: dict[Finding, list[int]] = {}
    for session in plan.sessions:
        for finding in session.findings:
            groups.setdefault(finding, []).append(session.number)
    rows = [FindingRow(_ranges(numbers), finding) for finding, numbers in groups.items()]
    return _render(
        "plan.html.j2",
        paper,
        plan=plan,
        protocol=plan.protocol,
        patient_id=plan.patient_id,
        write_in_id=False,
        chart=chart,
        curve=curve,
        refused=refused,
        findings=rows,
        patient=plan.patient,
        dosing_weight=plan.dosing_weight,
        libraries=[("Limit library", plan.library), ("Protocol library", plan.protocol_library)],
        chain_head=chain_head,
        refusal=(
            f"{len(refused)} of {len(plan.sessions)} sessions exceed a hard limit "
            f"(sessions {_ranges(refused)}): nothing on this sheet may be given"
            if plan.status == "hard"
            else None
        ),
    )


def session_sheet(
    session: SessionDose, *, paper: Paper = "a4", chain_head: tuple[int, str] | None = None
) -> str:
    """Render one session (the ``dose``/``check`` result) as a printable HTML document.

    Args:
        session: The session dose, checked or not.
        paper: ``a4`` (default) or ``letter``.
        chain_head: The audit log's last entry id and hash when printed (see
            :func:`plan_sheet`).

    Returns:
        The HTML text; the same bytes for the same session.
    """
    libraries = [("Protocol library", session.protocol_library)]
    if session.library is not None:
        libraries.insert(0, ("Limit library", session.library))
    return _render(
        "session.html.j2",
        paper,
        session=session,
        protocol=session.protocol,
        patient_id=None,
        write_in_id=True,
        findings=[FindingRow("", finding) for finding in session.findings],
        patient=session.patient,
        dosing_weight=session.dosing_weight,
        libraries=libraries,
        chain_head=chain_head,
        refusal=(
            "the dose exceeds a hard limit: nothing on this sheet may be given"
            if session.status == "hard"
            else None
        ),
    )


def _render(template: str, paper: Paper, **context: Any) -> str:
    """Fill a template; ``context`` must give every name it uses (undefined is an error)."""
    from markupsafe import Markup

    for key in ("chart", "curve"):
        if key in context:
            context[key] = Markup(context[key])  # built and escaped by ketadose.render.svg
    return _environment().get_template(template).render(paper=paper, **context)


@cache
def _environment() -> Environment:
    """The template environment, built once on first use."""
    from jinja2 import Environment, PackageLoader, StrictUndefined

    env = Environment(
        loader=PackageLoader("ketadose.render", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["num"] = num
    env.filters["day"] = day
    env.filters["weekday"] = weekday
    env.filters["clock"] = clock
    env.globals["route_lines"] = route_lines
    env.globals["draw_text"] = _draw_html
    return env


def _draw_html(preparation: Preparation, step: float | None = None) -> Markup:
    """:func:`ketadose.render.draw_text` in HTML: escaped, the draw and the result in bold."""
    from markupsafe import Markup, escape

    return Markup(
        draw_text(
            preparation,
            step=step,
            escape=lambda text: str(escape(text)),
            strong=lambda text: f"<strong>{text}</strong>",
            space="\N{NO-BREAK SPACE}",
        )
    )


def num(value: float | None, unit: str = "", step: float | None = None) -> str:
    """A number the clinical way with its unit, or an en dash when there is none.

    Args:
        value: The value, or None.
        unit: Its unit, e.g. ``"mg"``.
        step: Round to a multiple of this (see :func:`ketadose.units.format_number`).

    Returns:
        E.g. ``"40 mg"``, ``"0.5 mg/kg"`` (with a no-break space), ``"–"``.
    """
    if value is None:
        return "–"
    text = format_number(value, step)
    # A no-break space: a number is never separated from its unit at a line end.
    return f"{text}\N{NO-BREAK SPACE}{unit}" if unit else text


def day(value: date) -> str:
    """A date as ISO and its weekday, e.g. ``"2026-11-30 Mon"``.

    Args:
        value: The date (or datetime).

    Returns:
        The text.
    """
    return f"{value:%Y-%m-%d} {weekday(value)}"


def weekday(value: date) -> str:
    """The weekday's English short name, whatever the locale.

    Args:
        value: The date (or datetime).

    Returns:
        E.g. ``"Mon"``.
    """
    return WEEKDAYS[value.weekday()]


def clock(value: datetime, on: date | None = None, *, zoned: bool = False) -> str:
    """A time of day, with the date when it falls on another day than ``on``.

    Args:
        value: The time.
        on: The session's day.
        zoned: Add the zone's abbreviation (or UTC offset).

    Returns:
        E.g. ``"09:20"``, ``"09:00 CET"`` or ``"01:10 (2026-12-01)"``.
    """
    text = f"{value:%H:%M}"
    if zoned:
        text += f" {label(value)}"
    if on is not None and value.date() != on:
        text += f" ({value:%Y-%m-%d})"
    return text


def _ranges(numbers: list[int]) -> str:
    """Session numbers as ranges, with an en dash: ``[1, 2, 3, 5]`` -> ``"1–3, 5"``."""
    return ranges(numbers, dash="–")


def _first_session_curve(plan: Plan) -> str:
    """The predicted plasma curve of session 1, to its discharge and 2 h beyond (or "")."""
    if plan.pk_model is None or plan.patient.weight_kg is None:
        return ""
    from ketadose.simulation import Given, simulate

    first = plan.sessions[0]
    timeline = first.timeline
    discharge = (timeline.discharge_earliest - timeline.infusion_start).total_seconds() / 60
    result = simulate(
        plan.pk_model,
        plan.protocol,
        plan.patient.weight_kg,
        [Given(0.0, first.phases)],
        until_min=discharge + 120,
        step_min=1.0,
    )
    return curve_chart(
        [(p.time_min, p.concentration_ng_per_ml) for p in result.series],
        title=f"Session 1, predicted plasma concentration ({result.model.name})",
    )
