"""Coverage-guided fuzzing of the quantity parser and the library loaders, with atheris.

Each target takes arbitrary bytes and checks what ketadose promises for any input: a value it
reads is finite, positive, of the kind asked, and reads back the same from its own formatting;
anything else is refused with ``QuantityError`` (or ``ConfigError`` for a library file), never
another exception. atheris (the ``fuzz`` extra; or ``pip install atheris``) reports any input
that breaks this as a crash, with the input saved to a file::

    python -m ketadose.fuzzing units -runs=100000
    python -m ketadose.fuzzing limits -max_total_time=60
    python -m ketadose.fuzzing protocols corpus_dir/

Arguments after the target name go to libFuzzer (``-runs``, ``-max_total_time``, a corpus
directory). Without atheris the targets are plain functions the tests call.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable

from ketadose.errors import ConfigError, QuantityError


def quantity(data: bytes) -> None:
    """Parse the bytes as a quantity of a kind chosen by the first byte.

    Args:
        data: Anything.

    Raises:
        AssertionError: When an accepted value breaks a promise (a bug).
    """
    from ketadose.units import Kind, format_number, parse

    if not data:
        return
    kinds = tuple(Kind)
    kind = kinds[data[0] % len(kinds)]
    text = data[1:].decode("utf-8", errors="replace")
    try:
        found, value = parse(text, kind)
    except QuantityError:
        return
    assert found is kind, (text, found)
    assert math.isfinite(value) and value > 0, (text, value)
    # What ketadose shows reads back as the value it shows.
    shown = format_number(value)
    digits = len(shown.replace(".", "").lstrip("0"))
    if float(shown) > 0 and digits <= 15:  # a longer number is refused, as any input would be
        again = parse(f"{shown} {kind.unit}", kind)[1]
        assert math.isclose(again, float(shown), rel_tol=1e-12), (text, shown, again)


def limits(data: bytes) -> None:
    """Load the bytes as a limit library file.

    Args:
        data: Anything.
    """
    from ketadose.limits import load_file

    try:
        load_file(data, "fuzzed.toml")
    except ConfigError:
        return


def protocols(data: bytes) -> None:
    """Load the bytes as a protocol file.

    Args:
        data: Anything.
    """
    from ketadose.protocols import load_file

    try:
        load_file(data, "fuzzed.toml")
    except ConfigError:
        return


TARGETS: dict[str, Callable[[bytes], None]] = {
    "units": quantity,
    "limits": limits,
    "protocols": protocols,
}


def main(argv: list[str] | None = None) -> None:
    """Run one target under atheris: ``python -m ketadose.fuzzing TARGET [libFuzzer args]``.

    Args:
        argv: The command line (default: ``sys.argv``).
    """
    args = sys.argv if argv is None else argv
    if len(args) < 2 or args[1] not in TARGETS:
        raise SystemExit(f"usage: python -m ketadose.fuzzing {{{','.join(TARGETS)}}} [args]")
    try:
        import atheris
    except ImportError:
        raise SystemExit("atheris is not installed: pip install 'ketadose[fuzz]'") from None
    target = TARGETS[args[1]]
    with atheris.instrument_imports(include=["ketadose"]):  # coverage guidance for our code
        target(b"")  # imports what the target uses
    atheris.Setup([args[0], *args[2:]], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
