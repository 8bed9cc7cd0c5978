"""Shared test set-up: hypothesis profiles, and a record store of each test's own."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    print_blob=True,
)
settings.register_profile(
    "dev",
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture(autouse=True)
def store_path(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test writes its audit entries to a fresh store, never to the user's."""
    path = tmp_path_factory.mktemp("store") / "store.sqlite3"
    monkeypatch.setenv("KETADOSE_STORE", str(path))
    monkeypatch.delenv("KETADOSE_LIMITS", raising=False)
    # One clinic zone for every test, whatever the machine's: outputs carry its UTC offset.
    monkeypatch.setenv("KETADOSE_TZ", "Europe/Berlin")
    # Never the user's own clinic defaults: an empty config directory, no named file.
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("config")))
    for name in (
        "KETADOSE_CONFIG",
        "KETADOSE_PROTOCOLS",
        "KETADOSE_CLINICIAN",
        "KETADOSE_PAPER",
        "KETADOSE_STORE_SHARED",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("KETADOSE_PUMP_STEP", raising=False)
    monkeypatch.delenv("KETADOSE_DRAW_STEP", raising=False)
    return path
