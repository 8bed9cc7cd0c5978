"""Tests for ketadose.inputs: vitals, medications and times typed at the command line."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from ketadose.errors import InputError
from ketadose.inputs import blood_pressure, medication, moment, previous, reading_rows, vitals
from ketadose.models import MedicationUse, PreviousSession, Vitals

BERLIN = ZoneInfo("Europe/Berlin")


class TestVitals:
    """Vital signs take a bare number in the option's unit, or the unit written out."""

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("150/95", (150, 95)),
            ("150/95 mmHg", (150, 95)),
            ("120.5/80", (120.5, 80)),
            (" 150 / 95 ", (150, 95)),
        ],
    )
    def test_blood_pressure(self, text: str, expected: tuple[float, float]) -> None:
        assert blood_pressure(text) == expected

    @pytest.mark.parametrize(
        ("text", "fragment"),
        [
            ("150/", "is not systolic/diastolic"),
            ("/95", "is not systolic/diastolic"),
            ("150", "is not systolic/diastolic"),
            ("150/95/80", "is not systolic/diastolic"),
            ("95/150", "diastolic 150 is not below systolic 95"),
            ("120/120", "is not below"),
            ("150/-95", "is not systolic/diastolic"),
            ("150,5/95", "is not systolic/diastolic"),
            ("abc", "is not systolic/diastolic"),
        ],
    )
    def test_blood_pressure_refused(self, text: str, fragment: str) -> None:
        with pytest.raises(InputError, match=fragment):
            blood_pressure(text)

    def test_vitals(self) -> None:
        assert vitals("150/95", "80", "97%") == Vitals(
            systolic=150, diastolic=95, heart_rate=80, spo2=97
        )
        assert vitals(None, "80bpm", None) == Vitals(heart_rate=80)
        assert vitals(None, None, None) is None

    @pytest.mark.parametrize(
        ("hr", "spo2", "fragment"),
        [
            ("80 mmHg", None, "not a heart rate"),
            (None, "101", "above 100%"),
            ("0", None, "is zero"),
            ("-5", None, "has a sign"),
        ],
    )
    def test_vitals_refused(self, hr: str | None, spo2: str | None, fragment: str) -> None:
        with pytest.raises(InputError, match=fragment):
            vitals(None, hr, spo2)


class TestMedication:
    """NAME[:TIME]; a bare time is in hours."""

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("lorazepam", MedicationUse("lorazepam")),
            ("lorazepam:12", MedicationUse("lorazepam", 12)),
            ("lorazepam:90min", MedicationUse("lorazepam", 1.5)),
            ("lorazepam:2d", MedicationUse("lorazepam", 48)),
        ],
    )
    def test_parsed(self, text: str, expected: MedicationUse) -> None:
        assert medication(text) == expected

    @pytest.mark.parametrize("text", [":12", "", "lorazepam:", "lorazepam:12kg", "lorazepam:1,5"])
    def test_refused(self, text: str) -> None:
        with pytest.raises(InputError):
            medication(text)


