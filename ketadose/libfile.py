"""What protocol and limit library files share: quantities, sources, headers, loading.

Both kinds of library are TOML files validated by pydantic models built from the pieces
here; both are identified in every output by name, version, sha256 and approval
(:class:`~ketadose.models.LibraryRef`), and both fail with a
:class:`~ketadose.errors.ConfigError` naming the file and the field.
"""

import hashlib
import pickle
import stat
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    StrictBool,
    StrictInt,
    ValidationError,
)

from ketadose.errors import ConfigError
from ketadose.models import LibraryRef
from ketadose.units import Kind, parse

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class Quantity:
    """A quantity read from a data file: its kind, its value in ``kind.unit``, and the text.

    Attributes:
        kind: What the unit made it (mg/kg or mg for a dose, for example).
        value: The value in ``kind.unit``.
        text: As written in the file, kept for display and for the audit trail.

    """

    kind: Kind
    value: float
    text: str

    def __str__(self) -> str:
        return " ".join(self.text.split())  # as written (validated), e.g. "4 h", not "240 min"


def quantity_validator(*kinds: Kind) -> Callable[[Any], Quantity]:
    """A pydantic validator accepting only a string quantity of one of ``kinds``."""
    examples = " or ".join(dict.fromkeys(k.example for k in kinds))

    def validate(value: Any) -> Quantity:
        if not isinstance(value, str):
            raise ValueError(f'must be a quantity with a unit, as a string, e.g. "{examples}"')
        kind, number = parse(value, *kinds)
        return Quantity(kind, number, value)

    return validate


def quantity_field(*kinds: Kind) -> Any:
    """Annotated metadata for a quantity field of one of ``kinds``."""
    return (
        PlainValidator(quantity_validator(*kinds), json_schema_input_type=str),
        PlainSerializer(str, return_type=str),
    )


Dose = Annotated[Quantity, *quantity_field(Kind.DOSE_PER_KG, Kind.DOSE)]
Rate = Annotated[Quantity, *quantity_field(Kind.RATE_PER_KG, Kind.RATE)]
MassRate = Annotated[Quantity, *quantity_field(Kind.RATE)]
Duration = Annotated[Quantity, *quantity_field(Kind.DURATION)]
Volume = Annotated[Quantity, *quantity_field(Kind.VOLUME)]
Concentration = Annotated[Quantity, *quantity_field(Kind.CONCENTRATION)]
#: What a dose form holds: mg/mL for a liquid, mg for a tablet.
Strength = Annotated[Quantity, *quantity_field(Kind.CONCENTRATION, Kind.DOSE)]

#: A whole number in a library file: TOML ``true`` is not 1, and ``3.0`` is not 3.
Count = StrictInt
#: A yes/no in a library file: only TOML ``true`` or ``false``, never 1 or "yes".
Flag = StrictBool
#: The routes a protocol (and a limit profile) is written for.
Route = Literal["iv", "im", "sc", "intranasal", "sublingual", "oral"]

#: Evidence levels of ``reference/clinical.md``. "NOT CONFIRMED" is deliberately absent:
#: a number nobody could confirm is never shipped as sourced.
Evidence = Literal["HIGH", "MED", "LOW", "COMPUTED", "SITE-POLICY"]


