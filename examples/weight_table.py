"""Print a CSV dose table for a protocol across body weights, using ketadose as a library.

    python examples/weight_table.py depression 50 120 10

Every row is computed by the same core as ``ketadose dose``; nothing is re-derived here.
"""

from __future__ import annotations

import csv
import sys

from ketadose.dosing import DoseRequest, session_dose
from ketadose.models import Patient
from ketadose.protocols import load_library


def main(argv: list[str]) -> None:
    """Write the table for ``protocol first last step`` (kg) to stdout."""
    protocol_id, first, last, step = argv[0], int(argv[1]), int(argv[2]), int(argv[3])
    entry = load_library().get_protocol(protocol_id)
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(["weight_kg", "total_dose_mg", "draw_ml", "pump_rate_ml_per_h"])
    for kg in range(first, last + 1, step):
        result = session_dose(entry, DoseRequest(patient=Patient(weight_kg=kg)))
        prep = result.preparation
        pump = result.phases[-1].pump_rate_ml_per_h_rounded
        writer.writerow(
            [kg, f"{result.total_dose_mg:g}", prep and f"{prep.draw_ml_rounded:g}", pump]
        )


if __name__ == "__main__":
    main(sys.argv[1:])
