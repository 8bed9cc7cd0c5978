"""The plan sheet printed by a real browser: headless Chromium to PDF, read back with poppler."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from ketadose.render.html import Paper, plan_sheet
from tests.test_render_html import example_plan

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
TIMEOUT_S = 120


def tool(*names: str) -> str:
    """The first of ``names`` on PATH; skipped when none is, failed under CI=true."""
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    reason = f"{' / '.join(names)} not installed: the printed sheet cannot be checked"
    if os.environ.get("CI") == "true":
        pytest.fail(reason + " (CI=true: the tool is required)")
    pytest.skip(reason)


def print_pdf(html: str, directory: Path) -> Path:
    """Print a sheet to PDF with headless Chromium, without the browser's header and footer."""
    browser = tool(*BROWSERS)
    sheet = directory / "sheet.html"
    sheet.write_text(html, encoding="utf-8")
    out = directory / "sheet.pdf"
    version = subprocess.run(
        [browser, "--version"], capture_output=True, text=True, timeout=TIMEOUT_S
    ).stdout
    major = int(match[1]) if (match := re.search(r"(\d+)\.\d+", version)) else 0
    # --no-pdf-header-footer since Chrome 111; older headless used --print-to-pdf-no-header.
    no_header = "--no-pdf-header-footer" if major >= 111 else "--print-to-pdf-no-header"
    command = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        f"--user-data-dir={directory / 'profile'}",
        no_header,
        f"--print-to-pdf={out}",
        sheet.as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert done.returncode == 0 and out.exists(), done.stderr[-2000:]
    return out


def pdf_text(pdf: Path) -> str:
    """The PDF's text laid out as on the page (``pdftotext -layout``)."""
    done = subprocess.run(
        [tool("pdftotext"), "-layout", str(pdf), "-"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=True,
    )
    return done.stdout


def pdf_info(pdf: Path) -> dict[str, str]:
    """``pdfinfo`` fields (Pages, Page size...)."""
    done = subprocess.run(
        [tool("pdfinfo"), str(pdf)], capture_output=True, text=True, timeout=TIMEOUT_S, check=True
    )
    return {
        key.strip(): value.strip()
        for key, _, value in (line.partition(":") for line in done.stdout.splitlines())
    }


def printed(tmp_path: Path, paper: Paper = "a4", **request: Any) -> tuple[str, dict[str, str]]:
    # pdftotext is looked up first: without it there is no point in starting the browser.
    tool("pdftotext")
    pdf = print_pdf(plan_sheet(example_plan(**request), paper=paper), tmp_path)
    return pdf_text(pdf), pdf_info(pdf)


class TestPrintedPlan:
    """The example plan prints as a short A4 document with its key facts readable."""

    def test_key_facts_survive_printing(self, tmp_path: Path) -> None:
        text, info = printed(tmp_path)
        for expected in (
            "P-0042",
            "UNAPPROVED EXAMPLE LIBRARY",
            "40 mg",
            "2026-11-30",
            "150 mL/h",
            "Prescriber",
            "Nurse",
            "Decision support for licensed clinicians",
        ):
            assert expected in text, expected
        assert 1 <= int(info["Pages"]) <= 6
        assert "(A4)" in info["Page size"]

    def test_every_column_prints(self, tmp_path: Path) -> None:
        """The last column, each session's predicted peak, is on the page: every figure of it."""
        peaks = re.findall(r"(\d[\d,.]*)\s+ng/mL", plan_sheet(example_plan()))
        assert len(peaks) >= 6  # the table's six sessions at least
        text, _ = printed(tmp_path)
        for peak in peaks:  # the sheet keeps number and unit together (a no-break space)
            assert re.search(rf"(?<![\d.,]){re.escape(peak)}\s+ng/mL", text), peak

    def test_letter_paper(self, tmp_path: Path) -> None:
        text, info = printed(tmp_path, paper="letter")
        assert info["Page size"].startswith("612 x 792 pts")
        assert 1 <= int(info["Pages"]) <= 6
        assert "P-0042" in text

    def test_hard_plan_prints_withheld(self, tmp_path: Path) -> None:
        text, _ = printed(tmp_path, dose="3")
        assert text.count("WITHHELD:") == 12  # programme and preparation of 6 sessions
        assert "150 mL/h" not in text
        assert text.index("REFUSED") < text.index("UNAPPROVED EXAMPLE LIBRARY")
        assert "Nurse:" not in text  # no line to sign for administration