class Strict(BaseModel):
    """Frozen, and refuses unknown keys: a typo in a library file is an error, not a default."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", str_strip_whitespace=True, defer_build=True
    )


class Sourced(Strict):
    """A record whose numbers carry their source and evidence level."""

    source: str = Field(min_length=3, description="Where the numbers come from.")
    evidence: Evidence


class LibraryHeader(Strict):
    """Who made a library file and who approved it."""

    name: str = Field(min_length=1)
    version: str = Field(min_length=1)
    approved_by: str | None = Field(default=None, min_length=1)
    approved_on: date | None = None


def read_library(data: bytes, path: str, model: type[M]) -> tuple[M, LibraryRef]:
    """Parse and validate the bytes of one library file (protocols or limits).

    Args:
        data: The file's bytes.
        path: How to name the file in messages.
        model: The pydantic model of the whole file; it has a ``library`` header.

    Returns:
        The validated file and its reference (name, version, sha256, approval).

    Raises:
        ConfigError: When the bytes are not UTF-8 TOML or do not validate; the message names
            the file and the field.
    """
    import tomllib  # only for a file read as TOML: the shipped libraries load from their twins

    try:
        # A UTF-8 byte-order mark (some Windows editors write one) is not part of the text.
        document = tomllib.loads(data.decode("utf-8").removeprefix("\ufeff"))
    except UnicodeDecodeError as error:
        raise ConfigError(f"not UTF-8 text (byte {error.start})", path=path) from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"not valid TOML: {error}", path=path) from None
    except RecursionError:
        raise ConfigError("not a library: arrays or tables nested too deeply", path=path) from None
    try:
        parsed = model.model_validate(document)
    except ValidationError as error:
        raise config_error(error, path, document) from None
    header: LibraryHeader = getattr(parsed, "library")  # noqa: B009 - every file model has one
    ref = LibraryRef(
        name=header.name,
        version=header.version,
        sha256=hashlib.sha256(data).hexdigest(),
        approved=header.approved_by is not None and header.approved_on is not None,
        path=path,
    )
    return parsed, ref


#: A library file is a few hundred kB at most; anything larger is not one.
MAX_FILE_BYTES = 5_000_000


def read_file(path: Path) -> bytes:
    """Read a clinic's library file: a regular file of at most ``MAX_FILE_BYTES``.

    Args:
        path: The file.

    Returns:
        Its bytes.

    Raises:
        ConfigError: When it is missing, not a regular file (a directory, a FIFO, a device
            that never ends), too large or unreadable.
    """
    name = str(path)
    try:
        info = path.stat()
    except OSError as error:
        raise ConfigError(f"cannot read: {error.strerror}", path=name) from None
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError("not a regular file", path=name)
    if info.st_size > MAX_FILE_BYTES:
        raise ConfigError(f"larger than {MAX_FILE_BYTES // 1_000_000} MB", path=name)
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        raise ConfigError(f"cannot read: {error.strerror}", path=name) from None
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(f"larger than {MAX_FILE_BYTES // 1_000_000} MB", path=name)
    return data


#: The sources of the classes a compiled twin holds: any change to them makes a twin stale.
MODEL_SOURCES = (
    "libfile.py",
    "protocols.py",
    "limits.py",
    "models.py",
    "units.py",
    "instruments.py",
)


def sources_fingerprint() -> str:
    """A hash of the sources of the classes a compiled twin holds.

    Returns:
        The hex digest.
    """
    digest = hashlib.sha256()
    package = resources.files("ketadose")
    for name in MODEL_SOURCES:
        digest.update(package.joinpath(name).read_bytes())
    return digest.hexdigest()


def code_fingerprint() -> str:
    """A hash of what a compiled twin depends on: the model sources, pydantic, Python.

    Returns:
        The hex digest.
    """
    import pydantic

    runtime = f"pydantic {pydantic.VERSION} python {sys.version_info[:2]} "
    return hashlib.sha256((runtime + sources_fingerprint()).encode()).hexdigest()


def read_shipped(
    name: str, model: type[M], *, directory: Traversable | None = None
) -> tuple[M, LibraryRef]:
    """Load a library file shipped in ``ketadose/data``.

    Parsing the TOML and building pydantic's validators for it cost ~35 ms, a seventh of a whole
    ``dose`` run. So each shipped file has a compiled twin, ``NAME.pickle``, written by
    ``python -m ketadose.data.compile`` from the validated library, like a ``.pyc`` for data.
    The twin is used only when it names the sha256 of the TOML bytes read now *and* the
    fingerprint of the code and pydantic version reading it (:func:`code_fingerprint`);
    otherwise the TOML is parsed and validated as any clinic's file is. It lives in the
    installed package, as trusted as the code beside it; nothing is ever unpickled from a
    user's path.

    Args:
        name: The file's name, e.g. ``"protocols.toml"``.
        model: The model of the whole file.
        directory: Where the files are (default: the installed ``ketadose/data``).

    Returns:
        As :func:`read_library`.
    """
    files = directory or resources.files("ketadose.data")
    data = files.joinpath(name).read_bytes()
    path = f"ketadose/data/{name}"
    try:
        twin = pickle.loads(files.joinpath(f"{name}.pickle").read_bytes())
    except Exception:  # missing, truncated or from another version: parse the TOML instead
        twin = None
    if (
        isinstance(twin, dict)
        and twin.get("source_sha256") == hashlib.sha256(data).hexdigest()
        and twin.get("code") == code_fingerprint()
        and isinstance(twin.get("library"), model)
        and isinstance(twin.get("ref"), LibraryRef)
        and twin["ref"].path == path
    ):
        return twin["library"], twin["ref"]
    return read_library(data, path, model)


def config_error(error: ValidationError, path: str, document: Any) -> ConfigError:
    """Turn a pydantic ValidationError into one ConfigError naming the file and the field.

    Args:
        error: The validation error.
        path: The file's name for messages.
        document: The parsed TOML, used to name a protocol by its id in the location.

    Returns:
        A ConfigError for the first problem, counting the others.

    """
    problems = error.errors(include_url=False)
    first = problems[0]
    location = _location(first["loc"], document)
    message = str(first["msg"]).removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown key"
    if len(problems) > 1:
        message += f" (and {len(problems) - 1} more problem{'s' if len(problems) > 2 else ''})"
    return ConfigError(message, path=path, location=location)


_TYPE_TAGS = frozenset({"str", "int", "float", "bool", "list", "dict", "tuple", "none"})


def _internal(part: str, node: Any) -> bool:
    """Whether a location part is pydantic's (a union member tag), not a key of the file."""
    if isinstance(node, dict) and part in node:
        return False
    return part in _TYPE_TAGS or "-" in part or "[" in part


def _location(loc: tuple[int | str, ...], document: Any) -> str:
    """Format a pydantic location as ``protocol[2](ptsd).phases[0].dose``."""
    text = ""
    node = document
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
            node = node[part] if isinstance(node, list) and part < len(node) else None
            if isinstance(node, dict) and isinstance(node.get("id"), str):
                text += f"({node['id']})"
        else:
            if _internal(part, node):
                continue
            text += f".{part}" if text else part
            node = node.get(part) if isinstance(node, dict) else None
    return text or "(top level)"
