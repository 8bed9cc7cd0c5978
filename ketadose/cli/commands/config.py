"""``ketadose config show``: each effective clinic default and where it came from."""

from typing import TYPE_CHECKING, Annotated

import typer

from ketadose.cli import env
from ketadose.cli.exits import command
from ketadose.cli.options import DRAW_STEP, PUMP_STEP, ForceFlag, FormatOpt, JsonFlag, OutputFile
from ketadose.cli.output import choose_format, emit

if TYPE_CHECKING:
    from rich.console import Console

    from ketadose.config import Setting
    from ketadose.render.config_doc import ConfigFile


@command
def config_show(
    json: JsonFlag = False,
    output_format: FormatOpt = None,
    output: OutputFile = None,
    force: ForceFlag = False,
    tz: Annotated[str | None, typer.Option("--tz", hidden=True)] = None,
) -> None:
    """Show each clinic default in effect (flag > environment > config file > built-in)."""
    from ketadose import clock
    from ketadose.config import ENVIRONMENT
    from ketadose.render.config_doc import ConfigFile

    chosen = choose_format("config show", output_format, output, force, json=json)
    env.command_tz(tz)  # after the command, as before it: the flag wins, and is checked below
    path, named = env.config_path()
    env.config()  # an invalid file is refused here (exit 5), as by any command that reads it
    built_in = {
        "limits": "the shipped example library",
        "protocols": "the shipped protocols",
        "store": str(env.store_location(None)),
        "clinician": env.user(None),
        "tz": clock.name(env.zone()),
        "paper": "a4",
        "pump_step": PUMP_STEP,
        "draw_step": DRAW_STEP,
        "store_shared": "false",
    }
    flags = {"tz": env.tz_flag()}  # the one clinic default this command takes as a flag
    settings = [env.setting(key, flags.get(key), built_in[key]) for key in ENVIRONMENT]
    found = ConfigFile(path=str(path), named=named, exists=path.is_file())
    emit(
        "config show",
        chosen,
        output,
        force,
        (found, settings),
        lambda console: _table(found, settings, console),
    )


def _table(found: "ConfigFile", settings: "list[Setting]", console: "Console") -> None:
    """The config file looked for, then one row per clinic default."""
    from rich.table import Table
    from rich.text import Text

    from ketadose.config import ENVIRONMENT

    state = "exists" if found.exists else "none there"
    named = "KETADOSE_CONFIG" if found.named else "default"
    console.print(Text(f"Config file: {found.path} ({named}, {state})"))
    table = Table(title="Clinic defaults in effect", title_justify="left")
    for header in ("Key", "Value", "Source", "Variable"):
        table.add_column(header, overflow="fold")
    for s in settings:
        table.add_row(s.key, s.value or "-", s.source, ENVIRONMENT[s.key])
    console.print(table)
