"""Terminal layout: prose wraps at words and keeps a number with its unit; tables fit 80."""

from __future__ import annotations

import functools
import io
import re
from collections import Counter
from collections.abc import Callable
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from rich.console import Console
from rich.table import Table

from ketadose.dosing import DoseRequest
from ketadose.gate import session as assess
from ketadose.libfile import Quantity
from ketadose.limits import load_library as load_limits
from ketadose.models import CheckContext, MedicationUse, Patient, Vitals
from ketadose.planning import PlanRequest, plan
from ketadose.protocols import load_library
from ketadose.render import table
from ketadose.render.wrap import Prose, breaks, fit, tokens
from ketadose.units import Kind

WIDTHS = (80, 100, 120)
UNITS = r"mg/kg/h|mg/kg|mg/mL|mg/h|mL/h|ng/mL|mcg|mL|mg|kg|min|mmHg|bpm|cm|h|%"
#: What a nurse reads: a number with its unit, a date or a time, or a word.
TOKEN = re.compile(rf"\d+(?:[.:/-]\d+)*(?: ?(?:{UNITS})(?![\w/]))?|[^\W\d_]+(?:['-][^\W\d_]+)*")
LIMITS = load_limits(None)
PROTOCOLS = load_library(None)
ZONE = ZoneInfo("Europe/Berlin")


def printed(render: Callable[[Console], None], width: int) -> str:
    console = Console(width=width, file=io.StringIO(), color_system=None, highlight=False)
    render(console)
    return str(console.file.getvalue())  # type: ignore[attr-defined]


def broken(render: Callable[[Console], None], width: int) -> list[str]:
    """What printing at ``width`` splits or cuts that a line wide enough for all shows whole."""
    wide, narrow = printed(render, 2000), printed(render, width)
    lost = sorted(Counter(TOKEN.findall(wide)) - Counter(TOKEN.findall(narrow)))
    if "…" in narrow:
        lost.append("…")
    if max(map(len, narrow.splitlines())) > width:
        lost.append("wider than the console")
    return lost


def session(protocol: str, context: CheckContext | None = None, **request: Any) -> Any:
    entry = PROTOCOLS.get_protocol(protocol)
    dose = DoseRequest(patient=Patient(weight_kg=83.4), **request)
    return assess(entry, dose, LIMITS, context)


def series(protocol: str) -> Any:
    request = PlanRequest(
        zone=ZONE, dose=DoseRequest(patient=Patient(weight_kg=83.4)), start=date(2026, 3, 2)
    )
    return plan(PROTOCOLS.get_protocol(protocol), request, LIMITS)


PLANNED = ("depression", "crps", "depression-oral", "depression-sc-kads", "esketamine-nasal")


def planned(protocol: str, console: Console) -> None:
    table.plan(series(protocol), console)


def shown(protocol: str, console: Console) -> None:
    table.protocol_detail(PROTOCOLS.get_protocol(protocol), console)


CHECKED = CheckContext(
    vitals=Vitals(systolic=150, diastolic=95),
    medications=(MedicationUse(name="lorazepam", hours_since=2.0),),
)
VIEWS: dict[str, Callable[[Console], None]] = {
    "dose iv": lambda c: table.checked_session(session("depression"), c, findings_first=False),
    "dose drops": lambda c: table.checked_session(
        session("suicidal-ideation", drop_factor=20), c, findings_first=False
    ),
    "dose soft": lambda c: table.checked_session(
        session("depression", dose=Quantity(Kind.DOSE_PER_KG, 1.2, "1.2mg/kg")),
        c,
        findings_first=False,
    ),
    "check findings": lambda c: table.checked_session(
        session("depression", context=CHECKED), c, findings_first=True
    ),
    "dose im": lambda c: table.checked_session(session("depression-im"), c, findings_first=False),
    "dose oral": lambda c: table.checked_session(
        session("depression-oral"), c, findings_first=False
    ),
    **{f"plan {p}": functools.partial(planned, p) for p in PLANNED},
    "protocols list": lambda c: table.protocol_list(PROTOCOLS.values(), c),
    **{f"protocols show {p}": functools.partial(shown, p) for p in PLANNED[:4]},
    "limits show": lambda c: table.limit_library(LIMITS, None, None, c),
}


class TestTablesAtTheTerminalsWidth:
    """At 80, 100 and 120 columns nothing a nurse reads is split, cut or wider than the screen."""

    @pytest.mark.parametrize("width", WIDTHS)
    @pytest.mark.parametrize("view", VIEWS)
    def test_nothing_is_split(self, view: str, width: int) -> None:
        assert broken(VIEWS[view], width) == []

    def test_the_checker_sees_a_split_number(self) -> None:
        # rich alone, 19 columns: "0.35" ends a line and "mg/mL" starts the next.
        def plain(console: Console) -> None:
            console.print("make 100 mL of 0.35 mg/mL")

        assert "0.35 mg/mL" in broken(plain, 19)
        assert broken(lambda c: c.print(Prose("make 100 mL of 0.35 mg/mL")), 19) == []

    def test_a_plan_at_80_keeps_every_date_and_pump_rate(self) -> None:
        text = printed(VIEWS["plan depression"], 80)
        # 0.5 mg/kg x 83.4 kg = 41.7 mg over 40 min from 100 mL: 150 mL/h.
        assert re.search(r"\b1 +Mon 2026-03-02 +41\.7 +0\.5 +40 +150 +41\.7 +ok", text)


