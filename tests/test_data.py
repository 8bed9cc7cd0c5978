"""The shipped data files: JSON twins are current and read exactly as their TOML."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import BaseModel

from ketadose.data.compile import SHIPPED, twin
from ketadose.libfile import read_library, read_shipped
from ketadose.limits import LimitFile
from ketadose.protocols import ProtocolFile

DATA = Path(__file__).resolve().parents[1] / "ketadose" / "data"
MODELS: dict[str, type[BaseModel]] = {"protocols.toml": ProtocolFile, "limits.toml": LimitFile}


class TestTwins:
    """Each shipped TOML has a current JSON twin that validates to the same library."""

    @pytest.mark.parametrize("name", SHIPPED)
    def test_twin_is_current(self, name: str) -> None:
        current = (DATA / f"{name}.json").read_text(encoding="utf-8")
        assert current == twin((DATA / name).read_bytes()), "run: python -m ketadose.data.compile"

    @pytest.mark.parametrize("name", SHIPPED)
    def test_twin_and_toml_give_the_same_library(self, name: str) -> None:
        data = (DATA / name).read_bytes()
        from_toml = read_library(data, f"ketadose/data/{name}", MODELS[name])
        assert read_shipped(name, MODELS[name]) == from_toml

    def test_a_twin_that_does_not_match_is_not_used(self, tmp_path: Path) -> None:
        (tmp_path / "protocols.toml").write_bytes((DATA / "protocols.toml").read_bytes())
        stale = {"source_sha256": "0" * 64, "document": {"library": {"name": "WRONG"}}}
        (tmp_path / "protocols.toml.json").write_text(json.dumps(stale))
        parsed, ref = read_shipped("protocols.toml", ProtocolFile, directory=tmp_path)
        assert ref.name != "WRONG"
        assert len(parsed.protocol) >= 16

    def test_a_missing_or_broken_twin_falls_back_to_toml(self, tmp_path: Path) -> None:
        (tmp_path / "limits.toml").write_bytes((DATA / "limits.toml").read_bytes())
        assert read_shipped("limits.toml", LimitFile, directory=tmp_path)[1].name
        (tmp_path / "limits.toml.json").write_text("{not json")
        assert read_shipped("limits.toml", LimitFile, directory=tmp_path)[1].name
