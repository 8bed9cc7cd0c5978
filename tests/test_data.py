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


def _protocol_blocks(text: str) -> dict[str, str]:
    """Each protocol's block of protocols.toml, by id (the header is ``""``)."""
    blocks: dict[str, str] = {}
    head, *rest = text.split("[[protocol]]\n")
    blocks[""] = head
    for block in rest:
        blocks[block.split('"', 2)[1]] = block
    return blocks


#: What a shipped source, note or reference must never cite.
NOT_CITED = ("clinical.md", "reference/", "droracle")


class TestCitations:
    """Shipped data cites primary sources, never the project's reference file or an AI summary."""

    @pytest.mark.parametrize("word", NOT_CITED)
    def test_limit_library(self, word: str) -> None:
        assert word not in (DATA / "limits.toml").read_text(encoding="utf-8").lower()

    @pytest.mark.parametrize("word", NOT_CITED)
    @pytest.mark.parametrize(
        "protocol_id", list(_protocol_blocks((DATA / "protocols.toml").read_text(encoding="utf-8")))
    )
    def test_protocol_library(self, word: str, protocol_id: str) -> None:
        block = _protocol_blocks((DATA / "protocols.toml").read_text(encoding="utf-8"))
        assert word not in block[protocol_id].lower()

    def test_depression_response_and_trigger_cite_primary_sources(self) -> None:
        from ketadose.protocols import load_library

        depression = load_library().get_protocol("depression").protocol
        assert depression.response is not None
        assert depression.response.threshold_pct == 50
        assert "Phillips" in depression.response.source
        assert depression.response.evidence == "HIGH"
        (step,) = depression.escalation
        assert "Cusin" in step.source and "SITE-POLICY" in step.source
        assert step.evidence == "SITE-POLICY"


#: Protocols whose bag or syringe volume is their own source's: the rest borrow one.
OWN_VOLUME = {"crps": "HIGH", "bipolar-depression": "MED"}


class TestPreparationEvidence:
    """A bag or syringe volume the protocol's source does not give is SITE-POLICY."""

    def test_each_preparation(self) -> None:
        from ketadose.protocols import load_library

        tags = {
            entry.protocol.id: entry.protocol.preparation
            for entry in (load_library().get_protocol(i) for i in load_library())
            if entry.protocol.preparation is not None and entry.protocol.id != "migraine"
        }
        assert len(tags) == 13
        for protocol_id, preparation in tags.items():
            if protocol_id in OWN_VOLUME:
                assert preparation.evidence == OWN_VOLUME[protocol_id], protocol_id
            else:
                assert preparation.evidence == "SITE-POLICY", protocol_id
                assert "Borrowed" in preparation.source, protocol_id
