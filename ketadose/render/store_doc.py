"""The documents of ``store check`` and ``audit verify``: what a store's own checks found.

Plain models of plain values: the command line fills them from the store's state (render never
reads the store), and their schemas are ``ketadose schema store`` and ``ketadose schema chain``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ChainState(BaseModel):
    """One hash-chained table as verified."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    table: str = Field(description="audit or sessions")
    rows: int
    head_id: int | None = Field(description="The last row's id (None: the table is empty).")
    head: str | None = Field(description="The last row's hash: print it to pin the log.")
    intact: bool
    broken_at: int | str | None = Field(description="The first row where the chain breaks.")
    kind: str | None = Field(
        description="edited, deleted, inserted, reordered or out of order (None: intact)"
    )
    detail: str | None


class ChainCheck(BaseModel):
    """``audit verify``: each chain recomputed, and the problems (empty: intact)."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    store: str
    chains: tuple[ChainState, ...]
    problems: tuple[str, ...]


class StoreCheck(BaseModel):
    """``store check``: schema version, exposure, triggers and chains, and the problems."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    store: str
    store_schema_version: int = Field(description="The schema version the store has.")
    current_store_schema_version: int = Field(description="The version this ketadose writes.")
    exposure: str | None = Field(description="Why other users may read or write it, if so.")
    missing_triggers: tuple[str, ...]
    chains: tuple[ChainState, ...] = Field(
        description="Empty when the schema is too old to have the chain."
    )
    problems: tuple[str, ...]


def lines(store: str, chains: tuple[ChainState, ...], problems: tuple[str, ...]) -> str:
    """The text form: one line per chain, then each problem."""
    out = []
    for chain in chains:
        if chain.head is None:
            state = "empty"
        else:
            rows = f"{chain.rows} row{'' if chain.rows == 1 else 's'}"
            state = f"{rows}, head #{chain.head_id} {chain.head[:16]}"
        verdict = "intact" if chain.intact else f"BROKEN: {chain.detail}"
        out.append(f"{store}: {chain.table} chain {verdict} ({state})")
    out += [f"{store}: problem: {problem}" for problem in problems]
    return "\n".join(out) + "\n"


class ClinicianEntry(BaseModel):
    """One registered clinician."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    name: str = Field(description="As the store authenticates them (OS or database user).")
    role: str
    added_at: str = Field(description="ISO 8601 with the UTC offset.")
    added_by: str


class ClinicianList(BaseModel):
    """``clinician list``: who is registered (none: a single-user store, overrides unchecked)."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    store: str
    clinicians: tuple[ClinicianEntry, ...]
