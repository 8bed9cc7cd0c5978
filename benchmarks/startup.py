"""Start-up benchmark: ketadose's commands against a bare Typer app, side by side.

Runs each command N times, interleaved (so machine load affects all alike), and prints the
median wall time of each and the ratios to the bare app. Budgets (issue 15): --help within
0.6x, dose --json within 1.3x, the dose, plan and check tables within 1.4x. This measures; it
does not assert.

    python benchmarks/startup.py [--runs 30]
"""

from __future__ import annotations

import argparse
import compileall
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent

KETADOSE = str(BIN / "ketadose")
PATIENT = ["--protocol", "depression", "--weight", "80kg"]
COMMANDS = {
    "bare typer app": [sys.executable, str(HERE / "bare_typer.py"), "--weight", "80kg"],
    "ketadose --help": [KETADOSE, "--help"],
    "ketadose dose --json": [KETADOSE, "dose", *PATIENT, "--json"],
    "ketadose dose": [KETADOSE, "dose", *PATIENT],
    "ketadose plan": [KETADOSE, "plan", *PATIENT, "--start", "2026-11-30"],
    "ketadose check": [KETADOSE, "check", *PATIENT],
}
BUDGETS = {
    "ketadose --help": 0.6,
    "ketadose dose --json": 1.3,
    "ketadose dose": 1.4,
    "ketadose plan": 1.4,
    "ketadose check": 1.4,
}


# The tables laid out at a fixed width and in a fixed zone, whatever the terminal.
ENV = {**os.environ, "COLUMNS": "100", "KETADOSE_TZ": "Europe/Berlin"}


def _time(command: list[str]) -> float:
    start = time.perf_counter()
    # check exits 1 on a soft finding (the example library is unapproved): that is its answer
    subprocess.run(command, check=False, stdout=subprocess.DEVNULL, env=ENV)
    return time.perf_counter() - start


def main() -> None:
    """Run the benchmark and print a table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=30)
    runs = parser.parse_args().runs
    samples: dict[str, list[float]] = {name: [] for name in COMMANDS}
    # Measure ketadose as installed: with its bytecode compiled (PYTHONDONTWRITEBYTECODE, set
    # on some machines, would otherwise make every run compile every module again).
    compileall.compile_dir(HERE.parent / "ketadose", quiet=1)
    compileall.compile_file(HERE / "bare_typer.py", quiet=1)
    for command in COMMANDS.values():  # warm the file cache
        _time(command)
    for _ in range(runs):
        for name, command in COMMANDS.items():
            samples[name].append(_time(command))
    base = statistics.median(samples["bare typer app"])
    print(f"{platform.node()} {platform.machine()} Python {platform.python_version()}, {runs} runs")
    for name, times in samples.items():
        median = statistics.median(times)
        ratio = median / base
        budget = BUDGETS.get(name)
        verdict = (
            "" if budget is None else f"  budget {budget}x: {'ok' if ratio <= budget else 'OVER'}"
        )
        print(f"{name:24s} median {median * 1000:7.1f} ms  {ratio:5.2f}x{verdict}")


if __name__ == "__main__":
    main()
