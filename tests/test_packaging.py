"""Packaging: one version, typed, licensed, and a test extra that installs everywhere."""

from __future__ import annotations

import tomllib
from importlib.metadata import metadata, version
from pathlib import Path

import ketadose

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def test_one_source_for_the_version() -> None:
    assert "version" not in PROJECT and PROJECT["dynamic"] == ["version"]
    assert version("ketadose") == ketadose.__version__


def test_typed_and_licensed() -> None:
    assert (ROOT / "ketadose" / "py.typed").is_file()
    assert (ROOT / "LICENSE").read_text(encoding="utf-8").startswith("MIT License")
    assert PROJECT["license"] == "MIT"
    assert "Typing :: Typed" in PROJECT["classifiers"]
    assert {"Source", "Issues", "Documentation"} <= set(PROJECT["urls"])


def test_the_fuzzer_is_an_extra_of_its_own() -> None:
    # atheris has no wheel on some platforms: the test extra must install without it.
    extras = PROJECT["optional-dependencies"]
    assert not any(req.startswith("atheris") for req in extras["test"])
    assert [req.split(">")[0] for req in extras["fuzz"]] == ["atheris"]


def test_installed_metadata_names_the_console_script() -> None:
    assert metadata("ketadose")["Name"] == "ketadose"
    assert PROJECT["scripts"] == {"ketadose": "ketadose.cli:main"}
