"""ketadose session record: a session given, checked, recorded and logged."""

from typing import Annotated

import typer

from ketadose.cli import audit_log, env
from ketadose.cli.exits import command
from ketadose.cli.options import (
    ClinicianOpt,
    LimitsFile,
    OverrideOpt,
    PatientArg,
    PolicyOpt,
    PolicyOption,
    ProtocolsFile,
    StoreFile,
    StrengthOpt,
    TzOpt,
)
from ketadose.errors import InputField, OverrideRefusedError


@command
def session_record(
    patient_id: PatientArg,
    date: Annotated[str, typer.Option("--date", help="When it started: 2026-11-30T09:00.")],
    dose_: Annotated[
        str | None,
        typer.Option("--dose", help="Dose given, if not the protocol's: 40mg or 0.5mg/kg."),
    ] = None,
    rate: Annotated[
        str | None, typer.Option(help="Rate given, if not the protocol's: 0.3mg/kg/h.")
    ] = None,
    duration: Annotated[str | None, typer.Option(help="Infusion time: 40min.")] = None,
    strength: StrengthOpt = None,
    dosing_weight: PolicyOpt = PolicyOption.ACTUAL,
    stop: Annotated[
        str | None,
        typer.Option("--stop", help="Stopped early at: 2026-11-30T09:25 (mg given to then)."),
    ] = None,
    stop_reason: Annotated[str | None, typer.Option("--stop-reason", help="Why.")] = None,
    bp_before: Annotated[str | None, typer.Option("--bp-before", help="150/95.")] = None,
    bp_peak: Annotated[str | None, typer.Option("--bp-peak", help="Highest: 150/95.")] = None,
    bp_after: Annotated[str | None, typer.Option("--bp-after", help="At discharge.")] = None,
    hr: Annotated[str | None, typer.Option("--hr", help="Highest heart rate: 95.")] = None,
    spo2: Annotated[str | None, typer.Option("--spo2", help="Lowest SpO2: 96.")] = None,
    score: Annotated[
        float | None, typer.Option(help="Response score on the protocol's scale.")
    ] = None,
    ae: Annotated[
        list[str] | None,
        typer.Option("--ae", help="Adverse event TERM:GRADE: nausea:mild, dissociation:severe."),
    ] = None,
    reported: Annotated[
        bool,
        typer.Option(
            "--reported",
            help="The adverse events were asked about and are complete as given (none when no "
            "--ae): the report a take-home dose is judged on.",
        ),
    ] = False,
    notes: Annotated[str | None, typer.Option(help="Free notes.")] = None,
    weight: Annotated[str | None, typer.Option(help="Weight today, if it changed: 79kg.")] = None,
    clinician: ClinicianOpt = None,
    override_reason: OverrideOpt = None,
    store: StoreFile = None,
    protocols: ProtocolsFile = None,
    limits: LimitsFile = None,
    tz: TzOpt = None,
) -> None:
    """Record a session given, check it and log it; one past a hard limit is kept, flagged."""
    from dataclasses import replace

    from ketadose import events as ae_vocabulary
    from ketadose import gate, inputs
    from ketadose.dosing import DoseRequest
    from ketadose.errors import InputError
    from ketadose.models import CheckContext, PreviousSession, WeightPolicy
    from ketadose.monitoring import check_stop, session_given
    from ketadose.records import BloodPressure
    from ketadose.series import SERIES_WINDOW
    from ketadose.units import Kind

    zone = env.zone()
    at = inputs.moment(date, field=InputField.DATE, zone=zone)
    stopped = None if stop is None else inputs.moment(stop, field=InputField.STOP, zone=zone)
    check_stop(at, stopped, stop_reason)
    events = tuple(ae_vocabulary.parse(event) for event in ae or [])
    if score is not None and not 0 <= score <= 1000:
        raise InputError("--score must be from 0 to 1000")

    def pressure(text: str | None) -> BloodPressure | None:
        return None if text is None else BloodPressure(*inputs.blood_pressure(text))

    library = env.library(protocols)
    limit_library = env.limits(limits, library)
    with env.open_store(store) as db, db.exclusive("record the session"):
        # One transaction from the read to the write: a session recorded at the same time
        # by another workstation is in the history this one is checked against.
        record = db.patient(patient_id)
        for earlier, entry_id in db.awaiting_cosign(patient_id)[:1]:
            raise OverrideRefusedError(
                f"session {earlier}'s override awaits an independent second clinician's "
                f"co-signature (ketadose override cosign {entry_id}); no later session is "
                "recorded before it"
            )
        new_weight = inputs.amount(weight, Kind.WEIGHT)
        entry = library.get_protocol(record.protocol)
        titration = entry.protocol.titration
        if score is not None and titration is not None and score > titration.target.scale_max:
            raise InputError(
                f"--score must be on the {titration.scale} scale, 0 to "
                f"{titration.target.scale_max:g}"
            )
        # Every other session counts, on both sides of this one: a session recorded at the
        # same time as another, or back-filled between two, is checked with its neighbours.
        # Read by the time index: the sessions within 7 days on either side and the nearest
        # beyond, all that the series limits look at (not the whole history).
        history = db.sessions_around(patient_id, at, SERIES_WINDOW)
        request = DoseRequest(
            patient=(
                record if new_weight is None else replace(record, weight_kg=new_weight)
            ).as_patient(),
            policy=WeightPolicy(dosing_weight.value),
            dose=inputs.quantity(dose_, Kind.DOSE_PER_KG, Kind.DOSE),
            rate=inputs.quantity(rate, Kind.RATE_PER_KG, Kind.RATE),
            duration_min=inputs.amount(duration, Kind.DURATION),
            strength=inputs.strength(strength),
        )
        peak = inputs.vitals(bp_peak, hr, spo2)
        context = CheckContext(
            at=at,
            vitals=inputs.vitals(bp_before, None, None),
            peak=peak,
            history=tuple(
                PreviousSession(at=s.at, dose_mg=s.dose_mg, dose_mg_per_kg=s.dose_mg_per_kg)
                for s in history
            ),
        )
        checked = gate.session(entry, request, limit_library, context, override_reason)
        # Refused here, before anything is written, when the role may not override it.
        cosign = audit_log.authorize(db, limit_library, checked.findings)
        session = session_given(
            checked,
            patient_id=patient_id,
            at=at,
            stopped=stopped,
            stop_reason=stop_reason,
            bp_before=pressure(bp_before),
            bp_peak=pressure(bp_peak),
            bp_after=pressure(bp_after),
            peak=peak,
            score=score,
            adverse_events=events,
            notes=notes,
            reported=reported,
        )
        audit = audit_log.entry(
            clinician,
            "session record",
            patient_id,
            {
                "date": date,
                "dose": dose_,
                "rate": rate,
                "duration": duration,
                "weight": weight,
                "dosing_weight": dosing_weight.value,
                "stop": stop,
                "adverse_events": ";".join(str(e) for e in events) or None,
            },
            checked.findings,
            checked.status,
            checked.override_reason,
            limit_library.ref.sha256,
        )
        number = db.record_session_with_audit(
            replace(session, cosign=cosign), audit, weight_kg=new_weight
        )
        waiting = dict(db.awaiting_cosign(patient_id)).get(number) if cosign else None
    flagged = [f for f in checked.findings if f.severity.value != "info"]
    typer.echo(
        f"ketadose: recorded session {number} for {patient_id} ({checked.status}"
        f"{', ' + str(len(flagged)) + ' finding(s) in the audit log' if flagged else ''})",
        err=True,
    )
    if waiting is not None:
        typer.echo(
            f"ketadose: session {number}'s override awaits an independent second clinician: "
            f"ketadose override cosign {waiting}",
            err=True,
        )
