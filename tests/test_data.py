"""The shipped data files: compiled twins are current and equal to their TOML's reading."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from ketadose.data.compile import SHIPPED, twin
from ketadose.libfile import code_fingerprint, read_library, read_shipped

DATA = Path(__file__).resolve().parents[1] / "ketadose" / "data"


class TestTwins:
    """Each shipped TOML has a current twin that gives exactly the library the TOML gives."""

    @pytest.mark.parametrize("name", sorted(SHIPPED))
    def test_twin_is_current(self, name: str) -> None:
        current = pickle.loads((DATA / f"{name}.pickle").read_bytes())
        expected = pickle.loads(twin(name, (DATA / name).read_bytes()))
        assert current["source_sha256"] == expected["source_sha256"], (
            "run: python -m ketadose.data.compile"
        )
        assert current["code"] == code_fingerprint(), "run: python -m ketadose.data.compile"
        assert current["library"] == expected["library"]
        assert current["ref"] == expected["ref"]

    @pytest.mark.parametrize("name", sorted(SHIPPED))
    def test_twin_and_toml_give_the_same_library(self, name: str) -> None:
        data = (DATA / name).read_bytes()
        assert read_shipped(name, SHIPPED[name]) == read_library(
            data, f"ketadose/data/{name}", SHIPPED[name]
        )

    def test_limits_read_from_the_twin_still_have_their_bounds(self) -> None:
        library, _ = read_shipped("limits.toml", SHIPPED["limits.toml"])
        rate = library.profiles["crps"].session.rate  # type: ignore[attr-defined]
        assert rate.bounds.upper_hard == 25

    def test_a_twin_for_other_bytes_is_not_used(self, tmp_path: Path) -> None:
        (tmp_path / "protocols.toml").write_bytes(
            (DATA / "protocols.toml").read_bytes() + b"\n# edited\n"
        )
        (tmp_path / "protocols.toml.pickle").write_bytes(
            (DATA / "protocols.toml.pickle").read_bytes()
        )
        _, ref = read_shipped("protocols.toml", SHIPPED["protocols.toml"], directory=tmp_path)
        assert (
            ref.sha256 != pickle.loads((DATA / "protocols.toml.pickle").read_bytes())["ref"].sha256
        )

    def test_a_twin_from_other_code_is_not_used(self, tmp_path: Path) -> None:
        body = pickle.loads((DATA / "limits.toml.pickle").read_bytes())
        body["code"] = "0" * 64
        body["ref"] = body["ref"].model_copy(update={"name": "WRONG"})
        (tmp_path / "limits.toml").write_bytes((DATA / "limits.toml").read_bytes())
        (tmp_path / "limits.toml.pickle").write_bytes(pickle.dumps(body))
        _, ref = read_shipped("limits.toml", SHIPPED["limits.toml"], directory=tmp_path)
        assert ref.name != "WRONG"

    def test_a_broken_twin_falls_back_to_toml(self, tmp_path: Path) -> None:
        (tmp_path / "limits.toml").write_bytes((DATA / "limits.toml").read_bytes())
        (tmp_path / "limits.toml.pickle").write_bytes(b"\x80\x05not a pickle")
        assert read_shipped("limits.toml", SHIPPED["limits.toml"], directory=tmp_path)[1].name
        (tmp_path / "limits.toml.pickle").unlink()
        assert read_shipped("limits.toml", SHIPPED["limits.toml"], directory=tmp_path)[1].name
