"""The options the commands share, each declared once (name, help, choices), and their parsing.

(No ``from __future__ import annotations``: Typer reads these annotations at run time.)
"""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ketadose.choices import (
    DEFAULT_DRAW_STEP_ML,
    DEFAULT_PUMP_STEP_ML_PER_H,
    DEFAULT_SESSION_TIME,
    Sex,
    WeightPolicy,
)
from ketadose.cli import env
from ketadose.cli.output import OutputFormat
from ketadose.cli.sources import stdin_option

if TYPE_CHECKING:
    from ketadose.dosing import DoseRequest
    from ketadose.units import Kind

#: The display increments a programme is rounded to unless --pump-step / --draw-step say,
#: and the time of a planned session unless --time says: the core's defaults, as flags spell them.
PUMP_STEP = f"{DEFAULT_PUMP_STEP_ML_PER_H:g}mL/h"
DRAW_STEP = f"{DEFAULT_DRAW_STEP_ML:g}mL"
SESSION_TIME = f"{DEFAULT_SESSION_TIME:%H:%M}"

#: The choices of --sex and --dosing-weight: the core's own enums (one definition, light).
SexOption = Sex
PolicyOption = WeightPolicy


TZ_HELP = (
    "The clinic's time zone, an IANA name (Europe/Berlin): every time given or shown is in it "
    "(default: KETADOSE_TZ, else the system's)."
)
#: The per-command --tz (the app's --tz works before any command too).
TzOpt = Annotated[
    str | None,
    typer.Option("--tz", metavar="ZONE", help=TZ_HELP, callback=env.command_tz, expose_value=False),
]


ProtocolsFile = Annotated[
    Path | None,
    typer.Option(
        "--protocols",
        help="A clinic's protocol file (TOML); its protocols add to or replace the shipped ones.",
        dir_okay=False,
        callback=stdin_option,
    ),
]


JsonFlag = Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")]


FormatOpt = Annotated[
    OutputFormat | None,
    typer.Option(
        "--format",
        help="table (default), json, csv, markdown, html (a printable sheet) or fhir (an R4 "
        "Bundle); --json is short for --format json.",
    ),
]


OutputFile = Annotated[
    Path | None,
    typer.Option("--output", "-o", dir_okay=False, help="Write to FILE (atomically); - is stdout."),
]


ForceFlag = Annotated[bool, typer.Option("--force", help="Replace an existing --output file.")]


LimitsFile = Annotated[
    Path | None,
    typer.Option(
        "--limits",
        envvar="KETADOSE_LIMITS",
        help="The clinic's limit library (TOML); default: the shipped unapproved example.",
        dir_okay=False,
        callback=stdin_option,
    ),
]


StoreFile = Annotated[
    str | None,
    typer.Option(
        "--store",
        envvar="KETADOSE_STORE",
        help="The record store: a file (SQLite) or postgresql://USER@HOST:PORT/DB (never a "
        "password: ~/.pgpass); default: ketadose/store.sqlite3 in the user data dir.",
    ),
]


ClinicianOpt = Annotated[
    str | None, typer.Option("--clinician", help="Who is acting (default: the OS user).")
]


ProtocolId = Annotated[str, typer.Option("--protocol", "-p", help="Protocol id, e.g. depression.")]


WeightOpt = Annotated[str | None, typer.Option(help="Actual body weight with unit: 80kg, 176lb.")]


HeightOpt = Annotated[str | None, typer.Option(help="Height with unit: 178cm, 1.78m, 70in.")]


SexOpt = Annotated[SexOption | None, typer.Option(help="For ideal/adjusted/lean weight.")]


AgeOpt = Annotated[str | None, typer.Option(help="Age with unit: 45y.")]


PolicyOpt = Annotated[
    PolicyOption, typer.Option("--dosing-weight", help="Weight the mg/kg dose is based on.")
]


DoseOpt = Annotated[
    str | None, typer.Option("--dose", help="Replace the protocol's dose: 0.75mg/kg or 60mg.")
]


RateOpt = Annotated[
    str | None, typer.Option(help="Replace the protocol's rate: 0.5mg/kg/h or 25mg/h.")
]


DurationOpt = Annotated[str | None, typer.Option(help="Replace the phase duration: 40min, 4h.")]


VialOpt = Annotated[
    str | None,
    typer.Option(help="Vial strength: 10mg/mL (default; sc: 100mg/mL), 50mg/mL, 100mg/mL."),
]


