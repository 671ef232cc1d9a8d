"""A small typed registry: the one idiom behind models (and, in `benchmarks`, datasets and suites).

Entries are frozen spec dataclasses keyed by name. Registering a name twice raises (a silent overwrite would
change what a published result means); looking up an unknown name raises with did-you-mean suggestions.

The model registry `MODELS` and `register_model` live here rather than in `_factory`: the factory imports the
family files (`zoo.models`) to fill `MODELS`, so the family files must depend only on this module and `_specs`.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable, Iterator, Mapping
from typing import Generic, Protocol, TypeVar

from zoo._specs import Builder, ModelSpec, Task, WeightsSpec
from zoo.errors import DuplicateNameError, MissingExtraError, UnknownNameError


class _Named(Protocol):
    @property
    def name(self) -> str: ...


T = TypeVar("T", bound=_Named)


class Registry(Generic[T]):
    """Name → spec table with pattern filtering and helpful misses."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}
        self.absent: dict[str, str] = {}
        """Name pattern → why this install has no such entries (an extra that is not installed)."""

    def add(self, spec: T) -> T:
        if spec.name in self._entries:
            raise DuplicateNameError(f"{self.kind} {spec.name!r} is already registered")
        self._entries[spec.name] = spec
        return spec

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            why = self.absent_why(name)
            if why is not None:
                raise MissingExtraError(f"{self.kind} {name!r}: {why}") from None
            raise UnknownNameError(self.kind, name, self.suggest(name)) from None

    def absent_why(self, name: str) -> str | None:
        """Why this install has no entry `name` when an `absent` pattern matches it, else None."""
        return next((why for pattern, why in self.absent.items() if fnmatch.fnmatchcase(name, pattern)), None)

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


MODELS: Registry[ModelSpec] = Registry("model")


def register_model(
    *,
    name: str | None = None,
    family: str,
    paper: str,
    weights: Mapping[str, WeightsSpec] | None = None,
    default_tag: str | None = None,
    default_size: int,
    min_size: int,
    feature_dim: int,
    num_params: int,
    gflops: float,
    task: Task = Task.CLASSIFICATION,
    num_classes: int = 1000,
    size_divisor: int = 1,
    description: str = "",
    version: int = 1,
) -> Callable[[Builder], Builder]:
    """Decorator: register `builder(num_classes=..., in_chans=...)` under `name` (default: its __name__)."""

    def deco(builder: Builder) -> Builder:
        MODELS.add(ModelSpec(
            name=name or builder.__name__, family=family, task=task, paper=paper, builder=builder,
            weights=weights or {}, default_tag=default_tag, default_size=default_size, min_size=min_size,
            feature_dim=feature_dim, num_params=num_params, gflops=gflops, num_classes=num_classes,
            size_divisor=size_divisor, description=description or (builder.__doc__ or "").strip().split("\n")[0],
            version=version,
        ))
        return builder

    return deco
