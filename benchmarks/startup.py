"""Start-up benchmark: ketadose --help and dose --json against a bare Typer app, side by side.

Runs each command N times, interleaved (so machine load affects all three alike), and prints
the median wall time of each and the ratios to the bare app. Budgets (issue 14): --help within
1.2x, dose --json within 1.3x. This measures; it does not assert.

    python benchmarks/startup.py [--runs 30]
"""

from __future__ import annotations

import argparse
import compileall
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent

COMMANDS = {
    "bare typer app": [sys.executable, str(HERE / "bare_typer.py"), "--weight", "80kg"],
    "ketadose --help": [str(BIN / "ketadose"), "--help"],
    "ketadose dose --json": [
        str(BIN / "ketadose"),
        "dose",
        "--protocol",
        "depression",
        "--weight",
        "80kg",
        "--json",
    ],
}
BUDGETS = {"ketadose --help": 1.2, "ketadose dose --json": 1.3}


def _time(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
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
