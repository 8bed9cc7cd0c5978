"""The commands, one module per command group (registered in :mod:`ketadose.cli.application`)."""