class TestTimes:
    """Date and time, ISO 8601 with a time of day: local in the clinic's zone, or with an offset."""

    def test_moment(self) -> None:
        expected = datetime(2026, 11, 26, 9, 0, tzinfo=BERLIN)
        assert moment("2026-11-26T09:00", field="t", zone=BERLIN) == expected
        assert moment("2026-11-26 09:00", field="t", zone=BERLIN) == expected
        assert moment("2026-11-26T09:00", field="t", zone=BERLIN).utcoffset() == timedelta(hours=1)

    def test_offset_is_that_moment_in_the_clinic_zone(self) -> None:
        at = moment("2026-11-26T09:00Z", field="t", zone=BERLIN)
        assert at.tzinfo is BERLIN
        assert (at.hour, at.utcoffset()) == (10, timedelta(hours=1))

    @pytest.mark.parametrize(
        ("text", "fragment"),
        [
            ("2026-11-26", "needs a time of day"),
            ("26/11/2026 09:00", "not a date and time"),
            ("yesterday", "not a date and time"),
            ("2026-03-29T02:30", "does not exist in Europe/Berlin"),
            ("2026-10-25T02:30", "happens twice in Europe/Berlin"),
        ],
    )
    def test_refused(self, text: str, fragment: str) -> None:
        with pytest.raises(InputError, match=fragment):
            moment(text, field="--at", zone=BERLIN)

    def test_previous(self) -> None:
        at = datetime(2026, 11, 25, 9, 0, tzinfo=BERLIN)
        assert previous("2026-11-25T09:00", BERLIN) == PreviousSession(at=at)
        assert previous("2026-11-25T09:00=40mg", BERLIN) == PreviousSession(at=at, dose_mg=40)
        assert previous("2026-11-25T09:00=0.5mg/kg", BERLIN) == PreviousSession(
            at=at, dose_mg_per_kg=0.5
        )
        with pytest.raises(InputError, match="has no unit"):
            previous("2026-11-25T09:00=40", BERLIN)


class TestMedicationLastDose:
    """--med NAME@TIME: the hold is measured from the last dose to the session time."""

    BERLIN = ZoneInfo("Europe/Berlin")

    def at(self, text: str) -> datetime:
        return moment(text, field="--at", zone=self.BERLIN)

    def test_hours_to_the_session(self) -> None:
        use = medication(
            "theophylline@2026-12-05T09:00", at=self.at("2026-12-07T09:00"), zone=self.BERLIN
        )
        assert use == MedicationUse("theophylline", 48)

    def test_elapsed_across_a_daylight_saving_change(self) -> None:
        # Clocks go forward on 29 March 2026 in Berlin: two wall-clock days are 47 h.
        use = medication(
            "aminophylline@2026-03-28T09:00", at=self.at("2026-03-30T09:00"), zone=self.BERLIN
        )
        assert use.hours_since == 47

    def test_a_last_dose_after_the_session_is_refused(self) -> None:
        with pytest.raises(InputError, match="after the session"):
            medication(
                "lorazepam@2026-12-08T09:00", at=self.at("2026-12-07T09:00"), zone=self.BERLIN
            )

    def test_a_last_dose_time_needs_the_session_time(self) -> None:
        with pytest.raises(InputError, match="needs the session time"):
            medication("lorazepam@2026-12-05T09:00")

    @pytest.mark.parametrize("text", ["@2026-12-05T09:00", "lorazepam@yesterday"])
    def test_malformed(self, text: str) -> None:
        with pytest.raises(InputError):
            medication(text, at=self.at("2026-12-07T09:00"), zone=self.BERLIN)


class TestReadingRows:
    """A readings CSV is read from the bytes given, and messages name it as given."""

    ZONE = ZoneInfo("Europe/Berlin")

    def test_rows_from_bytes(self) -> None:
        rows = reading_rows(
            b"\xef\xbb\xbfat,bp,hr\n2026-11-30T09:10,140/90,80\n", "stdin", self.ZONE
        )
        assert [(r.at.isoformat(), r.systolic, r.diastolic, r.heart_rate) for r in rows] == [
            ("2026-11-30T09:10:00+01:00", 140, 90, 80)
        ]

    @pytest.mark.parametrize(
        ("data", "message"),
        [
            (b"", "stdin: empty; expected a header at,bp,hr,spo2,sedation"),
            (b"at,bp\n", "stdin: no readings"),
            (b"\xff", "stdin: not UTF-8 text"),
            (b"at,bp\n2026-11-30T09:10\n", "stdin line 2: 1 cells, the header has 2"),
        ],
    )
    def test_messages_name_the_source(self, data: bytes, message: str) -> None:
        with pytest.raises(InputError) as error:
            reading_rows(data, "stdin", self.ZONE)
        assert str(error.value) == message
