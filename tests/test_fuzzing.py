"""The atheris harness: its targets hold on a seed corpus, and a short fuzzing run finds nothing."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from ketadose.fuzzing import TARGETS, limits, protocols, quantity
from ketadose.units import Kind

DATA = Path(__file__).resolve().parents[1] / "ketadose" / "data"
SEEDS = ["80kg", "176 lb", "0.5mg/kg", "500mcg/kg", "0.35 mg/kg/h", "25mg/h", "100mL", "4h"]
HOSTILE = ["", "NaNkg", "1e308kg", "٨٠kg", "8Okg", "0,5mg/kg", "80kg;rm", "80\x00kg", "0.5ug/kg"]


class TestTargets:
    """Each target accepts what it reads and refuses the rest, on any bytes."""

    @pytest.mark.parametrize("text", SEEDS + HOSTILE)
    @pytest.mark.parametrize("kind", list(Kind), ids=lambda k: k.name)
    def test_quantity(self, text: str, kind: Kind) -> None:
        quantity(bytes([list(Kind).index(kind)]) + text.encode())

    def test_libraries(self) -> None:
        limits((DATA / "limits.toml").read_bytes())
        protocols((DATA / "protocols.toml").read_bytes())
        for data in (b"", b"\xff\xfe", b"[library", b"a = " + b"[" * 5000):
            limits(data)
            protocols(data)

    def test_every_target_is_named(self) -> None:
        assert set(TARGETS) == {"units", "limits", "protocols"}


@pytest.mark.skipif(importlib.util.find_spec("atheris") is None, reason="atheris not installed")
class TestFuzzing:
    """A short coverage-guided run of each target, from a seed corpus, finds no crash."""

    @pytest.mark.parametrize(
        ("target", "runs", "seeds"),
        [
            ("units", 20_000, [bytes([i % len(Kind)]) + s.encode() for i, s in enumerate(SEEDS)]),
            ("limits", 300, [(DATA / "limits.toml").read_bytes()]),
            ("protocols", 100, [(DATA / "protocols.toml").read_bytes()]),
        ],
    )
    def test_run(self, tmp_path: Path, target: str, runs: int, seeds: list[bytes]) -> None:
        corpus = tmp_path / "corpus"
        corpus.mkdir()
        for number, seed in enumerate(seeds):
            (corpus / f"seed-{number}").write_bytes(seed)
        done = subprocess.run(
            [
                sys.executable, "-m", "ketadose.fuzzing", target, f"-runs={runs}", "-seed=1",
                f"-artifact_prefix={tmp_path}/", str(corpus),
            ],
            capture_output=True, text=True, timeout=600, check=False, cwd=tmp_path,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        assert f"Done {runs} runs" in done.stderr
        assert not list(tmp_path.glob("crash-*"))
