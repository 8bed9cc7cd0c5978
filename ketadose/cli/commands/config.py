"""``ketadose config show``: each effective clinic default and where it came from."""

from typing import Annotated

import typer

from ketadose.cli import env
from ketadose.cli.exits import command
from ketadose.cli.options import DRAW_STEP, PUMP_STEP, JsonFlag
from ketadose.cli.output import terminal, write


@command
def config_show(
    json: JsonFlag = False,
    tz: Annotated[str | None, typer.Option("--tz", hidden=True)] = None,
) -> None:
    """Show each clinic default in effect (flag > environment > config file > built-in)."""
    import json as jsonlib

    from ketadose import clock
    from ketadose.config import ENVIRONMENT

    path, named = env.config_path()
    env.config()  # an invalid file is refused here (exit 5), as by any command that reads it
    built_in = {
        "limits": "the shipped example library",
        "protocols": "the shipped protocols",
        "store": str(env.store_path(None)),
        "clinician": env.user(None),
        "tz": clock.name(env.zone()),
        "paper": "a4",
        "pump_step": PUMP_STEP,
        "draw_step": DRAW_STEP,
    }
    settings = [env.setting(key, None, built_in[key]) for key in ENVIRONMENT]
    if json:
        document = {
            "config_file": {"path": str(path), "named": named, "exists": path.is_file()},
            "settings": {
                s.key: {"value": s.value, "source": s.source, "variable": ENVIRONMENT[s.key]}
                for s in settings
            },
        }
        write(jsonlib.dumps(document, indent=2) + "\n")
        return
    from rich.table import Table

    console = terminal()
    state = "exists" if path.is_file() else "none there"
    console.print(f"Config file: {path} ({'KETADOSE_CONFIG' if named else 'default'}, {state})")
    table = Table(title="Clinic defaults in effect", title_justify="left")
    for header in ("Key", "Value", "Source", "Variable"):
        table.add_column(header, overflow="fold")
    for s in settings:
        table.add_row(s.key, s.value or "-", s.source, ENVIRONMENT[s.key])
    console.print(table)
