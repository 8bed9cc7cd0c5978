"""Property tests across the CLI and the limit library (hypothesis; bounded by the ci profile)."""

from __future__ import annotations

import json
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from ketadose.cli import app
from ketadose.limits import Bounds, load_file, load_library
from ketadose.protocols import load_library as load_protocols
from ketadose.strategies import LIMIT_UNITS, LimitTables, limit_tables, limits_toml

runner = CliRunner()
SHIPPED_LIMITS = load_library()
PROTOCOL_IDS = sorted(load_protocols())


def beyond_hard(value: float | None, bounds: Bounds | None) -> bool:
    """An independent reading of 'past a hard limit' (1e-9 relative tolerance)."""
    if value is None or bounds is None:
        return False
    upper, lower = bounds.upper_hard, bounds.lower_hard
    return (upper is not None and value > upper * (1 + 1e-9)) or (
        lower is not None and value < lower * (1 - 1e-9)
    )


def hard(protocol_id: str, section: str, parameter: str) -> Bounds | None:
    limit = SHIPPED_LIMITS.limit(protocol_id, section, parameter)
    return None if limit is None else limit.bounds


decimals = st.decimals(min_value="0.01", max_value="600", places=2).map(lambda d: f"{d:f}")

dose_args = st.tuples(
    st.sampled_from(PROTOCOL_IDS),
    st.decimals(min_value="20", max_value="400", places=1).map(lambda d: f"{d:f}kg"),
    st.one_of(
        st.none(),
        st.decimals(min_value="0.01", max_value="5", places=2).map(lambda d: f"{d:f}mg/kg"),
        st.decimals(min_value="1", max_value="500", places=0).map(lambda d: f"{d:f}mg"),
    ),
    st.one_of(
        st.none(), st.decimals(min_value="1", max_value="600", places=0).map(lambda d: f"{d:f}min")
    ),
    st.one_of(st.none(), st.sampled_from(["10mL", "50mL", "100mL", "250mL", "1000mL"])),
    st.sampled_from(["10mg/mL", "50mg/mL", "100mg/mL"]),
)


class TestNothingPastAHardLimit:
    """No output that exits 0 or 3 carries a value beyond a hard limit of the library in use."""

    @settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
    @given(dose_args)
    def test_dose_outputs(
        self, args: tuple[str, str, str | None, str | None, str | None, str]
    ) -> None:
        protocol_id, weight, dose, duration, bag, vial = args
        argv = ["dose", "-p", protocol_id, "--weight", weight, "--vial", vial, "--json"]
        for option, value in (("--dose", dose), ("--duration", duration), ("--bag", bag)):
            if value is not None:
                argv += [option, value]
        result = runner.invoke(app, argv, env={"KETADOSE_LIMITS": None})
        assert result.exit_code in (0, 2, 3, 4), result.stderr
        assert "Traceback" not in result.stderr
        if result.exit_code == 2:
            assert result.stdout == ""
            return
        data = json.loads(result.stdout)
        if result.exit_code == 4:
            assert data["status"] == "hard"
            assert data["preparation"] is None
            assert all(p["pump_rate_ml_per_h"] is None for p in data["phases"])
            return
        checks: list[tuple[float | None, str]] = [
            (data["total_dose_mg_per_kg"], "total_dose_per_kg"),
            (data["total_dose_mg"], "total_dose"),
        ]
        for phase in data["phases"]:
            checks.append((phase["pump_rate_ml_per_h"], "pump_rate"))
            if phase["kind"] == "bolus":
                checks += [
                    (phase["dose_mg_per_kg"], "bolus_dose_per_kg"),
                    (phase["dose_mg"], "bolus_dose"),
                ]
            elif phase["kind"] in ("timed", "rate"):
                checks += [
                    (phase["rate_mg_per_kg_per_h"], "rate_per_kg"),
                    (phase["rate_mg_per_h"], "rate"),
                    (phase["duration_min"], "infusion_duration"),
                ]
        if data["preparation"] is not None:
            checks.append((data["preparation"]["final_mg_per_ml"], "final_concentration"))
        for number, parameter in checks:
            assert not beyond_hard(number, hard(protocol_id, "session", parameter)), (
                parameter,
                number,
            )
        assert not beyond_hard(data["patient"]["weight_kg"], hard(protocol_id, "patient", "weight"))


