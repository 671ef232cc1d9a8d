"""Exceptions that carry the fix in their message. The CLI prints them without a traceback."""

from __future__ import annotations


class MedzooError(Exception):
    """Base class: anything a user can fix by changing input, environment or files."""


class UnknownNameError(MedzooError, KeyError):
    """An unknown model, weights tag, dataset or suite name."""

    def __init__(self, kind: str, name: str, suggestions: list[str], listing: str | None = None) -> None:
        hint = f" Did you mean: {', '.join(suggestions)}?" if suggestions else ""
        self.kind, self.name, self.suggestions = kind, name, suggestions
        super().__init__(f"unknown {kind} {name!r}.{hint} (`{listing or f'medzoo ls {kind}s'}` lists them.)")

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class DuplicateNameError(MedzooError, ValueError):
    """A name registered twice."""


class WeightsMismatchError(MedzooError, RuntimeError):
    """A checkpoint does not fit the model it is loaded into."""


class HashMismatchError(MedzooError, RuntimeError):
    """A file's sha256 differs from the one recorded for it."""


class WeightsUnavailableError(MedzooError, RuntimeError):
    """Weights could not be fetched (offline, missing file, no network)."""


class InputShapeError(MedzooError, ValueError):
    """Images with the wrong number of channels or a wrong size for the model."""


class MissingExtraError(MedzooError, ImportError):
    """An optional dependency is not installed; the message names the `pip install 'medzoo[EXTRA]'` that brings it."""
