"""Batch throughput and memory: ketadose batch against the issue's budgets, and the naive path.

Writes seeded patient files (id, weight, height, sex; adults 45-130 kg), then:

1. runs ``ketadose batch FILE -p depression --format jsonl`` on 10,000 rows (each a checked
   6-session plan) a few times and reports rows per second, end to end (start-up included)
   and after start-up (the rate once running, start-up measured on a one-row file);
2. reports the peak memory (maximum resident set of the command and its workers, from
   ``wait4``) for 10,000 and 100,000 rows: streaming keeps them close;
3. times the same arithmetic and limit comparisons done the naive way, with a pint Quantity
   for every value and every operation, per row, in this process, against ketadose's core on
   the same rows in this process (plan and JSON, one process each: the ratio is per core);
4. times a batch worker in this process (CPU time, ``time.process_time``: a loaded machine
   slows it less than wall time) on the 10,000 rows of (1), JSON Lines and CSV, reusing what
   rows share (the default) and planning every row from scratch (``work(..., reuse=0)``):
   rows per second per core.

This measures; it does not assert. Budgets (issue 15): >= 10,000 rows/s end to end for
10,000 rows on 2 cores; >= 6,000 rows/s per core; peak memory for 100,000 rows within 1.1x
of 10,000.

    python benchmarks/batch.py [--runs 3] [--rows 10000] [--big 100000]
"""

from __future__ import annotations

import argparse
import compileall
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ZONE = ZoneInfo("Europe/Berlin")

HERE = Path(__file__).resolve().parent
KETADOSE = Path(sys.executable).parent / "ketadose"
ARGS = ("-p", "depression", "--start", "2026-11-30", "--format", "jsonl")


def patients(path: Path, count: int, seed: int = 1) -> Path:
    """A seeded batch file of plausible adults."""
    rng = random.Random(seed)
    with path.open("w") as out:
        out.write("id,weight,height,sex\n")
        for number in range(count):
            weight = f"{rng.uniform(45, 130):.1f}kg"
            sex = rng.choice(("male", "female"))
            out.write(f"P{number:06d},{weight},{rng.randint(150, 200)}cm,{sex}\n")
    return path


