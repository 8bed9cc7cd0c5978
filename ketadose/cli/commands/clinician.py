"""ketadose clinician add/list and ketadose override cosign: roles and co-signatures."""

from typing import TYPE_CHECKING, Annotated

import typer

from ketadose.cli import audit_log, env
from ketadose.cli.exits import command
from ketadose.cli.options import (
    ForceFlag,
    FormatOpt,
    JsonFlag,
    LimitsFile,
    OutputFile,
    ProtocolsFile,
    StoreFile,
)
from ketadose.cli.output import choose_format, emit

if TYPE_CHECKING:
    from rich.console import Console

    from ketadose.limits import LimitLibrary
    from ketadose.records import AuditEntry
    from ketadose.render.store_doc import ClinicianList


@command
def clinician_add(
    name: Annotated[
        str, typer.Argument(help="The user the store knows them as (OS or database user).")
    ],
    role: Annotated[
        str,
        typer.Option(
            "--role", metavar="nurse|prescriber|pharmacist|admin", help="Their role (once)."
        ),
    ],
    store: StoreFile = None,
    protocols: ProtocolsFile = None,
    limits: LimitsFile = None,
) -> None:
    """Register a clinician with a role (only an admin may; a new store's first is its admin).

    The name is the one the store authenticates: the OS user on SQLite. Overrides are then
    checked against the limit library's [overrides] by the role of whoever is acting.
    """
    # The entry names the limit library in effect: its [overrides] give the role its powers.
    limit_library = env.limits(limits, env.library(protocols))
    asked = {"name": name, "role": role}
    entry = audit_log.entry(
        None, "clinician add", None, asked, (), "ok", None, limit_library.ref.sha256
    )
    with env.open_store(store) as db, db.exclusive("register the clinician"):
        first = not db.clinicians()
        db.add_clinician(name, role, entry)
        if first:  # the store's first admin pins the rules in effect now, in one transaction
            db.pin_policy(_pin(limit_library))
    typer.echo(f"ketadose: registered {name} as {role}", err=True)
    if first:
        typer.echo(
            f"ketadose: pinned the override rules of {limit_library.ref.name} "
            f"{limit_library.ref.version} in the store (ketadose clinician policy changes them)",
            err=True,
        )


@command
def clinician_policy(
    store: StoreFile = None,
    protocols: ProtocolsFile = None,
    limits: LimitsFile = None,
) -> None:
    """Pin the limit library's [overrides] in the store (an admin only).

    Pinned rules decide who may override and co-sign, whatever library a command names.
    """
    limit_library = env.limits(limits, env.library(protocols))
    with env.open_store(store) as db:
        db.pin_policy(_pin(limit_library))
    typer.echo(
        f"ketadose: pinned the override rules of {limit_library.ref.name} "
        f"{limit_library.ref.version} (sha256 {limit_library.ref.sha256[:16]})",
        err=True,
    )


def _pin(limit_library: "LimitLibrary") -> "AuditEntry":
    """The audit entry that pins a library's override rules (the built-in one if it has none)."""
    from ketadose.authority import DEFAULT_RULE

    rules = limit_library.content.overrides or {"default": DEFAULT_RULE}
    asked = {"overrides": {name: rule.model_dump(mode="json") for name, rule in rules.items()}}
    return audit_log.entry(
        None, "clinician policy", None, asked, (), "ok", None, limit_library.ref.sha256
    )


@command
def clinician_list(
    store: StoreFile = None,
    json: JsonFlag = False,
    output_format: FormatOpt = None,
    output: OutputFile = None,
    force: ForceFlag = False,
) -> None:
    """List the registered clinicians and their roles."""
    from ketadose.render.store_doc import ClinicianEntry, ClinicianList

    chosen = choose_format("clinician list", output_format, output, force, json=json)
    path = env.store_location(store)
    with env.open_store(store, read_only=True) as db:
        found = db.clinicians()
    document = ClinicianList(
        store=str(path),
        clinicians=tuple(
            ClinicianEntry(
                name=c.name, role=c.role, added_at=c.added_at.isoformat(), added_by=c.added_by
            )
            for c in found
        ),
    )
    emit("clinician list", chosen, output, force, (document,), lambda c: _table(document, c))


def _table(document: "ClinicianList", console: "Console") -> None:
    from rich.table import Table

    if not document.clinicians:
        console.print(
            "No clinician is registered: a single-user store, whose overrides need no role. "
            "Register its admin: ketadose clinician add NAME --role admin",
            soft_wrap=False,
        )
        return
    table = Table(title="Clinicians", title_justify="left")
    for header in ("Name", "Role", "Registered", "By"):
        table.add_column(header)
    for c in document.clinicians:
        table.add_row(c.name, c.role, c.added_at, c.added_by)
    console.print(table)


@command
def override_cosign(
    entry: Annotated[
        int,
        typer.Argument(
            min=1,
            max=2**63 - 1,
            help="The audit entry of the session record whose override it is.",
        ),
    ],
    store: StoreFile = None,
    protocols: ProtocolsFile = None,
    limits: LimitsFile = None,
) -> None:
    """Co-sign a recorded session's override, as an independent second clinician.

    Who co-signs is who is acting (the OS user), registered, not the one who recorded it, and
    in a role the limit library lets make those overrides.
    """
    import json as json_

    from ketadose.authority import may_cosign
    from ketadose.models import Finding
    from ketadose.records import AuditEntry

    limit_library = env.limits(limits, env.library(protocols))

    def may(original: AuditEntry, role: str) -> bool:
        findings = [Finding.model_validate(f) for f in json_.loads(original.findings_json)]
        return may_cosign(rules, findings, role)

    found = audit_log.entry(
        None, "override cosign", None, {"entry": entry}, (), "ok", None, limit_library.ref.sha256
    )
    with env.open_store(store) as db:
        rules = audit_log.rules_in_effect(db, limit_library)
        session_id = db.cosign(entry, found, may)
    typer.echo(
        f"ketadose: co-signed the override of session {session_id} (entry {entry})", err=True
    )
