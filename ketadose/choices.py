"""The core's closed vocabularies and built-in defaults, defined once, in a light module.

Standard library only: the command line builds its choices (``--sex``, ``--dosing-weight``,
``simulate --model``) and shows its defaults from here at every start-up, without loading
pydantic, the models or the PK code; those modules take the same definitions from here.
"""

from __future__ import annotations

from datetime import time
from enum import StrEnum


class Sex(StrEnum):
    """Sex as used by the dosing-weight formulas (Devine, Janmahasatian)."""

    MALE = "male"
    FEMALE = "female"


class WeightPolicy(StrEnum):
    """Which body weight a mg/kg dose is multiplied by."""

    ACTUAL = "actual"
    IDEAL = "ideal"
    ADJUSTED = "adjusted"
    LEAN = "lean"


class PkModel(StrEnum):
    """The published ketamine PK models ``ketadose.pk.MODELS`` holds, by id."""

    CLEMENTS250 = "clements250"
    DOMINO = "domino"
    HIJAZI = "hijazi"
    KAMP = "kamp"


#: The default model: its predicted peak after 0.5 mg/kg over 40 min (177 ng/mL at 70 kg) is
#: the closest to the ~185 ng/mL measured (Zarate 2006, in Zanos 2018; clinical.md 9.3).
DEFAULT_PK_MODEL = PkModel.CLEMENTS250

#: The increments a pump is programmed in (mL/h): infusion pumps take 0.01, 0.1 or 1 mL/h.
PUMP_STEPS_ML_PER_H = (0.01, 0.1, 1.0)
#: The graduations a syringe is read to (mL): 0.01 (1 mL), 0.02, 0.05 and 0.1 (3-10 mL).
DRAW_STEPS_ML = (0.01, 0.02, 0.05, 0.1)
#: The pump and draw increments used unless a caller says otherwise.
DEFAULT_PUMP_STEP_ML_PER_H = 0.1
DEFAULT_DRAW_STEP_ML = 0.01
#: The time of day of a planned series' sessions unless a caller says otherwise.
DEFAULT_SESSION_TIME = time(9, 0)
