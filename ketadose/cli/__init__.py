"""The ``ketadose`` command line: thin commands over the core, one error-to-exit-code mapping.

(No ``from __future__ import annotations`` in this package: Typer would then ``eval`` every
option's annotation string on each run, ~5 ms of start-up for ours.)

Start-up is kept small on purpose: the package imports only typer and ``ketadose.errors``.
Each command imports the core (pydantic models, the protocol library) and a renderer (rich,
or json) when it runs, so ``ketadose --help`` loads neither pint nor the protocol library.

- :mod:`~ketadose.cli.application`: the Typer apps, registration, ``--debug``, :func:`main`;
- :mod:`~ketadose.cli.exits`: every exit decision (errors and outcomes to exit codes);
- :mod:`~ketadose.cli.options`: the shared options, declared once;
- :mod:`~ketadose.cli.output`: format choice, renderers, writing, the console;
- :mod:`~ketadose.cli.env`: clock, user, time zone, config, store, libraries (the only reader
  of the environment);
- :mod:`~ketadose.cli.audit_log`: the audit entries the commands write;
- :mod:`~ketadose.cli.sources`: ``-`` for stdin, read once;
- :mod:`~ketadose.cli.metavars`: readable metavars in help;
- :mod:`~ketadose.cli.progress`: the batch progress bar;
- :mod:`~ketadose.cli.streams`: the standard streams made safe;
- :mod:`ketadose.cli.commands`: one module per command group.
"""

from typing import Any

from ketadose.cli.application import main
from ketadose.cli.output import RENDERERS


def __getattr__(name: str) -> Any:
    """``app``: the whole Typer app, built on first use (a run builds only its command)."""
    if name == "app":
        from ketadose.cli import application

        return application.app
    raise AttributeError(name)


__all__ = ["RENDERERS", "app", "main"]
