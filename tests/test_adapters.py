"""One Typer adapter per plain option type (ketadose.cli.adapters), with the installed Typer."""

from pathlib import Path
from typing import Annotated, Any

import typer
from typer.main import get_command
from typer.testing import CliRunner

from ketadose.cli.adapters import SHARED, share_plain_adapters
from ketadose.cli.application import build


def adapters(command: Any) -> dict[str, tuple[Any, Any]]:
    """Each option's annotation and the adapter Typer converts its value with."""
    return {
        param.name: (param.type_descriptor.annotation, param.get_runtime_param().adapter)
        for param in command.params
        if hasattr(param.get_runtime_param(), "adapter")
    }


def test_the_installed_typer_shares() -> None:
    assert share_plain_adapters() is True
    assert share_plain_adapters() is True  # idempotent: wrapped once


def test_a_dose_has_one_adapter_per_plain_type() -> None:
    dose = get_command(build(("dose",))).commands["dose"]  # type: ignore[attr-defined]
    found = adapters(dose)
    by_type: dict[Any, set[int]] = {}
    for annotation, adapter in found.values():
        by_type.setdefault(annotation, set()).add(id(adapter))
    assert found["weight"][0] is str and found["json"][0] is bool
    for kind in SHARED:
        assert len(by_type[kind]) == 1, kind  # every str option, every flag: one adapter
    assert len([a for a, _ in found.values() if a is str]) >= 20
    # a path, an enum, a number: each option its own adapter, built for it
    own = [name for name, (annotation, _) in found.items() if annotation not in SHARED]
    assert {"output", "limits", "sex", "dosing_weight", "drop_factor"} <= set(own)
    assert len({id(found[name][1]) for name in own}) == len(own)


def test_an_option_with_a_parser_is_not_shared() -> None:
    share_plain_adapters()
    app = typer.Typer()

    @app.command()
    def show(
        plain: str = "a",
        shouted: Annotated[str, typer.Option(parser=str.upper)] = "b",
        other: str = "c",
        where: Path = Path("."),
    ) -> None:
        typer.echo(f"{plain} {shouted} {other} {where}")

    found = adapters(get_command(app))
    assert found["plain"][1] is found["other"][1]
    assert found["shouted"][1] is not found["plain"][1]
    assert found["where"][1] is not found["plain"][1]
    result = CliRunner().invoke(app, ["--plain", "x", "--shouted", "y", "--where", "/tmp"])
    assert result.exit_code == 0, result.output
    assert result.stdout == "x Y c /tmp\n"


def test_a_shared_adapter_converts_as_typers_own() -> None:
    from typer import _adapters
    from typer.models import OptionInfo

    share_plain_adapters()
    dose = get_command(build(("dose",))).commands["dose"]  # type: ignore[attr-defined]
    shared = adapters(dose)["weight"][1]
    own = _adapters.build_adapter(str, OptionInfo())
    assert shared is not own
    for value in ("80kg", b"80kg", "ü", b"\xc3\xbc"):
        assert shared.validate_python(value) == own.validate_python(value)
