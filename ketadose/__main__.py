"""``python -m ketadose``."""

from ketadose.cli import main

main()
