"""The clinic's config file: strict keys, and flag > environment > config file > built-in."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ketadose import config
from ketadose.config import ENVIRONMENT, NO_CONFIG, Config, parse, resolve
from ketadose.errors import ConfigError

GOOD = b"""
limits = "/srv/clinic/limits.toml"
store = "/srv/clinic/store.sqlite3"
clinician = "RN Example"
tz = "Europe/Berlin"
paper = "letter"
pump_step = "0.1mL/h"
draw_step = "0.01mL"
"""


def test_a_whole_file() -> None:
    config = parse(GOOD, "ketadose.toml")
    assert config.limits == "/srv/clinic/limits.toml"
    assert (config.paper, config.tz, config.protocols) == ("letter", "Europe/Berlin", None)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'limts = "x"', "unknown key 'limts'"),
        (b"[store]\npath = 'x'", "store: Input should be a valid string"),
        (b'paper = "A3"', "paper"),
        (b"tz = 1", "tz"),
        (b'clinician = ""', "clinician"),
        (b"not = toml = here", "not a TOML config file"),
        (b"\xff\xfe", "not a TOML config file"),
    ],
)
def test_refused_with_exit_5(data: bytes, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as refused:
        parse(data, "ketadose.toml")
    assert refused.value.exit_code == 5
    assert "ketadose.toml" in str(refused.value)


def test_precedence() -> None:
    config = Config(store="from-config")
    env = {"KETADOSE_STORE": "from-env"}
    assert (
        resolve("store", flag="from-flag", environment=env, config=config, default="d").source
        == "flag"
    )
    assert (
        resolve("store", flag=None, environment=env, config=config, default="d").value == "from-env"
    )
    found = resolve("store", flag=None, environment={}, config=config, default="d")
    assert (found.value, found.source) == ("from-config", "config file")
    found = resolve("store", flag=None, environment={}, config=NO_CONFIG, default="d")
    assert (found.value, found.source) == ("d", "built-in")


@pytest.mark.parametrize("key", sorted(ENVIRONMENT))
@pytest.mark.parametrize("blank", ["", " ", "\t"])
def test_a_variable_set_but_blank_is_refused(key: str, blank: str) -> None:
    # A script meant to name a store, a library, a zone...: never silently the default.
    with pytest.raises(ConfigError, match="is set but empty") as error:
        resolve(
            key, flag=None, environment={ENVIRONMENT[key]: blank}, config=NO_CONFIG, default="x"
        )
    assert error.value.exit_code == 5
    assert ENVIRONMENT[key] in str(error.value)
    given = resolve(
        key, flag="f", environment={ENVIRONMENT[key]: blank}, config=NO_CONFIG, default="x"
    )
    assert given.value == "f"  # a flag still wins without reading the variable


@given(
    key=st.sampled_from(sorted(ENVIRONMENT)),
    flag=st.none() | st.text(min_size=1, max_size=5),
    env=st.none() | st.text(min_size=1, max_size=5).filter(str.strip),
    file=st.none() | st.text(min_size=1, max_size=5),
)
def test_the_first_given_wins(
    key: str, flag: str | None, env: str | None, file: str | None
) -> None:
    environment = {} if env is None else {ENVIRONMENT[key]: env}
    config = NO_CONFIG.model_copy(update={key: file})
    found = resolve(key, flag=flag, environment=environment, config=config, default="built")
    expected = next(v for v in (flag, env, file, "built") if v is not None)
    assert found.value == expected


def test_read_a_file(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('tz = "Europe/Berlin"\n', encoding="utf-8")
    assert config.read(path, named=True).tz == "Europe/Berlin"


def test_no_file_is_no_config_unless_named(tmp_path: Path) -> None:
    missing = tmp_path / "config.toml"
    assert config.read(missing, named=False) is config.NO_CONFIG
    with pytest.raises(ConfigError, match="no config file there") as error:
        config.read(missing, named=True)
    assert error.value.exit_code == 5


def test_an_unreadable_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        config.read(tmp_path, named=False)  # a directory
