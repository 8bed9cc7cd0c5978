"""CSV for scripts and spreadsheets: stable headers, RFC 4180 quoting, no float noise.

One row per phase for a session (``dose``, ``check``), one row per session for a plan (and for
each patient of a batch), one row for ``next``. Several values in one cell (finding codes, the
pump rates of a multi-phase session) are joined with ``;`` in phase or finding order. Numbers
keep ``models.SIGNIFICANT_DIGITS`` and no trailing zeros; a missing value is an empty cell.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from ketadose.models import (
    SIGNIFICANT_DIGITS,
    Finding,
    Measured,
    Preparation,
    SessionDose,
    Systemic,
    significant,
)
from ketadose.units import format_number

if TYPE_CHECKING:
    from ketadose.batch import BatchRecord
    from ketadose.config import Setting
    from ketadose.escalation import NextSession
    from ketadose.planning import Plan, PlannedSession, SeriesPlan
    from ketadose.protocols import ProtocolEntry
    from ketadose.render.config_doc import ConfigFile
    from ketadose.simulation import Simulation

Row = Mapping[str, object]

#: A sublingual or oral dose as measured, and the source's systemic estimate (added at the end:
#: columns before them keep their places).
MEASURED_COLUMNS = ("measured_amount", "measured_unit", "strength", "systemic_mg")
#: What to draw from the vial and make up (added at the end, after the measured columns).
DRAW_COLUMNS = ("vial_mg_per_ml", "draw_ml", "diluent_ml", "diluent")
SESSION_COLUMNS = (
    "protocol",
    "weight_kg",
    "dosing_weight_kg",
    "dosing_weight_basis",
    "phase",
    "kind",
    "label",
    "dose_mg",
    "dose_mg_per_kg",
    "duration_min",
    "rate_mg_per_h",
    "rate_mg_per_kg_per_h",
    "pump_rate_ml_per_h",
    "pump_rate_ml_per_h_rounded",
    "volume_ml",
    "drops_per_min",
    "final_mg_per_ml",
    "status",
    "ready",
    "findings",
    "library_sha256",
    *MEASURED_COLUMNS,
    *DRAW_COLUMNS,
)
PLAN_COLUMNS = (
    "patient_id",
    "protocol",
    "session",
    "date",
    "dose_mg",
    "dose_mg_per_kg",
    "duration_min",
    "pump_rates_ml_per_h",
    "final_mg_per_ml",
    "volume_ml",
    "accumulated_dose_mg",
    "arrive",
    "infusion_start",
    "discharge_earliest",
    "status",
    "ready",
    "findings",
    "condition",
    "library_sha256",
    "predicted_peak_ng_per_ml",
    *MEASURED_COLUMNS,
    *DRAW_COLUMNS,
)
#: A batch's CSV: the row's line in the batch file, the plan's columns, and an error.
BATCH_COLUMNS = ("line", *PLAN_COLUMNS, "error")
NEXT_COLUMNS = (
    "patient_id",
    "protocol",
    "decision",
    "level",
    "sessions_given",
    "improvement_pct",
    "earliest_date",
    "dose_mg_per_kg",
    "total_dose_mg",
    "status",
    "ready",
    "reasons",
    "findings",
    "rule",
    "dosing_weight_kg",
    "weight_policy",
)


def cell(value: object) -> str:
    """One CSV cell: numbers without noise, booleans as true/false, formulas defused.

    A text starting with ``=``, ``+``, ``-``, ``@`` or a tab would run as a formula in a
    spreadsheet (``=HYPERLINK(...)``); it gets a leading apostrophe.

    Args:
        value: A number, text, boolean or None.

    Returns:
        The cell's text.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{significant(value):.{SIGNIFICANT_DIGITS}g}"
    text = str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


