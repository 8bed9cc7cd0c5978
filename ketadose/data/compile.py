"""Write the JSON twins of the shipped TOML libraries: ``python -m ketadose.data.compile``.

Run it after editing ``protocols.toml`` or ``limits.toml``; ``tests/test_data.py`` fails until
the twins match. A stale twin is never used (its hash would not match), only slower.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHIPPED = ("protocols.toml", "limits.toml")


def twin(data: bytes) -> str:
    """The JSON twin of a TOML file's bytes."""

    def encode(value: object) -> str:
        if isinstance(value, date):
            return value.isoformat()
        raise TypeError(f"cannot write {type(value).__name__} to JSON")

    document = tomllib.loads(data.decode("utf-8"))
    body = {"source_sha256": hashlib.sha256(data).hexdigest(), "document": document}
    return json.dumps(body, ensure_ascii=False, sort_keys=True, default=encode) + "\n"


def main() -> None:
    """Rewrite every twin next to its TOML file."""
    for name in SHIPPED:
        (HERE / f"{name}.json").write_text(twin((HERE / name).read_bytes()), encoding="utf-8")


if __name__ == "__main__":
    main()
