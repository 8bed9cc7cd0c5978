"""Property tests of the limit library files (hypothesis; bounded by the ci profile)."""

from __future__ import annotations

import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from ketadose.cli import app
from ketadose.limits import load_file, load_library
from ketadose.protocols import load_library as load_protocols
from ketadose.strategies import LIMIT_UNITS, LimitTables, limit_tables, limits_toml

runner = CliRunner()
SHIPPED_LIMITS = load_library()
PROTOCOL_IDS = sorted(load_protocols())


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
