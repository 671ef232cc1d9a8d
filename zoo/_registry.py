"""A small typed registry: the one idiom behind models (and, in `benchmarks`, datasets and suites).

Entries are frozen spec dataclasses keyed by name. Registering a name twice raises (a silent overwrite would
change what a published result means); looking up an unknown name raises with did-you-mean suggestions.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable, Iterator
from typing import Generic, Protocol, TypeVar

from zoo.errors import DuplicateNameError, UnknownNameError


class _Named(Protocol):
    @property
    def name(self) -> str: ...


T = TypeVar("T", bound=_Named)


class Registry(Generic[T]):
    """Name → spec table with pattern filtering and helpful misses."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def add(self, spec: T) -> T:
        if spec.name in self._entries:
            raise DuplicateNameError(f"{self.kind} {spec.name!r} is already registered")
        self._entries[spec.name] = spec
        return spec

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(self.kind, name, self.suggest(name)) from None

    def suggest(self, name: str, n: int = 3) -> list[str]:
        names = list(self._entries)
        close = difflib.get_close_matches(name, names, n=n, cutoff=0.5)
        prefixed = [k for k in names if k.startswith(name) and k not in close]
        return (close + prefixed)[:n]

    def names(self, pattern: str = "*", where: Callable[[T], bool] | None = None) -> list[str]:
        return sorted(
            k
            for k, v in self._entries.items()
            if fnmatch.fnmatchcase(k, pattern) and (where is None or where(v))
        )

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[T]:
        return iter(self._entries[k] for k in sorted(self._entries))

    def __len__(self) -> int:
        return len(self._entries)
