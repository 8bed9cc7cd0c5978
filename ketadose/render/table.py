"""Terminal output for clinicians (rich): explicit units, no trailing zeros, findings in view."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from rich import box
from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ketadose.clock import label
from ketadose.limits import SECTIONS, SIDES, LimitLibrary, Profile
from ketadose.models import Finding, LibraryRef, SessionDose, Severity
from ketadose.protocols import ROUTES_NOT_SHIPPED, Protocol, ProtocolEntry
from ketadose.render import draw_text, given, preparation_lines, route_lines
from ketadose.render.wrap import Prose, fit
from ketadose.units import format_number

if TYPE_CHECKING:  # planning (and PK with it) stays off a dose's table
    from ketadose.planning import Plan, TitrationPlan

_SEVERITY_STYLE = {Severity.INFO: "cyan", Severity.SOFT: "yellow", Severity.HARD: "bold red"}


def _num(value: float | None, unit: str = "", step: float | None = None) -> str:
    if value is None:
        return "-"
    text = format_number(value, step)
    return f"{text} {unit}" if unit else text


def library_line(library: LibraryRef) -> Text:
    """One line naming the library, its version, hash and approval (red when unapproved)."""
    text = Text(f"{library.name} {library.version}  sha256 {library.sha256[:16]}  ")
    if library.approved:
        text.append("approved", style="green")
    else:
        text.append("UNAPPROVED EXAMPLE LIBRARY", style="bold red")
    return text


def findings_table(findings: Iterable[Finding]) -> Table:
    """Findings as a table: severity, code, message."""
    table = Table(title="Findings", title_justify="left", show_edge=False, expand=False)
    table.add_column("Severity", no_wrap=True)
    table.add_column("Code", no_wrap=True)
    table.add_column("Message")
    for finding in findings:
        style = _SEVERITY_STYLE[finding.severity]
        severity = Text(finding.severity.value, style=style)
        message = finding.message
        if finding.overridden:
            severity.append(" (overridden)")
            message += f" [override: {finding.override_reason}]"
        table.add_row(severity, finding.code, Prose(message))
    return table


def session_dose(result: SessionDose, console: Console) -> None:
    """Print a session dose: patient and weight basis, phases, preparation, totals, findings.

    Args:
        result: The computed session dose.
        console: Where to print (stdout).

    """
    protocol = result.protocol
    patient = result.patient
    lines = [
        Text.assemble(
            (f"{protocol.name}", "bold"),
            f"  [{protocol.id}, {protocol.category}, {protocol.route}]",
        )
    ]
    facts = []
    if patient.weight_kg is not None:
        facts.append(f"weight {_num(patient.weight_kg, 'kg', 0.1)}")
    if patient.height_cm is not None:
        facts.append(f"height {_num(patient.height_cm, 'cm', 0.1)}")
    if patient.sex is not None:
        facts.append(patient.sex.value)
    if patient.bmi is not None:
        facts.append(f"BMI {_num(patient.bmi, 'kg/m²', 0.1)}")
    if facts:
        lines.append(Text("Patient: " + ", ".join(facts)))
    if result.dosing_weight is not None:
        weight = result.dosing_weight
        note = f" ({weight.note})" if weight.note else ""
        lines.append(
            Text.assemble(
                "Dosing weight: ",
                (f"{_num(weight.kg, 'kg', 0.01)}", "bold"),
                f" [{weight.basis.value}]{note}",
            )
        )
    if result.library is not None:
        lines.append(Text.assemble("Limits: ", library_line(result.library)))
    lines.append(Text.assemble("Protocols: ", library_line(result.protocol_library)))
    console.print(_panel(lines))

    pump_step = result.rounding.pump_rate_ml_per_h
    # Units sit in the headers so the cells stay narrow numbers; every column names its unit.
    table = Table(title="Session programme", title_justify="left")
    table.add_column("Phase")
    headers = ["Dose\nmg", "Dose\nmg/kg", "Time\nmin", "Rate\nmg/h", "Rate\nmg/kg/h"]
    headers += ["Pump\nmL/h", "Volume\nmL"]
    drops = any(p.drops_per_min is not None for p in result.phases)
    if drops:
        headers.append("Drops\n/min")
    for header in headers:
        table.add_column(header, justify="right")
    for phase in result.phases:
        row = [
            f"{phase.label} ({phase.kind})",
            _num(phase.dose_mg, step=0.01),
            _num(phase.dose_mg_per_kg, step=0.001),
            _num(phase.duration_min),
            _num(phase.rate_mg_per_h, step=0.01),
            _num(phase.rate_mg_per_kg_per_h, step=0.001),
            # What the pump is programmed with: the rounded rate, never the exact one rounded
            # again here (the gate chose its direction and checked it).
            _num(phase.pump_rate_ml_per_h_rounded, step=pump_step),
            _num(phase.volume_ml, step=0.1),
        ]
        if drops:
            row.append(_num(phase.drops_per_min, step=1))
        table.add_row(*row)
    table.add_section()
    table.add_row(
        "Total",
        _num(result.total_dose_mg, step=0.01),
        _num(result.total_dose_mg_per_kg, step=0.001),
        _num(result.total_duration_min),
        *([""] * (len(headers) - 3)),
    )
    console.print(fit(table, console))

    if result.preparation is not None:
        text = draw_text(result.preparation, step=result.rounding.draw_ml)
        console.print(Prose(Text("Preparation: ", style="bold") + Text(text), indent=2))
    if result.measured is not None:
        console.print(Prose(Text("Measure: ", style="bold") + Text(result.measured.text), indent=2))
    for line in route_lines(
        result.protocol.route, result.systemic, refused=result.status == "hard"
    ):
        console.print(Prose(line, indent=2))
    if result.findings:
        console.print(findings_table(result.findings))


def _panel(lines: list[Text]) -> Panel:
    """The header box: each line wrapped as prose (a number stays with its unit)."""
    return Panel(Group(*(Prose(line, indent=2) for line in lines)), expand=False)


_STATUS = {
    "ok": ("OK: within the limit library", "bold green"),
    "soft": ("SOFT LIMIT: needs an override reason before it can go ahead", "bold yellow"),
    "hard": ("REFUSED: a hard limit is exceeded; do not programme the pump", "bold red"),
}


def _banner(status: str, ready: bool, override_reason: str | None) -> Text:
    """The status line of a checked result: ok, overridden, soft, or refused."""
    if status == "soft" and ready:
        return Text(f"OVERRIDDEN: {override_reason}", style="bold yellow")
    text, style = _STATUS[status]
    return Text(text, style=style)


def checked_session(result: SessionDose, console: Console, *, findings_first: bool) -> None:
    """Print a checked session: status, the programme and the findings.

    Args:
        result: A session from ``gate.session``.
        console: Where to print.
        findings_first: ``check`` leads with the findings; ``dose`` with the programme.
    """
    banner = _banner(result.status, result.ready, result.override_reason)
    if result.during is not None:
        # A reading during a session: the answer leads, and no programme to start is shown.
        style = {"continue": "bold green", "pause": "bold yellow", "stop": "bold red"}
        action = result.during.action
        banner = Text(f"DURING THE SESSION: {action.upper()}", style=style[action])
        for reason in result.during.reasons:
            banner.append(f"\n  {reason}", style="")
    if findings_first:
        console.print(Prose(banner, indent=2))
        console.print(findings_table(result.findings))
        session_dose(result.model_copy(update={"findings": ()}), console)
    else:
        session_dose(result, console)
        console.print(Prose(banner, indent=2))


def protocol_list(entries: Iterable[ProtocolEntry], console: Console) -> None:
    """Print the protocols in effect, one row each.

    Args:
        entries: The protocols.
        console: Where to print.

    """
    table = Table(title="Protocols", title_justify="left")
    # The id a command takes leads; the name, a sentence, wraps below it.
    table.add_column("Protocol")
    table.add_column("Kind, route")
    table.add_column("Session")
    table.add_column("Series")
    table.add_column("Library")
    for entry in entries:
        p = entry.protocol
        table.add_row(
            Prose(Text(p.id, style="bold") + Text(f"\n{p.name}")),
            Prose(f"{p.category}, {p.route}"),
            Prose(programme_text(p)),
            Prose(f"{p.series.sessions} x, {p.series.per_week[0]}-{p.series.per_week[1]}/week"),
            Prose(entry.library.name),
        )
    console.print(fit(table, console))
    for route, why in ROUTES_NOT_SHIPPED.items():
        console.print(Prose(f"Not shipped: {route}: {why}", indent=2))


def programme_text(protocol: Protocol) -> str:
    """A session programme in one line: ``0.11 mg/kg over 2 min + 0.6 mg/kg over 50 min``."""
    parts = []
    for phase in protocol.phases:
        if phase.kind == "rate":
            cap = f" (max {phase.cap})" if phase.cap else ""
            parts.append(f"{phase.rate} for {phase.duration}{cap}")
        elif phase.duration is not None:
            parts.append(f"{phase.dose} over {phase.duration}")
        else:
            parts.append(str(phase.dose))
    return " + ".join(parts)


def protocol_detail(entry: ProtocolEntry, console: Console) -> None:
    """Print one protocol with every number's source and evidence level.

    Args:
        entry: The protocol and its library.
        console: Where to print.

    """
    p = entry.protocol
    console.print(
        _panel(
            [
                Text.assemble((p.name, "bold"), f"  [{p.id}, {p.category}, {p.route}]"),
                Text(p.summary),
                Text.assemble("Library: ", library_line(entry.library)),
            ]
        )
    )
    table = Table(title="Sourced numbers", title_justify="left")
    table.add_column("Item")
    table.add_column("Value")
    table.add_column("Evidence", no_wrap=True)
    table.add_column("Source")

    def add_row(item: str, value: str, evidence: str, source: str) -> None:
        table.add_row(Prose(item), Prose(value), evidence, Prose(source))

    for i, phase in enumerate(p.phases, 1):
        value = programme_text(p.model_copy(update={"phases": (phase,)}))
        add_row(f"phase {i}: {phase.title}", value, phase.evidence, phase.source)
    s = p.series
    interval = f", at least {s.min_interval} apart" if s.min_interval else ""
    add_row(
        "series",
        f"{s.sessions} sessions, {s.per_week[0]}-{s.per_week[1]} per week{interval}",
        s.evidence,
        s.source,
    )
    for step in p.escalation:
        change = " ".join(str(v) for v in (step.dose, step.rate) if v is not None) + (
            f" over {step.duration}" if step.duration else ""
        )
        add_row(
            f"from session {step.from_session}",
            f"{change} if {step.condition}",
            step.evidence,
            step.source,
        )
    if p.response is not None:
        r = p.response
        add_row("response", f"{r.scale}: {r.threshold}", r.evidence, r.source)
    if p.preparation is not None:
        prep = p.preparation
        add_row(
            "preparation",
            f"made up to {prep.final_volume} {prep.diluent}",
            prep.evidence,
            prep.source,
        )
    if p.form is not None:
        form = p.form
        strengths = ", ".join(str(strength) for strength in form.strengths)
        measure = f"in steps of {form.step}" if form.step is not None else f"split in {form.split}"
        add_row("form", f"{form.name}: {strengths}; {measure}", form.evidence, form.source)
    if p.bioavailability is not None:
        b = p.bioavailability
        high = "" if b.percent_high is None else f"-{b.percent_high:g}"
        value = f"{b.percent:g}{high} % ({b.cite}): shown beside each dose, never dosed on"
        if b.equivalence:
            value += f"; {b.equivalence}"
        add_row("bioavailability", value, b.evidence, b.source)
    elif p.route != "iv":
        add_row("bioavailability", f"none in the sources for {p.route}", "-", "-")
    if p.setting == "take-home":
        add_row("setting", "take-home: each dose is taken away from the clinic", "-", "-")
    for note in p.instructions:
        add_row("each dose", note.text, note.evidence, note.source)
    if p.observation is not None:
        o = p.observation
        add_row("observation", f"at least {o.minimum}", o.evidence, o.source)
    if p.monitoring is not None:
        from ketadose.monitoring import monitoring_text

        m = p.monitoring
        scale = "" if m.sedation_scale is None else f"; sedation on the {m.sedation_scale}"
        add_row("monitoring", monitoring_text(m) + scale, m.evidence, m.source)
    if p.rules is not None and p.rules.futility is not None:
        f = p.rules.futility
        add_row(
            "futility (option)",
            f"under {f.below_pct:g}% improvement after session {f.after_session}: reassess",
            f.evidence,
            f.source,
        )
    console.print(fit(table, console))
    console.print(Text("References:", style="bold"))
    for reference in p.references:
        console.print(Prose(f"  - {reference}", indent=4))


def limit_library(
    library: LimitLibrary, protocol: str | None, profile: Profile | None, console: Console
) -> None:
    """Print a limit library: its header, limits per profile, medications and conditions.

    Args:
        library: The library.
        protocol: The protocol asked about, or None for every profile.
        profile: The protocol's effective profile, when one is asked about.
        console: Where to print.
    """
    console.print(_panel([Text.assemble("Limits: ", library_line(library.ref))]))
    profiles: dict[str, Profile] = (
        {f"{protocol} (in effect)": profile}
        if profile is not None and protocol is not None
        else {
            **{
                name if shown.route is None else f"{name} ({shown.route})": shown
                for name, shown in library.content.profiles.items()
            },
            **{f"route {route}": shown for route, shown in library.content.routes.items()},
        }
    )
    for name, shown in profiles.items():
        for section, model in SECTIONS.items():
            limits = [
                (parameter, limit)
                for parameter in model.model_fields
                if (limit := getattr(getattr(shown, section), parameter)) is not None
            ]
            if not limits:
                continue
            table = Table(title=f"Profile {name}: {section}", title_justify="left")
            table.add_column("Parameter", no_wrap=True)
            table.add_column("Unit", no_wrap=True)
            # Numbers never wrap or truncate: text columns give way first.
            for header in ("Hard\nmin", "Soft\nmin", "Soft\nmax", "Hard\nmax"):
                table.add_column(header, justify="right", no_wrap=True)
            table.add_column("Src", justify="right", no_wrap=True)
            sources: dict[str, int] = {}
            for parameter, limit in limits:
                bounds = limit.bounds
                cells = [_num(getattr(bounds, side)) for side in SIDES]
                number = sources.setdefault(f"[{limit.evidence}] {limit.source}", len(sources) + 1)
                unit = bounds.unit or "count"
                table.add_row(parameter, unit, *cells, str(number))
            console.print(fit(table, console))
            for source, number in sources.items():
                console.print(Prose(f"  {number}. {source}", indent=len(f"  {number}. ")))
    _screening(
        "Medications",
        [
            (
                f"{m.name} ({m.drug_class})",
                m.severity,
                "-" if m.hold is None else m.hold.text,
                ", ".join(m.protocols) or "all",
                ", ".join(m.aliases),
                f"[{m.evidence}] {m.source}",
            )
            for m in library.content.medications
        ],
        console,
    )
    _screening(
        "Conditions",
        [
            (
                c.name,
                c.severity,
                "-",
                ", ".join(c.protocols) or "all",
                ", ".join(c.aliases),
                f"[{c.evidence}] {c.source}",
            )
            for c in library.content.conditions
        ],
        console,
    )
    _overrides(library, console)


def _overrides(library: LimitLibrary, console: Console) -> None:
    """Who may override each finding class, and which a second clinician co-signs."""
    from ketadose.authority import DEFAULT_RULE

    rules = library.content.overrides or {"default": DEFAULT_RULE}
    table = Table(
        title="Overrides (soft findings; nobody overrides a hard one)", title_justify="left"
    )
    for header in ("Class", "Who may override", "Co-signed"):
        table.add_column(header)
    for name, rule in rules.items():
        table.add_row(name, Prose(" or ".join(rule.roles)), "yes" if rule.cosign else "no")
    console.print(fit(table, console))
    for name, rule in rules.items():
        console.print(Prose(f"  {name}: {rule.source}", indent=4))


def _screening(title: str, rows: list[tuple[str, ...]], console: Console) -> None:
    """A medication or condition table, sources numbered below it."""
    table = Table(title=title, title_justify="left")
    table.add_column("Name")
    table.add_column("Severity", no_wrap=True)
    table.add_column("Hold")
    table.add_column("Protocols")
    table.add_column("Aliases")
    table.add_column("Src", justify="right", no_wrap=True)
    sources: dict[str, int] = {}
    for name, severity, hold, protocols, aliases, source in rows:
        cited = str(sources.setdefault(source, len(sources) + 1))
        table.add_row(Prose(name), severity, Prose(hold), Prose(protocols), Prose(aliases), cited)
    console.print(fit(table, console))
    for source, number in sources.items():
        console.print(Prose(f"  {number}. {source}", indent=len(f"  {number}. ")))


def plan(result: Plan, console: Console) -> None:
    """Print a planned series: one row per session, then what surrounds the series.

    Args:
        result: The plan.
        console: Where to print.
    """
    protocol = result.protocol
    stay = result.titration
    count = (
        f"one inpatient stay, {len(result.sessions)} rungs of one continuous infusion"
        if stay is not None
        else f"{len(result.sessions)} sessions"
    )
    lines = [
        Text.assemble((protocol.name, "bold"), f"  [{protocol.id}, {protocol.route}]"),
        Text(f"Start {result.start.isoformat()}, {count}"),
    ]
    if result.dosing_weight is not None:
        weight = result.dosing_weight
        lines.append(Text(f"Dosing weight: {_num(weight.kg, 'kg', 0.01)} [{weight.basis.value}]"))
    lines.append(Text.assemble("Limits: ", library_line(result.library)))
    lines.append(Text.assemble("Protocols: ", library_line(result.protocol_library)))
    console.print(_panel(lines))
    if stay is not None:
        _titration(result, stay, console)
    else:
        _sessions(result, console)
    if result.pk_model:
        console.print(
            Prose(f"Peak: predicted plasma peak ({result.pk_model} model, an estimate; simulate)")
        )
    _plan_notes(result, console)


def _titration(result: Plan, stay: TitrationPlan, console: Console) -> None:
    """The rungs of one stay: when each may start, its rate per kg and per hour, the pump."""
    begin = stay.infusion_start
    table = Table(
        title=f"Titration from {begin:%a %Y-%m-%d %H:%M} {label(begin)}",
        title_justify="left",
        box=box.SIMPLE_HEAD,
    )
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("From\nh", justify="right", no_wrap=True)
    table.add_column("At", no_wrap=True)
    for header in ("Rate\nmg/kg/h", "Rate\nmg/h", "Pump\nmL/h", "Bag\nmg/mL", "Total\nmg"):
        table.add_column(header, justify="right", no_wrap=True)
    table.add_column("Check", no_wrap=True)
    table.add_column("Basis", no_wrap=True)
    table.add_column("Peak\nng/mL", justify="right", no_wrap=True)
    for rung, session in zip(stay.rungs, result.sessions, strict=True):
        phase = session.phases[0]
        bag = session.preparation
        style = {"ok": "green", "soft": "yellow", "hard": "bold red"}[session.status]
        table.add_row(
            str(rung.number),
            _num(rung.at_h, step=0.01),
            f"{session.start:%a %H:%M}",
            _num(rung.rate_mg_per_kg_per_h, step=0.001),
            _num(phase.rate_mg_per_h, step=0.01),
            _num(phase.pump_rate_ml_per_h_rounded, step=0.01),
            _num(None if bag is None else bag.final_mg_per_ml, step=0.01),
            _num(session.accumulated_dose_mg, step=0.01),
            Text(session.status, style=style),
            rung.evidence,
            _num(session.predicted_peak_ng_per_ml, step=1),
        )
    console.print(fit(table, console))
    notes = [
        f"Each rung {stay.interval}; a step up only {result.sessions[-1].condition}"
        if len(result.sessions) > 1
        else f"Each rung {stay.interval}",
        f"Target: {stay.target} ({stay.scale}); then hold the rate. Never above "
        f"{stay.maximum}; the stay lasts at most {stay.maximum_stay}.",
        stay.untolerated,
        "Basis: the evidence each rate rests on (COMPUTED: no cohort reported it).",
    ]
    if stay.stopped is not None:
        notes.append(f"STOPPED: {stay.stopped}")
    for note in notes:
        style = "bold red" if note.startswith("STOP") else ""
        console.print(Prose(Text(f"  {note}", style=style), indent=4))


def _sessions(result: Plan, console: Console) -> None:
    """One row per session of a series."""
    # No vertical rules: the columns must fit 80 characters without truncating a number.
    table = Table(title="Sessions", title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("Date", no_wrap=True)
    pumped = result.protocol.route == "iv"
    give = "Pump\nmL/h" if pumped else "Give"
    for header in ("Dose\nmg", "Dose\nmg/kg", "Time\nmin", give, "Total\nmg"):
        table.add_column(header, justify="right", no_wrap=True)
    table.add_column("Check", no_wrap=True)
    table.add_column("Chair", no_wrap=True, min_width=11)
    table.add_column("Peak\nng/mL", justify="right", no_wrap=True)
    home = result.setting == "take-home"
    for session in result.sessions:
        pumps = "/".join(
            _num(p.pump_rate_ml_per_h_rounded, step=0.01)
            for p in session.phases
            if p.pump_rate_ml_per_h_rounded
        )
        if not pumped:
            # The strength is said once below the table; the cell keeps the amount.
            pumps = given(
                session.status, session.phases, session.preparation, session.measured, short=True
            )
        timeline = session.timeline
        style = {"ok": "green", "soft": "yellow", "hard": "bold red"}[session.status]
        table.add_row(
            str(session.number),
            f"{session.start:%a %Y-%m-%d}",
            _num(session.total_dose_mg, step=0.01),
            _num(session.dose_mg_per_kg, step=0.001),
            _num(session.total_duration_min),
            pumps or "-",
            _num(session.accumulated_dose_mg, step=0.01),
            Text(session.status, style=style),
            "at home"
            if home
            else f"{timeline.arrive:%H:%M}-{timeline.discharge_earliest:%H:%M} "
            f"{label(timeline.discharge_earliest)}",
            _num(session.predicted_peak_ng_per_ml, step=1),
        )
    console.print(fit(table, console))
    measured = next((s.measured for s in result.sessions if s.measured is not None), None)
    if measured is not None:
        console.print(
            Prose(
                f"Give: measured from {measured.name} {_num(measured.strength)} "
                f"{measured.strength_unit}, in steps of {_num(measured.step)} {measured.unit}",
                indent=2,
            )
        )
    if result.sessions:
        for line in route_lines(
            result.protocol.route,
            result.sessions[0].systemic,
            refused=all(s.status == "hard" for s in result.sessions),
        ):
            console.print(Prose(line, indent=2))


def _plan_notes(result: Plan, console: Console) -> None:
    """What surrounds a plan: escalation, evaluation, notes, cost, findings, the verdict."""

    def section(title: str, items: list[str]) -> None:
        if items:
            console.print(Text(title, style="bold"))
            for item in items:
                console.print(Prose(f"  - {item}", indent=4))

    section("Preparation", preparation_lines(result.sessions))
    section("Escalation", list(result.escalation_lines()))
    section("Evaluation", [result.evaluation])
    section("Maintenance options", [f"{n.text} [{n.evidence}]" for n in result.maintenance])
    section(
        "Adjuncts",
        [f"{a.name} {a.dose}: {a.purpose} [{a.evidence}]" for a in result.adjuncts],
    )
    section(
        "Take-home: how each dose is taken" if result.setting == "take-home" else "Each dose",
        [f"{n.text} [{n.evidence}]" for n in result.instructions],
    )
    section("Before each session", [f"{n.text} [{n.evidence}]" for n in result.before])
    section("Discharge", [f"{n.text} [{n.evidence}]" for n in result.discharge])
    if result.cost is not None:
        cost = result.cost
        section(
            "Cost",
            [
                f"{_num(cost.low)}-{_num(cost.high)} {cost.currency} for the series "
                f"({_num(cost.per_session_low)}-{_num(cost.per_session_high)} per session)"
            ],
        )
    flagged = [
        f.model_copy(update={"message": f"session {s.number}: {f.message}"})
        for s in result.sessions
        for f in s.findings
        if f.severity is not Severity.INFO
    ]
    if flagged:
        console.print(findings_table(flagged))
    console.print(Prose(_banner(result.status, result.ready, result.override_reason), indent=2))