BagOpt = Annotated[str | None, typer.Option(help="Final volume the drug is made up to: 100mL.")]


StrengthOpt = Annotated[
    str | None,
    typer.Option(
        help="Sublingual or oral: the strength the dose is measured from, one the protocol "
        "lists: 100mg/mL (a solution) or 25mg (a tablet)."
    ),
]


DropFactorOpt = Annotated[
    int | None, typer.Option("--drop-factor", help="Gravity set drops/mL: 10, 15, 20, 60.")
]


PumpStepOpt = Annotated[
    str | None,
    typer.Option(
        "--pump-step",
        help="Pump rate display increment (else KETADOSE_PUMP_STEP, the config file's).",
        show_default=PUMP_STEP,
    ),
]


DrawStepOpt = Annotated[
    str | None,
    typer.Option(
        "--draw-step",
        help="Draw volume display increment (else KETADOSE_DRAW_STEP, the config file's).",
        show_default=DRAW_STEP,
    ),
]


OverrideOpt = Annotated[
    str | None,
    typer.Option(
        "--override-reason", help="Acknowledge the soft findings of this run, saying why."
    ),
]


PatientArg = Annotated[str, typer.Argument(metavar="ID", help="The patient's id.")]


#: The series options plan and batch share.
TimeOfDayOpt = Annotated[str, typer.Option("--time", help="Time of day of the sessions: 09:00.")]
PerWeekOpt = Annotated[int | None, typer.Option("--per-week", help="Most sessions in any 7 days.")]
DaysOpt = Annotated[
    str | None, typer.Option(help="Clinic days: mon,wed,fri (default: Mon-Fri, or daily).")
]
HolidaysOpt = Annotated[
    str | None, typer.Option(help="Skip the public holidays of a country: US, GB, DE...")
]
ClosedOpt = Annotated[
    list[str] | None, typer.Option("--closed", help="A day the clinic is closed: 2026-12-24.")
]


def dose_request(
    *,
    weight: str | None = None,
    height: str | None = None,
    sex: SexOption | None = None,
    age: str | None = None,
    dosing_weight: PolicyOption = PolicyOption.ACTUAL,
    dose: str | None = None,
    rate: str | None = None,
    duration: str | None = None,
    vial: str | None = None,
    strength: str | None = None,
    bag: str | None = None,
    drop_factor: int | None = None,
    pump_step: str | None = None,
    draw_step: str | None = None,
) -> "DoseRequest":
    """Parse the patient and dose options every dosing command shares (each by its name)."""
    from ketadose import inputs
    from ketadose.dosing import DoseRequest
    from ketadose.inputs import amount, quantity
    from ketadose.models import Patient
    from ketadose.preparation import rounding
    from ketadose.units import Kind

    return DoseRequest(
        patient=Patient(
            weight_kg=amount(weight, Kind.WEIGHT),
            height_cm=amount(height, Kind.HEIGHT),
            sex=sex,
            age_years=amount(age, Kind.AGE),
        ),
        policy=dosing_weight,
        dose=quantity(dose, Kind.DOSE_PER_KG, Kind.DOSE),
        rate=quantity(rate, Kind.RATE_PER_KG, Kind.RATE),
        duration_min=amount(duration, Kind.DURATION),
        vial_mg_per_ml=amount(vial, Kind.CONCENTRATION),
        strength=inputs.strength(strength),
        final_volume_ml=amount(bag, Kind.VOLUME),
        drop_factor=drop_factor,
        rounding=rounding(
            _step("pump_step", pump_step, PUMP_STEP, Kind.PUMP_RATE, "pump step"),
            _step("draw_step", draw_step, DRAW_STEP, Kind.VOLUME, "draw step"),
        ),
    )


def _step(key: str, flag: str | None, default: str, kind: "Kind", field: str) -> float:
    """A rounding step: the flag, else its environment variable or the config file's.

    Each step is checked alone (beside the other's default), so that a step the config file
    gives and no pump takes is refused as the file's (exit 5, naming it and the key).
    """
    from dataclasses import replace

    from ketadose.cli import env
    from ketadose.preparation import rounding
    from ketadose.units import parse_as

    found = env.setting(key, flag, default)
    if found.value is None:
        found = replace(found, value=default)

    def use(text: str) -> float:
        value = parse_as(text, kind, field=field)
        if key == "pump_step":
            rounding(value, DEFAULT_DRAW_STEP_ML)
        else:
            rounding(DEFAULT_PUMP_STEP_ML_PER_H, value)
        return value

    return env.configured(found, use)
