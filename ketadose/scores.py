"""The record store's questionnaire row: one scored instrument for one patient at one time.

A plain frozen dataclass, like the rows of ``ketadose.records``, so the store reads it back
without building any pydantic model; scoring itself is in :mod:`ketadose.instruments`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class ScoreRecord:
    """A questionnaire as recorded.

    Attributes:
        patient_id: Whose score.
        at: When it was answered (aware; stored with its UTC offset).
        instrument: The instrument's id (``phq9``, ``gad7``, ``pcl5``, ``madrs``).
        items: The item answers in order, or None for a total recorded alone (MADRS).
        total: The total (the sum of ``items`` when they are given).
        acknowledged_by: Who acknowledged its safety finding (None: not acknowledged).
        acknowledged_at: When.
        acknowledgement: What they wrote.
        id: The store's row id (None before it is stored).
    """

    patient_id: str
    at: datetime
    instrument: str
    items: tuple[int, ...] | None
    total: int
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    acknowledgement: str | None = None
    id: int | None = None

    @property
    def acknowledged(self) -> bool:
        """Whether a clinician has acknowledged the score's safety finding."""
        return self.acknowledgement is not None
