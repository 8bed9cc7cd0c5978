"""Simulation speed: a 10-session, 4-hour-a-day series (CRPS) at one-minute resolution.

Times ``ketadose.simulation.simulate`` in-process (best of N runs; budget: well under 100 ms)
and ``ketadose simulate --plan`` end to end. This measures; it does not assert.

    python benchmarks/simulate.py [--runs 20]
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

from ketadose.dosing import DoseRequest
from ketadose.limits import load_library as load_limits
from ketadose.models import Patient
from ketadose.planning import PlanRequest, plan
from ketadose.protocols import load_library
from ketadose.simulation import Given, simulate

ZONE = ZoneInfo("Europe/Berlin")

KETADOSE = Path(sys.executable).parent / "ketadose"


def main() -> None:
    """Run the benchmark and print what it measured."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    runs = parser.parse_args().runs
    entry = load_library().get_protocol("crps")
    planned = plan(
        entry,
        PlanRequest(
            zone=ZONE, dose=DoseRequest(patient=Patient(weight_kg=70.0)), start=date(2026, 11, 30)
        ),
        load_limits(),
    )
    zero = planned.sessions[0].timeline.infusion_start
    given = [
        Given((s.timeline.infusion_start - zero).total_seconds() / 60, s.phases)
        for s in planned.sessions
    ]
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        result = simulate("domino", planned.protocol, 70.0, given, step_min=1.0)
        best = min(best, time.perf_counter() - start)
    print(f"{platform.node()} {platform.machine()} Python {platform.python_version()}")
    print(
        f"{len(given)} sessions x {given[0].phases[0].duration_min:g} min, "
        f"{len(result.series):,} one-minute points: {best * 1000:.1f} ms (best of {runs}; "
        "budget: well under 100 ms)"
    )
    args = ["simulate", "-p", "crps", "--weight", "70kg", "--plan", "--start", "2026-11-30"]
    start = time.perf_counter()
    subprocess.run([str(KETADOSE), *args, "--json"], capture_output=True, check=True)
    print(f"ketadose simulate --plan --json, end to end: {time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    main()
