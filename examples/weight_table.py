"""Print a CSV dose table for a protocol across body weights, using ketadose as a library.

    python examples/weight_table.py depression 50 120 10

Every row goes through the same checked entry point as ``ketadose dose`` (the safety gate,
against the shipped example limit library): its status says whether the dose may start, and
a dose past a hard limit has no draw or pump rate, as on the command line. Nothing is
re-derived here.
"""

from __future__ import annotations

import csv
import sys

from ketadose.api import checked_dose


def main(argv: list[str]) -> None:
    """Write the table for ``protocol first last step`` (kg) to stdout."""
    protocol_id, first, last, step = argv[0], int(argv[1]), int(argv[2]), int(argv[3])
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(
        ["weight_kg", "total_dose_mg", "draw_ml", "pump_rate_ml_per_h", "status", "ready"]
    )
    for kg in range(first, last + 1, step):
        result = checked_dose(protocol_id, weight_kg=kg)
        prep = result.preparation
        pump = result.phases[-1].pump_rate_ml_per_h_rounded
        writer.writerow(
            [
                kg,
                f"{result.total_dose_mg:g}",
                prep and f"{prep.draw_ml_rounded:g}",
                pump,
                result.status,
                str(result.ready).lower(),
            ]
        )


if __name__ == "__main__":
    main(sys.argv[1:])
