"""The core's vocabularies and defaults: one definition, read by the core and the command line."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from ketadose import choices, models, pk
from ketadose.cli import app
from ketadose.cli import options as cli_options
from ketadose.cli.commands.schema import SchemaName
from ketadose.cli.commands.simulate import ModelOption
from ketadose.render.schema import DOCUMENTS


class TestOneDefinition:
    """The models, the PK table and the command line use the same objects, not copies."""

    def test_enums_are_the_cores(self) -> None:
        assert models.Sex is choices.Sex and models.WeightPolicy is choices.WeightPolicy
        assert cli_options.SexOption is choices.Sex
        assert cli_options.PolicyOption is choices.WeightPolicy
        assert ModelOption is choices.PkModel

    def test_every_model_choice_has_its_model(self) -> None:
        assert list(pk.MODELS) == [model.value for model in choices.PkModel]
        assert pk.DEFAULT_MODEL == "clements250"

    def test_schema_choices_are_the_documents(self) -> None:
        assert [name.value for name in SchemaName] == list(DOCUMENTS)

    def test_defaults_as_the_flags_spell_them(self) -> None:
        rounding = models.Rounding()
        assert (rounding.pump_rate_ml_per_h, rounding.draw_ml) == (0.1, 0.01)
        assert (cli_options.PUMP_STEP, cli_options.DRAW_STEP) == ("0.1mL/h", "0.01mL")
        assert cli_options.SESSION_TIME == "09:00"

    def test_help_lists_the_choices(self) -> None:
        dose = CliRunner().invoke(app, ["dose", "--help"]).stdout
        assert "--sex male|female" in dose and "--dosing-weight actual|ideal|adjusted|lean" in dose
        simulate = CliRunner().invoke(app, ["simulate", "--help"]).stdout
        assert "clements250|domino|hijazi|kamp" in simulate

    def test_start_up_loads_no_models(self) -> None:
        code = (
            "import sys\nfrom ketadose.cli import app\n"
            "try:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
            "print([m for m in ('pydantic', 'ketadose.models', 'ketadose.pk', 'ketadose.units')"
            " if m in sys.modules])"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert out.stdout.strip().splitlines()[-1] == "[]"
