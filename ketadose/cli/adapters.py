"""One Typer TypeAdapter per plain option type, shared by every option of that type.

Typer (0.29) converts each option's value with a pydantic ``TypeAdapter`` that it builds, one
per option, when the option is first parsed: about 2.2 M instructions each, and ``dose`` has
36 options, 28 of them a plain ``str``, ``bool`` or ``list[str]``. For those Typer's
``build_leaf_adapter`` depends on the type alone (an option's limits, choices and path checks
apply to numbers, enums and paths, not to these), as long as the option has no ``parser``; a
``list[str]`` is a list of the ``str`` one. So one adapter per type serves every such option
(about 6 % of a dose's start-up), and converts exactly as the adapter Typer would build.

Everything else (a ``parser``, an enum, a path, a number, a date) still gets Typer's own adapter,
built for that option. The names used are Typer's private ones: when they are missing (another
Typer), nothing is shared and Typer builds every adapter itself, as it always does.
"""

from typing import Any

#: The types whose adapter depends on nothing but the type (Typer 0.29's build_leaf_adapter).
SHARED: tuple[Any, ...] = (str, bool, list[str])


def share_plain_adapters() -> bool:
    """Make Typer build one adapter per type in :data:`SHARED`, not one per option.

    Typer imports its adapters, and pydantic, only when an option is first parsed (a help
    never is): so does this, by wrapping the function that starts that (``typer.core``'s
    ``build_runtime_param``). Idempotent.

    Returns:
        Whether sharing is in place (False: this Typer lacks the private names, and builds
        its own adapters as before).
    """
    from typer import core

    start = getattr(core, "build_runtime_param", None)
    if start is None:
        return False  # pragma: no cover - another Typer
    if getattr(start, "shared_by_ketadose", False):
        return True

    def build_runtime_param(descriptor: Any) -> Any:
        _share_in_adapters()
        return start(descriptor)

    build_runtime_param.__doc__ = start.__doc__
    build_runtime_param.shared_by_ketadose = True  # type: ignore[attr-defined]
    setattr(core, "build_runtime_param", build_runtime_param)  # noqa: B010  # not exported
    return True


def _share_in_adapters() -> None:
    """Wrap ``typer._adapters.try_build_adapter``: one adapter per type in :data:`SHARED`."""
    from typer import _adapters

    build = getattr(_adapters, "try_build_adapter", None)
    if build is None or getattr(build, "shared_by_ketadose", False):
        return  # another Typer (it builds its own adapters), or shared already
    built: dict[Any, Any] = {}

    def try_build_adapter(annotation: Any, parameter_info: Any) -> Any:
        key = next((kind for kind in SHARED if annotation == kind), None)
        if key is None or parameter_info.parser is not None:
            return build(annotation, parameter_info)
        if key not in built:
            built[key] = build(annotation, parameter_info)
        return built[key]

    try_build_adapter.__doc__ = build.__doc__
    try_build_adapter.shared_by_ketadose = True  # type: ignore[attr-defined]
    _adapters.try_build_adapter = try_build_adapter
