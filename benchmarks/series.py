"""Series checks: how `plan`, `next` and `session record` grow with the length of the history.

In this process, CPU time (``time.process_time``, best of N runs, so a loaded machine costs
less), for:

1. ``plan`` of a depression series (70 kg, the plan command's defaults, its PK peaks included
   and, apart, without them as ``batch`` plans) from 6 to 600 sessions, with the 100-session
   cap and the one-year calendar search lifted in-process (``planning.MAX_SESSIONS``,
   ``planning.SEARCH_DAYS``); each run is a calendar's first plan (the date cache cleared);
2. ``next`` (``escalation.decide``) on a history of 6 to 600 sessions, at the weekly cap, so
   the earliest-date search has to move;
3. one session checked against a history of 6 to 600 sessions (``session record``'s check).

For each, the log-log slope (the exponent of the growth) is fitted from 6 to 100 and from 100
to 600. Issue 15's budget for ``plan``: <= 1.05 from 6 to 100, linear (about 1) past 100.
This measures; it does not assert.

    python benchmarks/series.py [--runs 5] [--quick]
"""

from __future__ import annotations

import argparse
import math
import platform
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from ketadose import planning
from ketadose.dosing import DoseRequest
from ketadose.escalation import decide as next_session
from ketadose.gate import session as checked_session
from ketadose.limits import load_library as load_limits
from ketadose.models import CheckContext, Patient, PreviousSession
from ketadose.protocols import load_library
from ketadose.records import PatientRecord, SessionRecord

ZONE = ZoneInfo("Europe/Berlin")
SMALL = (6, 12, 25, 50, 100)
LARGE = (100, 200, 300, 400, 600)


def best(run: Callable[[], object], runs: int) -> float:
    """The least CPU time of ``runs`` calls, in seconds."""
    least = math.inf
    for _ in range(runs):
        start = time.process_time()
        run()
        least = min(least, time.process_time() - start)
    return least


def slope(points: list[tuple[int, float]]) -> float:
    """The least-squares slope of log(time) over log(size)."""
    xs = [math.log(n) for n, _ in points]
    ys = [math.log(t) for _, t in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mx) ** 2 for x in xs
    )


def report(what: str, sizes: tuple[int, ...], cost: Callable[[int], float]) -> None:
    """Print the cost at each size and the exponents of growth."""
    measured = {n: cost(n) for n in sizes}
    cells = "  ".join(f"{n}: {t * 1000:.1f} ms" for n, t in measured.items())
    small = [(n, t) for n, t in measured.items() if n <= 100]
    large = [(n, t) for n, t in measured.items() if n >= 100]
    fits = []
    if len(small) > 1:
        fits.append(f"exponent 6-100: {slope(small):.2f}")
    if len(large) > 1:
        fits.append(f"100-600: {slope(large):.2f}")
    print(f"{what}\n  {cells}\n  {', '.join(fits)}")


def main() -> None:
    """Run the benchmark and print what it measured."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="plan only, with PK peaks")
    runs = parser.parse_args().runs
    quick = parser.parse_args().quick
    planning.MAX_SESSIONS = max(LARGE)
    planning.SEARCH_DAYS = 366 * 5
    entry = load_library().get_protocol("depression")
    limits = load_limits()
    sizes = tuple(sorted({*SMALL, *LARGE}))

    def plan_cost(peaks: bool) -> Callable[[int], float]:
        def cost(n: int) -> float:
            request = planning.PlanRequest(
                zone=ZONE,
                dose=DoseRequest(patient=Patient(weight_kg=70.0)),
                start=date(2026, 11, 30),
                sessions=n,
                predict_peaks=peaks,
            )

            def run() -> None:
                planning._dates.cache_clear()
                planning.plan(entry, request, limits)

            return best(run, runs)

        return cost

    print(f"{platform.node()} {platform.machine()} Python {platform.python_version()}")
    print(f"CPU time in-process, best of {runs}; sizes are sessions (plan) or history length")
    report("plan (PK peaks on, as `ketadose plan`)", sizes, plan_cost(True))
    if quick:
        return
    report("plan (no PK peaks, as `batch`)", sizes, plan_cost(False))

    patient = PatientRecord(id="P1", protocol="depression", baseline=30, weight_kg=70.0)
    first = datetime(2026, 11, 2, 9, 0, tzinfo=ZONE)

    def given(n: int) -> list[SessionRecord]:
        # Three a week (the weekly cap), across the daylight-saving changes.
        return [
            SessionRecord(
                patient_id="P1",
                at=first + timedelta(days=7 * (i // 3) + 2 * (i % 3)),
                protocol="depression",
                dose_mg=35.0,
                dose_mg_per_kg=0.5,
                score=20.0,
            )
            for i in range(n)
        ]

    def next_cost(n: int) -> float:
        history = given(n)
        at = history[-1].at + timedelta(hours=1)
        return best(lambda: next_session(entry, patient, history, limits, at=at), runs)

    report("next (escalation.decide), at the weekly cap", sizes, next_cost)

    def check_cost(n: int) -> float:
        history = tuple(
            PreviousSession(at=s.at, dose_mg=s.dose_mg, dose_mg_per_kg=s.dose_mg_per_kg)
            for s in given(n)
        )
        context = CheckContext(at=history[-1].at + timedelta(days=2), history=history)
        request = DoseRequest(patient=Patient(weight_kg=70.0))
        return best(lambda: checked_session(entry, request, limits, context), runs)

    report("one session checked against its history (session record)", sizes, check_cost)


if __name__ == "__main__":
    main()