def run(path: Path, *extra: str) -> tuple[float, int]:
    """Wall seconds and peak resident kB of one ``ketadose batch`` to /dev/null."""
    start = time.perf_counter()
    with subprocess.Popen(
        [str(KETADOSE), "batch", str(path), *ARGS, *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    ) as process:
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    if process.returncode not in (0, 3):  # 3: some plausible adults have a soft BMI finding
        raise SystemExit(f"ketadose batch exited {process.returncode}")
    return wall, usage.ru_maxrss


def naive_row(ureg: Any, weight_kg: float, height_cm: float) -> list[Any]:
    """One 6-session depression plan's numbers and checks, with pint for every operation."""
    q = ureg.Quantity
    weight = q(weight_kg, "kg")
    height = q(height_cm, "cm")
    bmi = (weight / height**2).to("kg/m**2")
    limits = {
        "dose_per_kg": (q(0.1, "mg/kg"), q(1.0, "mg/kg"), q(1.5, "mg/kg")),
        "dose": (q(200, "mg"),),
        "rate": (q(1.5, "mg/kg/h"),),
        "duration": (q(20, "min"), q(100, "min")),
        "weight": (q(40, "kg"), q(200, "kg")),
        "bmi": (q(35, "kg/m**2"), q(45, "kg/m**2")),
        "interval": (q(23, "h"),),
        "dose_7d": (q(4.5, "mg/kg"),),
    }
    out: list[Any] = []
    checks = [weight > limits["weight"][0], weight < limits["weight"][1]]
    checks += [bmi < limit for limit in limits["bmi"]]
    per_kg = q(0.5, "mg/kg")
    dose = (per_kg * weight).to("mg")
    duration = q(40, "min")
    rate = (dose / duration).to("mg/h")
    concentration = (dose / q(100, "mL")).to("mg/mL")
    pump = (rate / concentration).to("mL/h")
    draw = (dose / q(10, "mg/mL")).to("mL")
    week = q(0, "mg")
    last = q(-1000, "h")
    for session in range(6):
        at = q(session * 48, "h")
        week = (week + dose).to("mg")
        checks += [per_kg > limit for limit in limits["dose_per_kg"]]
        checks += [dose > limits["dose"][0], (rate / weight).to("mg/kg/h") > limits["rate"][0]]
        checks += [duration < limits["duration"][0], duration > limits["duration"][1]]
        checks += [(at - last).to("h") < limits["interval"][0]]
        checks += [(week / weight).to("mg/kg") > limits["dose_7d"][0]]
        last = at
        out.append((dose.m, pump.m, draw.m, week.m))
    out.append(checks)
    return out


def per_core(rows: int) -> tuple[float, float]:
    """Rows per second on one core: ketadose's plan + JSON, and the naive pint path."""
    import pint

    from ketadose.batch import BatchRecord
    from ketadose.dosing import DoseRequest
    from ketadose.limits import load_library as load_limits
    from ketadose.models import Patient
    from ketadose.planning import PlanRequest, plan
    from ketadose.protocols import load_library
    from ketadose.render.json import document

    rng = random.Random(2)
    people = [(rng.uniform(45, 130), float(rng.randint(150, 200))) for _ in range(rows)]
    entry = load_library(None).get_protocol("depression")
    limits = load_limits(None)
    start = time.perf_counter()
    for weight, height in people:
        request = PlanRequest(
            zone=ZONE,
            dose=DoseRequest(patient=Patient(weight_kg=weight, height_cm=height)),
            start=date(2026, 11, 30),
        )
        result = plan(entry, request, limits)
        document(BatchRecord(line=1, id="x", status=result.status, error=None, plan=result))
    ours = rows / (time.perf_counter() - start)
    ureg: Any = pint.UnitRegistry()
    start = time.perf_counter()
    for weight, height in people:
        naive_row(ureg, weight, height)
    naive = rows / (time.perf_counter() - start)
    return ours, naive


def worker(path: Path) -> dict[tuple[str, int], float]:
    """Rows per CPU second of one batch worker, by format and reuse (0: every row planned)."""
    from ketadose.batch import rows, work
    from ketadose.dosing import DoseRequest
    from ketadose.limits import load_library as load_limits
    from ketadose.models import Patient
    from ketadose.parallel import CHUNK
    from ketadose.planning import PlanRequest
    from ketadose.protocols import load_library
    from ketadose.render.batch import encoding
    from ketadose.reuse import REUSE

    library, limits = load_library(None), load_limits(None)
    template = PlanRequest(zone=ZONE, dose=DoseRequest(patient=Patient()), start=date(2026, 11, 30))
    items = list(rows(path.read_text().splitlines(True), path.name))
    rates = {}
    for fmt in ("jsonl", "csv"):
        _, encode = encoding(fmt)
        for reuse in (REUSE, 0):
            chunk_work = work(template, "depression", library, limits, encode, reuse=reuse)
            chunk_work(items[:20])  # warm: first-use imports and the pydantic schemas
            chunk_work = work(template, "depression", library, limits, encode, reuse=reuse)
            start = time.process_time()
            for at in range(0, len(items), CHUNK):  # as ordered_write gives them
                chunk_work(items[at : at + CHUNK])
            rates[fmt, reuse] = len(items) / (time.process_time() - start)
    return rates


def main() -> None:
    """Run the benchmark and print what it measured."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--big", type=int, default=100_000)
    options = parser.parse_args()
    compileall.compile_dir(HERE.parent / "ketadose", quiet=1)  # as installed: bytecode cached
    print(f"{platform.node()} {platform.machine()} {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}")  # fmt: skip
    with tempfile.TemporaryDirectory() as directory:
        folder = Path(directory)
        one = patients(folder / "one.csv", 1)
        small = patients(folder / "small.csv", options.rows)
        startup = statistics.median(run(one)[0] for _ in range(options.runs))
        walls, peaks = zip(*(run(small) for _ in range(options.runs)), strict=True)
        wall = statistics.median(walls)
        print(f"start-up (one row)          {startup * 1000:7.0f} ms")
        print(
            f"{options.rows:,} rows, jsonl     {wall:7.2f} s   {options.rows / wall:7.0f} rows/s "
            f"end to end, {options.rows / (wall - startup):7.0f} rows/s after start-up "
            f"(budget >= 10,000)"
        )
        single = statistics.median(run(small, "--jobs", "1")[0] for _ in range(options.runs))
        print(f"  same, --jobs 1           {single:7.2f} s   {options.rows / single:7.0f} rows/s")
        big = patients(folder / "big.csv", options.big)
        big_wall, big_peak = run(big)
        peak = max(peaks)
        print(
            f"peak memory {options.rows:,} rows {peak / 1024:6.1f} MB; {options.big:,} rows "
            f"{big_peak / 1024:6.1f} MB ({big_peak / peak:4.2f}x, budget 1.1x); "
            f"{options.big:,} rows took {big_wall:.1f} s ({options.big / big_wall:.0f} rows/s)"
        )
        for (fmt, reuse), rate in worker(small).items():
            how = f"reusing up to {reuse} records" if reuse else "every row planned"
            print(
                f"one worker, {fmt:5} {how:26} {rate:7.0f} rows/s per core "
                f"({1e6 / rate:4.0f} us a row, CPU time; budget >= 6,000)"
            )
    ours, naive = per_core(2000)
    print(
        f"one core, plan + JSON: ketadose {ours:6.0f} rows/s; naive pint arithmetic alone "
        f"{naive:6.0f} rows/s ({ours / naive:.1f}x)"
    )


if __name__ == "__main__":
    main()
