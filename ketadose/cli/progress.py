"""A progress bar on stderr for long work, drawn only when stderr is a terminal."""

import contextlib
import sys
from collections.abc import Callable


def progress_bar(
    stack: contextlib.ExitStack, title: str, total: int | None
) -> Callable[[int], None] | None:
    """An ``update(done)`` that draws a bar on stderr if it is a terminal; else None.

    The bar (rich, with a refresh thread) starts at the first update, so that work which
    forks worker processes before its first report does not fork that thread with them.
    It goes away when ``stack`` closes.

    Args:
        stack: Owns the bar.
        title: What is being done.
        total: How much there is to do (None: unknown).

    Returns:
        The update function, or None when stderr is not a terminal.
    """
    if not sys.stderr.isatty():
        return None
    from rich.console import Console
    from rich.progress import Progress, TaskID

    started: list[tuple[Progress, TaskID]] = []

    def update(done: int) -> None:
        if not started:
            bar = stack.enter_context(Progress(console=Console(stderr=True), transient=True))
            started.append((bar, bar.add_task(title, total=total)))
        bar, task = started[0]
        bar.update(task, completed=done)

    return update