class TestProse:
    """Prose breaks at spaces, never between a number and its unit."""

    def test_tokens_keep_numbers_with_units_and_punctuation(self) -> None:
        text = "(41.7 mg), add 95.83 mL 0.9% sodium to 1.5 mg/kg/h, 5 mgx"
        assert [text[a:b] for a, b in tokens(text)] == [
            "(41.7 mg),", "add", "95.83 mL", "0.9%", "sodium", "to", "1.5 mg/kg/h,", "5", "mgx",
        ]  # fmt: skip

    def test_breaks_with_a_hanging_indent(self) -> None:
        text = "  - draw 4.17 mL of 10 mg/mL (41.7 mg)"
        lines = [text[a:b] for a, b in breaks(text, 16, indent=4)]
        assert lines == ["  - draw 4.17 mL", "of 10 mg/mL", "(41.7 mg)"]

    def test_a_run_longer_than_the_line_is_the_only_cut(self) -> None:
        assert breaks("ab 0123456789", 4) == [(0, 2), (3, 7), (7, 11), (11, 13)]

    def test_styles_survive_the_wrap(self) -> None:
        from rich.text import Text

        console = Console(width=12, file=io.StringIO(), color_system="truecolor")
        console.print(Prose(Text("Preparation: ", style="bold") + Text("draw 4 mL")))
        out = console.file.getvalue()  # type: ignore[attr-defined]
        assert "\x1b[1mPreparation:" in out and "draw 4 mL" in out


class TestFit:
    """A table that fits is left alone; one that does not loses spacing, never digits."""

    def build(self) -> Table:
        grid = Table()
        for header in ("#", "Date", "Dose mg", "Pump mL/h", "Chair"):
            grid.add_column(header, no_wrap=True)
        grid.add_column("Note")
        grid.add_row("10", "Mon 2026-03-02", "41.7", "150", "09:00-10:30 CET", Prose("a b c"))
        return grid

    def test_fits_unchanged(self) -> None:
        grid = self.build()
        fit(grid, Console(width=120, file=io.StringIO()))
        assert grid.padding == (0, 1, 0, 1) and all(c.width is None for c in grid.columns)

    def test_narrow(self) -> None:
        grid = self.build()
        console = Console(width=60, file=io.StringIO())
        console.print(fit(grid, console))
        out = console.file.getvalue()  # type: ignore[attr-defined]
        assert "Mon 2026-03-02" in out and "09:00-10:30 CET" in out and "…" not in out
        assert max(map(len, out.splitlines())) <= 60


class TestRecordTablesThroughTheCommandLine:
    """history, patient show and audit at the terminal's width (COLUMNS), as a nurse runs them."""

    @pytest.fixture(autouse=True)
    def records(self) -> None:
        from typer.testing import CliRunner

        from ketadose.cli import app

        self.runner, self.app = CliRunner(), app
        note = "felt floaty, asked for the lights dimmed and slept for some time afterwards"
        for args in (
            ["patient", "add", "P1", "-p", "depression", "--weight", "80kg", "--baseline", "30"],
            ["session", "record", "P1", "--date", "2026-11-30T09:00", "--ae",
             "dissociation:severe", "--notes", note],
            ["score", "record", "P1", "--instrument", "madrs", "--total", "20", "--date",
             "2026-12-01T09:00"],
        ):  # fmt: skip
            assert self.runner.invoke(app, args).exit_code == 0

    def shown(self, args: list[str], width: int) -> str:
        result = self.runner.invoke(self.app, args, env={"COLUMNS": str(width)})
        assert result.exit_code == 0, result.stderr
        return str(result.stdout)

    @pytest.mark.parametrize("width", WIDTHS)
    @pytest.mark.parametrize("command", [["history", "P1"], ["patient", "show", "P1"], ["audit"]])
    def test_nothing_is_split(self, command: list[str], width: int) -> None:
        wide, narrow = self.shown(command, 2000), self.shown(command, width)
        assert sorted(Counter(TOKEN.findall(wide)) - Counter(TOKEN.findall(narrow))) == []
        assert "…" not in narrow
        assert max(map(len, narrow.splitlines())) <= width
        assert "dissociation:severe" in narrow or command == ["audit"]

    def test_a_narrower_terminal_is_laid_out_at_80(self) -> None:
        assert max(map(len, self.shown(["history", "P1"], 40).splitlines())) == 80
