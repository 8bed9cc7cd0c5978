"""Simulation speed and memory: the CRPS series (10 sessions, 4 h a day) at one-minute steps.

Two cases, in-process:

- the series to 4 h after its last session (13,441 points): ``ketadose.simulation.simulate``,
  best of N runs (budget: well under 100 ms);
- the series to 100 days (144,001 points), as ``ketadose simulate --plan --until 100d --json``
  computes it: ``simulate_session`` (the plan, its gate and the curve) and the JSON document.
  CPU time (``time.process_time``, best of N), the tracemalloc peak of one run, and the growth
  of the process's peak RSS over that run (budget: under 300 ms and under 60 MB).

Then ``ketadose simulate --plan --json`` end to end. This measures; it does not assert.

    python benchmarks/simulate.py [--runs 20]
"""

from __future__ import annotations

import argparse
import gc
import platform
import resource
import subprocess
import sys
import time
import tracemalloc
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

from ketadose.dosing import DoseRequest
from ketadose.limits import load_library as load_limits
from ketadose.models import Patient
from ketadose.planning import PlanRequest, plan
from ketadose.protocols import load_library
from ketadose.render.json import document
from ketadose.simulation import Given, simulate, simulate_session

ZONE = ZoneInfo("Europe/Berlin")
START = date(2026, 11, 30)
HUNDRED_DAYS_MIN = 100 * 1440.0

KETADOSE = Path(sys.executable).parent / "ketadose"


def _best(runs: int, work: object) -> float:
    """The least CPU time (s) of ``runs`` calls of ``work``."""
    assert callable(work)
    best = float("inf")
    for _ in range(runs):
        start = time.process_time()
        work()
        best = min(best, time.process_time() - start)
    return best


def main() -> None:
    """Run the benchmark and print what it measured."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    runs = parser.parse_args().runs
    library, limits = load_library(), load_limits()
    entry = library.get_protocol("crps")
    request = DoseRequest(patient=Patient(weight_kg=70.0))
    planned = plan(entry, PlanRequest(zone=ZONE, dose=request, start=START), limits)
    zero = planned.sessions[0].timeline.infusion_start
    given = [
        Given((s.timeline.infusion_start - zero).total_seconds() / 60, s.phases)
        for s in planned.sessions
    ]
    print(f"{platform.node()} {platform.machine()} Python {platform.python_version()}")

    result = simulate("domino", planned.protocol, 70.0, given, step_min=1.0)
    best = _best(runs, lambda: simulate("domino", planned.protocol, 70.0, given, step_min=1.0))
    print(
        f"{len(given)} sessions x {given[0].phases[0].duration_min:g} min, "
        f"{len(result.series):,} one-minute points: {best * 1000:.1f} ms CPU (best of {runs}; "
        "budget: well under 100 ms)"
    )

    def hundred_days() -> object:
        return simulate_session(
            entry,
            request,
            limits,
            model="clements250",
            series=True,
            start=START,
            zone=ZONE,
            step_min=1.0,
            until_min=HUNDRED_DAYS_MIN,
        ).result

    def with_json() -> str:
        simulated = hundred_days()
        assert isinstance(simulated, type(result))
        return document(simulated)

    gc.collect()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    text = with_json()  # the first run, on a process that has not yet held a 100-day curve
    rss_delta = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    del text
    gc.collect()
    tracemalloc.start()
    text = with_json()
    peak = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    count = len(hundred_days().series)  # type: ignore[attr-defined]
    few = max(1, runs // 4)
    built, written = _best(few, hundred_days), _best(few, with_json)
    print(
        f"100 days, {count:,} one-minute points (simulate --plan --until 100d --json): "
        f"built {built * 1000:.0f} ms, with its {len(text) / 1e6:.1f} MB JSON "
        f"{written * 1000:.0f} ms CPU (best of {few}; budget: under 300 ms); "
        f"tracemalloc peak {peak:.1f} MB, peak RSS growth {rss_delta:.1f} MB "
        "(budget: under 60 MB)"
    )

    args = ["simulate", "-p", "crps", "--weight", "70kg", "--plan", "--start", "2026-11-30"]
    start = time.perf_counter()
    subprocess.run([str(KETADOSE), *args, "--json"], capture_output=True, check=True)
    print(f"ketadose simulate --plan --json, end to end: {time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    main()
