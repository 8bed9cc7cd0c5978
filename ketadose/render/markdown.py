"""Markdown for pasting into clinical notes: the same content as the tables, in plain text.

Numbers are formatted the clinical way (``ketadose.units.format_number``) with their units;
text from outside (override reasons, patient ids, notes) has its Markdown specials escaped so
that a pasted note shows exactly what was entered.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from ketadose.clock import label
from ketadose.models import Finding, LibraryRef, SessionDose, Severity
from ketadose.render import given, preparation_line, preparation_lines, route_lines
from ketadose.units import format_number

if TYPE_CHECKING:
    from ketadose.escalation import NextSession
    from ketadose.planning import Plan
    from ketadose.records import PatientRecord, SessionRecord
    from ketadose.scores import ScoreRecord

#: Escaped wherever outside text lands: emphasis, code, links, HTML and table cells. Every
#: such text follows "- " or sits in a cell, so line-start markers (#, 1.) cannot take effect.
_SPECIAL = str.maketrans({c: f"\\{c}" for c in "\\`*_[]<>|~"})


def escape(text: str) -> str:
    """Escape Markdown's specials and fold the text onto one line.

    Args:
        text: Any text.

    Returns:
        Text that renders as itself.
    """
    return " ".join(text.split()).translate(_SPECIAL)


def _num(value: float | None, unit: str = "", step: float | None = None) -> str:
    if value is None:
        return "–"
    text = format_number(value, step)
    return f"{text} {unit}" if unit else text


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, ""]


def _library(label: str, library: LibraryRef) -> str:
    approval = "approved" if library.approved else "**UNAPPROVED EXAMPLE LIBRARY**"
    return (
        f"- {label}: {escape(library.name)} {escape(library.version)}, "
        f"sha256 `{library.sha256}`, {approval}"
    )


def _findings(findings: Iterable[Finding], prefix: str = "") -> list[str]:
    lines = []
    for finding in findings:
        text = f"- **{finding.severity.value}** `{finding.code}`: {prefix}{escape(finding.message)}"
        if finding.overridden:
            text += f" (overridden: {escape(finding.override_reason or '')})"
        lines.append(text)
    return ["### Findings", "", *lines, ""] if lines else []


def _status(status: str, ready: bool, reason: str | None) -> str:
    if status == "hard":
        return "**REFUSED: a hard limit is exceeded; no pump programme is given.**"
    if not ready:
        return "**SOFT LIMIT EXCEEDED: needs an override reason.**"
    if reason:
        return f"**OK with override:** {escape(reason)}"
    return "**OK**"


def session(result: SessionDose) -> str:
    """The ``dose``/``check --format markdown`` text.

    Args:
        result: The checked session.

    Returns:
        Markdown.
    """
    protocol = result.protocol
    lines = [f"## {escape(protocol.name)} ({protocol.id}, {protocol.route})", ""]
    patient = result.patient
    lines.append(f"- Patient: weight {_num(patient.weight_kg, 'kg', 0.01)}")
    if result.dosing_weight is not None:
        weight = result.dosing_weight
        lines.append(
            f"- Dosing weight: {_num(weight.kg, 'kg', 0.01)} ({weight.basis.value})"
            + (f"; {escape(weight.note)}" if weight.note else "")
        )
    lines += [
        f"- Total: {_num(result.total_dose_mg, 'mg', 0.01)}"
        f" ({_num(result.total_dose_mg_per_kg, 'mg/kg', 0.001)})"
        f" over {_num(result.total_duration_min, 'min')}",
        _library("Limits", result.library) if result.library else "- Limits: not checked",
        _library("Protocols", result.protocol_library),
        "",
    ]
    lines += _table(
        ("Phase", "Dose", "mg/kg", "Duration", "Rate", "Pump", "Volume"),
        (
            (
                escape(p.label),
                _num(p.dose_mg, "mg", 0.01),
                _num(p.dose_mg_per_kg, "mg/kg", 0.001),
                _num(p.duration_min, "min"),
                _num(p.rate_mg_per_h, "mg/h", 0.01),
                _num(p.pump_rate_ml_per_h_rounded, "mL/h"),
                _num(p.volume_ml, "mL", 0.1),
            )
            for p in result.phases
        ),
    )
    if result.preparation is not None:
        step = result.rounding.draw_ml
        lines += [preparation_line(result.preparation, step=step, escape=escape), ""]
    if result.measured is not None:
        lines += [f"Measure: {escape(result.measured.text)}", ""]
    extra = route_lines(result.protocol.route, result.systemic, refused=result.status == "hard")
    if extra:
        lines += [*(escape(line) for line in extra), ""]
    lines += _findings(result.findings)
    lines.append(_status(result.status, result.ready, result.override_reason))
    return "\n".join(lines) + "\n"


def plan(result: Plan) -> str:
    """The ``plan --format markdown`` text.

    Args:
        result: The plan.

    Returns:
        Markdown.
    """
    protocol = result.protocol
    lines = [f"## Plan: {escape(protocol.name)} ({protocol.id}, {protocol.route})", ""]
    if result.patient_id:
        lines.append(f"- Patient: {escape(result.patient_id)}")
    if result.dosing_weight is not None:
        weight = result.dosing_weight
        lines.append(f"- Dosing weight: {_num(weight.kg, 'kg', 0.01)} ({weight.basis.value})")
    stay = result.titration
    count = (
        f"one inpatient stay, {len(result.sessions)} rungs of one continuous infusion"
        if stay is not None
        else f"{len(result.sessions)} sessions"
    )
    lines += [
        f"- Start {result.start.isoformat()}, {count}, "
        f"{_num(result.accumulated_dose_mg, 'mg', 0.01)} in all",
        *(
            [
                f"- Titration: each rung {escape(stay.interval)}; target {escape(stay.target)}; "
                f"never above {escape(stay.maximum)}; stay at most {escape(stay.maximum_stay)}",
                "- Rates: "
                + ", ".join(
                    f"{_num(r.rate_mg_per_kg_per_h, 'mg/kg/h', 0.001)} from "
                    f"{_num(r.at_h, 'h', 0.01)} [{r.evidence}]"
                    for r in stay.rungs
                ),
                *([f"- **STOPPED**: {escape(stay.stopped)}"] if stay.stopped else []),
            ]
            if stay is not None
            else []
        ),
        _library("Limits", result.library),
        _library("Protocols", result.protocol_library),
        *(
            [f"- Peak: predicted plasma peak, {result.pk_model} model (an estimate)"]
            if result.pk_model
            else []
        ),
        "",
    ]
    lines += _table(
        ("#", "Date", "Dose", "mg/kg", "Time", "Give", "Check", "Chair", "Peak"),
        (
            (
                str(s.number),
                f"{s.start:%a %Y-%m-%d %H:%M} {label(s.start)}",
                _num(s.total_dose_mg, "mg", 0.01),
                _num(s.dose_mg_per_kg, "mg/kg", 0.001),
                _num(s.total_duration_min, "min"),
                given(s.status, s.phases, s.preparation, s.measured),
                s.status,
                "at home"
                if result.setting == "take-home"
                else f"{s.timeline.arrive:%H:%M}–{s.timeline.discharge_earliest:%H:%M} "
                f"{label(s.timeline.discharge_earliest)}",
                _num(s.predicted_peak_ng_per_ml, "ng/mL", 1),
            )
            for s in result.sessions
        ),
    )

    def section(title: str, items: Iterable[str]) -> None:
        items = [f"- {item}" for item in items]
        if items:
            lines.extend([f"### {title}", "", *items, ""])

    section("Preparation", (escape(line) for line in preparation_lines(result.sessions)))
    section("Escalation", (escape(t) for t in result.escalation_lines()))
    section("Evaluation", [escape(result.evaluation)])
    section("Maintenance options", (f"{escape(n.text)} [{n.evidence}]" for n in result.maintenance))
    section(
        "Adjuncts",
        (f"{escape(a.name)} {escape(a.dose)}: {escape(a.purpose)}" for a in result.adjuncts),
    )
    section(
        "Systemic dose",
        [
            escape(line)
            for line in route_lines(
                protocol.route,
                result.sessions[0].systemic,
                refused=all(s.status == "hard" for s in result.sessions),
            )
        ]
        if result.sessions
        else [],
    )
    section(
        "Take-home: how each dose is taken" if result.setting == "take-home" else "Each dose",
        (f"{escape(n.text)} [{n.evidence}]" for n in result.instructions),
    )
    section("Before each session", (escape(n.text) for n in result.before))
    section("Discharge", (escape(n.text) for n in result.discharge))
    if result.cost is not None:
        cost = result.cost
        section(
            "Cost",
            [
                f"{_num(cost.low)}–{_num(cost.high)} {cost.currency} for the series "
                f"({_num(cost.per_session_low)}–{_num(cost.per_session_high)} per session)"
            ],
        )
    lines += _findings(
        f for s in result.sessions for f in s.findings if f.severity is not Severity.INFO
    )
    lines.append(_status(result.status, result.ready, result.override_reason))
    return "\n".join(lines) + "\n"


def next_session(result: NextSession) -> str:
    """The ``next --format markdown`` text.

    Args:
        result: The recommendation.

    Returns:
        Markdown.
    """
    lines = [
        f"## Next session for {escape(result.patient_id)}: {result.decision.upper()}",
        "",
        *(f"- {escape(reason)}" for reason in result.reasons),
        f"- Earliest: {result.earliest_date:%a %Y-%m-%d %H:%M} {label(result.earliest_date)}",
        "",
    ]
    if result.session is None:
        lines += [
            f"**{escape(f.severity.value.upper())}**: {escape(f.message)}"
            for f in result.findings
            if f.severity.value != "info"
        ]
        return "\n".join(lines) + "\n"
    return "\n".join(lines) + session(result.session)


def history(
    patient: PatientRecord, sessions: list[SessionRecord], scores: Sequence[ScoreRecord] = ()
) -> str:
    """The ``history --format markdown`` text.

    Args:
        patient: The patient.
        sessions: Their sessions.
        scores: Their questionnaire scores (a sparkline per instrument).

    Returns:
        Markdown.
    """
    from ketadose.render.records import history_rows, sparklines

    lines = [
        f"## History of {escape(patient.id)} ({patient.protocol})",
        "",
        f"- Baseline score {_num(patient.baseline)}, weight {_num(patient.weight_kg, 'kg', 0.1)}",
        "",
    ]
    lines += _table(
        ("Date", "Dose", "mg/kg", "Score", "Improvement", "BP peak", "Events"),
        (
            (
                row["date"].replace("T", " ")[:16],
                _num(row["total_dose_mg"], "mg", 0.01),
                _num(row["dose_mg_per_kg"], "mg/kg", 0.001),
                _num(row["score"]),
                _num(row["improvement_pct"], "%", 0.1),
                row["bp_peak"] or "–",
                escape(", ".join(row["adverse_events"])) or "–",
            )
            for row in history_rows(patient, sessions)
        ),
    )
    trends = sparklines(sorted(scores, key=lambda score: score.at.timestamp()))
    if trends:
        lines += ["", *(f"- {escape(line)}" for line in trends)]
    return "\n".join(lines)
