"""ketadose store check and store migrate; the chain states ``audit verify`` shares."""

from typing import TYPE_CHECKING

import typer

from ketadose.cli import env
from ketadose.cli.exits import command, fail
from ketadose.cli.options import ForceFlag, FormatOpt, JsonFlag, OutputFile, StoreFile
from ketadose.cli.output import OutputFormat, choose_format, emit
from ketadose.errors import ExitCode

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ketadose.render.store_doc import ChainState
    from ketadose.store import Chain


@command
def store_check(
    store: StoreFile = None,
    json: JsonFlag = False,
    output_format: FormatOpt = None,
    output: OutputFile = None,
    force: ForceFlag = False,
) -> None:
    """Check the record store without changing it: schema, permissions, triggers, chains.

    The schema version; whether other users may read or write the file or its directory; the
    triggers that keep its history; both hash chains recomputed.

    Exit 0 when sound; else 6, each problem on its own line.
    """
    from ketadose.render.store_doc import StoreCheck, lines
    from ketadose.store import SCHEMA_VERSION, inspect

    chosen = choose_format("store check", output_format, output, force, json=json)
    path = env.store_location(store)
    state = inspect(path, env.zone(), shared=env.store_shared())
    document = StoreCheck(
        store=str(path),
        store_schema_version=state.schema_version,
        current_store_schema_version=SCHEMA_VERSION,
        exposure=state.exposure,
        missing_triggers=state.missing_triggers,
        chains=chain_states(state.chains),
        problems=tuple(state.problems),
    )
    text = ""
    if chosen is OutputFormat.table:
        head = f"{path}: store schema version {state.schema_version}"
        text = f"{head} (this ketadose writes {SCHEMA_VERSION})\n"
        text += lines(str(path), document.chains, ())
    emit("store check", chosen, output, force, (document,), text)
    finish(str(path), document.problems)


@command
def store_migrate(store: StoreFile = None) -> None:
    """Bring the record store to this ketadose's schema version (the file is backed up first).

    Any command that writes migrates an older store too; this one does only that, and says so.
    On a PostgreSQL store, run by its owner, it also grants the clinicians' role
    (ketadose_clinician) the rights to read and add records, never to change them.
    """
    from ketadose.store import SCHEMA_VERSION, inspect

    path = env.store_location(store)
    before = inspect(path, env.zone()).schema_version
    # Opened as the readers open a file: none there is refused (never created), and an older
    # one is backed up and migrated (open_store says so on stderr). A database server's store
    # is opened to write: its owner grants the clinicians' role its rights again.
    with env.open_store(store, read_only=path.path is not None) as db:
        granted = db.grant_clinicians()
    state = f"migrated from {before} to" if before < SCHEMA_VERSION else "already at"
    typer.echo(f"{path}: {state} store schema version {SCHEMA_VERSION}")
    if granted is not None:
        typer.echo(f"{path}: {granted}")


def chain_states(chains: "Sequence[Chain]") -> "tuple[ChainState, ...]":
    """The documents' form of the store's verified chains."""
    from ketadose.render.store_doc import ChainState

    return tuple(
        ChainState(
            table=chain.table,
            rows=chain.rows,
            head_id=chain.head_id,
            head=chain.head,
            intact=chain.broken is None,
            broken_at=None if chain.broken is None else _key(chain.broken.key),
            kind=None if chain.broken is None else chain.broken.kind,
            detail=None if chain.broken is None else chain.broken.detail,
        )
        for chain in chains
    )


def _key(key: object) -> int | str:
    return key if isinstance(key, int) else str(key)


def finish(path: str, problems: "Sequence[str]") -> None:
    """Exit 6 with each problem on its own stderr line, if there is any."""
    for problem in problems[:-1]:
        fail(f"{path}: {problem}", ExitCode.STORE)
    if problems:
        raise fail(f"{path}: {problems[-1]}", ExitCode.STORE)
