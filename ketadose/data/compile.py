"""Write the compiled twins of the shipped libraries: ``python -m ketadose.data.compile``.

Run it after editing ``protocols.toml``, ``limits.toml`` or ``instruments.toml`` or the code
that reads them; ``tests/test_data.py`` fails until the twins are current. A stale twin is
never used (its hashes would not match), only slower.
"""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import pydantic
from pydantic import BaseModel

from ketadose.instruments import InstrumentFile
from ketadose.libfile import code_fingerprint, read_library, sources_fingerprint
from ketadose.limits import LimitFile
from ketadose.protocols import ProtocolFile

HERE = Path(__file__).resolve().parent
SHIPPED: dict[str, type[BaseModel]] = {
    "protocols.toml": ProtocolFile,
    "limits.toml": LimitFile,
    "instruments.toml": InstrumentFile,
}


def twin(name: str, data: bytes) -> bytes:
    """The compiled twin of a shipped TOML file's bytes: the validated library, pickled."""
    library, ref = read_library(data, f"ketadose/data/{name}", SHIPPED[name])
    body = {
        "source_sha256": hashlib.sha256(data).hexdigest(),
        "sources": sources_fingerprint(),
        "pydantic": pydantic.VERSION,
        "code": code_fingerprint(),
        "library": library,
        "ref": ref,
    }
    return pickle.dumps(body, protocol=5)


def main() -> None:
    """Rewrite every twin next to its TOML file."""
    for name in SHIPPED:
        (HERE / f"{name}.pickle").write_bytes(twin(name, (HERE / name).read_bytes()))


if __name__ == "__main__":
    main()
