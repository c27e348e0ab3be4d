"""A progress bar on stderr while an evaluation runs (tqdm; off when stderr is not a terminal)."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def bar(items: Iterable[T], total: int | None = None, desc: str = "") -> Iterator[T]:
    """`items`, shown as a progress bar on a terminal, passed through silently otherwise."""
    if not sys.stderr.isatty():
        yield from items
        return
    from tqdm import tqdm

    with tqdm(items, total=total, desc=desc, file=sys.stderr, leave=False, unit="q") as shown:
        yield from shown