# The strategies write intervals in hours; the library keeps minutes.
SCALE = {"interval": 60}


class TestLibraryRoundTrip:
    """A random valid library written as TOML reads back with exactly its values."""

    @given(limit_tables())
    def test_round_trip(self, tables: LimitTables) -> None:
        library = load_file(limits_toml(tables).encode(), "random.toml")
        for (profile, section, parameter), sides in tables.items():
            limit = getattr(getattr(library.content.profiles[profile], section), parameter)
            for side, value in sides.items():
                assert getattr(limit.bounds, side) == float(
                    Decimal(value) * SCALE.get(parameter, 1)
                )


MUTATIONS = st.sampled_from(["swap", "unit", "key", "bare", "evidence", "truncate", "byte"])


class TestInvalidLibraries:
    """Broken libraries exit 5 with one line naming the file; never a traceback or exit 1."""

    @settings(max_examples=100, deadline=None)
    @given(limit_tables(), MUTATIONS, st.integers(min_value=0, max_value=10_000))
    def test_rejected_cleanly(
        self,
        tables: LimitTables,
        mutation: str,
        where: int,
    ) -> None:
        text = limits_toml(tables)
        broken = mutate(text, tables, mutation, where)
        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory) / "clinic-limits.toml"
            path.write_bytes(broken)
            result = runner.invoke(app, ["limits", "validate", str(path)])
        assert result.exit_code in (0, 5), (result.exit_code, result.stderr)
        if mutation in ("swap", "unit", "key", "bare", "evidence") and broken != text.encode():
            assert result.exit_code == 5, (mutation, broken)
        if result.exit_code == 5:
            assert result.stdout == ""
            lines = result.stderr.strip().splitlines()
            assert len(lines) == 1
            assert lines[0].startswith(f"ketadose: error: {path}: ")


def mutate(text: str, tables: dict[tuple[str, str, str], Any], mutation: str, where: int) -> bytes:
    keys = [
        key for key, sides in tables.items() if len(sides) >= 2 and len(set(sides.values())) >= 2
    ]
    if mutation == "swap" and keys:
        profile, section, parameter = keys[where % len(keys)]
        sides = tables[(profile, section, parameter)]
        low, high = min(sides.values()), max(sides.values())
        header = f"[profiles.{profile}.{section}.{parameter}]"
        block_start = text.index(header)
        block_end = text.index("source", block_start)
        block = text[block_start:block_end]
        unit = LIMIT_UNITS[parameter]

        def fmt(value: Any) -> str:
            return f"{value}" if not unit else f'"{value:f} {unit}"'

        block = (
            block.replace(f"= {fmt(low)}\n", "= @LOW@\n")
            .replace(f"= {fmt(high)}\n", f"= {fmt(low)}\n")
            .replace("= @LOW@\n", f"= {fmt(high)}\n")
        )
        return (text[:block_start] + block + text[block_end:]).encode()
    if mutation == "unit":
        return text.replace(' mg/kg"', ' mg/h"', 1).replace(' mmHg"', ' bpm"', 1).encode()
    if mutation == "key":
        return text.replace('source = "generated"', 'sauce = "generated"', 1).encode()
    if mutation == "bare":
        return text.replace(' mg"', '"', 1).replace(' mL/h"', '"', 1).encode()
    if mutation == "evidence":
        return text.replace('"SITE-POLICY"', '"NOT CONFIRMED"', 1).encode()
    if mutation == "truncate":
        return text.encode()[: where % max(len(text), 1)]
    data = bytearray(text.encode())
    data[where % len(data)] ^= 0xFF
    return bytes(data)
