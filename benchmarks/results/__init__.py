"""Results: the schema-2 records (`schema`) and the one store that writes them (`store`)."""

from benchmarks.results.schema import Result, load
from benchmarks.results.store import ResultStore, atomic_write

__all__ = ["Result", "ResultStore", "atomic_write", "load"]