def write(columns: Sequence[str], rows: Iterable[Row], *, header: bool = True) -> str:
    """Rows as CSV text (CRLF line ends, minimal quoting, as RFC 4180 has it).

    Args:
        columns: The header, in order; every row has exactly these keys.
        rows: The rows.
        header: Start with the header line.

    Returns:
        The CSV text.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    if header:
        writer.writerow(columns)
    writer.writerows([cell(row[column]) for column in columns] for row in rows)
    return out.getvalue()


def _codes(findings: Iterable[Finding]) -> str:
    return ";".join(f.code for f in findings)


def session_rows(result: SessionDose) -> list[Row]:
    """One row per phase of a checked session.

    Args:
        result: The session.

    Returns:
        Rows keyed by ``SESSION_COLUMNS``.
    """
    weight = result.dosing_weight
    preparation = result.preparation
    return [
        {
            "protocol": result.protocol.id,
            "weight_kg": result.patient.weight_kg,
            "dosing_weight_kg": None if weight is None else weight.kg,
            "dosing_weight_basis": None if weight is None else weight.basis.value,
            "phase": number,
            "kind": phase.kind,
            "label": phase.label,
            "dose_mg": phase.dose_mg,
            "dose_mg_per_kg": phase.dose_mg_per_kg,
            "duration_min": phase.duration_min,
            "rate_mg_per_h": phase.rate_mg_per_h,
            "rate_mg_per_kg_per_h": phase.rate_mg_per_kg_per_h,
            "pump_rate_ml_per_h": phase.pump_rate_ml_per_h,
            "pump_rate_ml_per_h_rounded": phase.pump_rate_ml_per_h_rounded,
            "volume_ml": phase.volume_ml,
            "drops_per_min": phase.drops_per_min,
            "final_mg_per_ml": None if preparation is None else preparation.final_mg_per_ml,
            "status": result.status,
            "ready": result.ready,
            "findings": _codes(result.findings),
            "library_sha256": None if result.library is None else result.library.sha256,
            **_measured(result.measured, None if result.status == "hard" else result.systemic),
            **_drawn(preparation),
        }
        for number, phase in enumerate(result.phases, 1)
    ]


def _drawn(preparation: Preparation | None) -> Row:
    """The draw columns: vial strength, volume drawn (as rounded), diluent added and which."""
    if preparation is None:
        return dict.fromkeys(DRAW_COLUMNS)
    return {
        "vial_mg_per_ml": preparation.vial_mg_per_ml,
        "draw_ml": preparation.draw_ml_rounded,
        "diluent_ml": preparation.diluent_ml,
        "diluent": preparation.diluent if preparation.diluent_ml > 0 else None,
    }


def _measured(measured: Measured | None, systemic: Systemic | None) -> Row:
    """The measured-dose columns: amount, its unit and strength, and the systemic estimate.

    A refused dose has neither: nothing of it is measured or reaches the patient.
    """
    return {
        "measured_amount": None if measured is None else measured.amount_rounded,
        "measured_unit": None if measured is None else measured.unit,
        "strength": None
        if measured is None
        else f"{format_number(measured.strength)} {measured.strength_unit}",
        "systemic_mg": None if systemic is None else systemic.mg,
    }


def plan_row(plan: SeriesPlan, session: PlannedSession) -> Row:
    """One session of a plan as a row.

    Args:
        plan: The plan.
        session: One of its sessions.

    Returns:
        A row keyed by ``PLAN_COLUMNS``.
    """
    rates = [p.pump_rate_ml_per_h_rounded for p in session.phases]
    volumes = [p.volume_ml for p in session.phases if p.volume_ml is not None]
    preparation = session.preparation
    from ketadose.planning import Plan

    home = isinstance(plan, Plan) and plan.setting == "take-home"
    return {
        "patient_id": plan.patient_id,
        "protocol": plan.protocol.id,
        "session": session.number,
        "date": session.date.isoformat(),
        "dose_mg": session.total_dose_mg,
        "dose_mg_per_kg": session.dose_mg_per_kg,
        "duration_min": session.total_duration_min,
        "pump_rates_ml_per_h": ";".join(cell(r) for r in rates if r is not None),
        "final_mg_per_ml": None if preparation is None else preparation.final_mg_per_ml,
        "volume_ml": sum(volumes) if volumes else None,
        "accumulated_dose_mg": session.accumulated_dose_mg,
        # A take-home dose has no chair: no arrival or discharge, only when it is taken.
        "arrive": None if home else session.timeline.arrive.isoformat(),
        "infusion_start": session.timeline.infusion_start.isoformat(),
        "discharge_earliest": None if home else session.timeline.discharge_earliest.isoformat(),
        "status": session.status,
        "ready": session.ready,
        "findings": _codes(session.findings),
        "condition": session.condition,
        "library_sha256": plan.library.sha256,
        "predicted_peak_ng_per_ml": session.predicted_peak_ng_per_ml,
        **_measured(session.measured, None if session.status == "hard" else session.systemic),
        **_drawn(preparation),
    }


def session(result: SessionDose) -> str:
    """The ``dose``/``check --format csv`` text: one row per phase."""
    return write(SESSION_COLUMNS, session_rows(result))


def plan(result: Plan) -> str:
    """The ``plan --format csv`` text: one row per session."""
    return write(PLAN_COLUMNS, (plan_row(result, s) for s in result.sessions))


def batch(record: BatchRecord) -> str:
    """One batch record as CSV rows without the header: one per session, or the error.

    Args:
        record: The record.

    Returns:
        CSV text.
    """
    if record.plan is None:
        empty = dict.fromkeys(BATCH_COLUMNS)
        error = {**empty, "line": record.line, "patient_id": record.id, "status": "error"}
        return write(BATCH_COLUMNS, [{**error, "error": record.error}], header=False)
    plan = record.plan
    rows = ({"line": record.line, **plan_row(plan, s), "error": None} for s in plan.sessions)
    return write(BATCH_COLUMNS, rows, header=False)


def next_session(result: NextSession) -> str:
    """The ``next --format csv`` text: one row."""
    row = {
        "patient_id": result.patient_id,
        "protocol": result.protocol,
        "decision": result.decision,
        "rule": result.rule,
        "dosing_weight_kg": result.basis.dosing_weight_kg,
        "weight_policy": result.basis.weight_policy,
        "level": result.level,
        "sessions_given": result.sessions_given,
        "improvement_pct": result.improvement_pct,
        "earliest_date": result.earliest_date.isoformat(),
        "dose_mg_per_kg": result.dose_mg_per_kg,
        "total_dose_mg": result.total_dose_mg,
        "status": result.status,
        "ready": result.ready,
        "reasons": ";".join(result.reasons),
        "findings": _codes(result.findings),
    }
    return write(NEXT_COLUMNS, [row])


SIMULATION_COLUMNS = ("time_min", "concentration_ng_per_ml")


def simulation(result: Simulation) -> str:
    """``simulate --format csv``: the predicted curve, one row per time point."""
    return write(SIMULATION_COLUMNS, result.series.rows())


PROTOCOL_COLUMNS = (
    "id",
    "name",
    "category",
    "route",
    "weight_based",
    "sessions",
    "per_week_low",
    "per_week_high",
    "library",
    "library_version",
    "library_sha256",
)


def protocols(entries: Sequence[ProtocolEntry]) -> str:
    """``protocols list --format csv``: one row per protocol in effect."""
    return write(
        PROTOCOL_COLUMNS,
        (
            {
                "id": e.protocol.id,
                "name": e.protocol.name,
                "category": e.protocol.category,
                "route": e.protocol.route,
                "weight_based": e.protocol.weight_based,
                "sessions": e.protocol.series.sessions,
                "per_week_low": e.protocol.series.per_week[0],
                "per_week_high": e.protocol.series.per_week[1],
                "library": e.library.name,
                "library_version": e.library.version,
                "library_sha256": e.library.sha256,
            }
            for e in entries
        ),
    )


CONFIG_COLUMNS = ("key", "value", "source", "variable")


def config(config_file: ConfigFile, settings: Sequence[Setting]) -> str:
    """``config show --format csv``: one row per clinic default (``--json`` names the file too)."""
    from ketadose.config import ENVIRONMENT

    return write(
        CONFIG_COLUMNS,
        (
            {"key": s.key, "value": s.value, "source": s.source, "variable": ENVIRONMENT[s.key]}
            for s in settings
        ),
    )
