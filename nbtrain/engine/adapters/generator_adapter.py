"""A generator or any iterator of batches (and another iterable, such as a data
loader, read as one pass): read on; its steps must be given."""

from __future__ import annotations

from typing import Any

from nbtrain.engine.adapters.data_adapter import DataAdapter


class GeneratorAdapter(DataAdapter):
    """An iterator of `(x, y)` / `(x, y, sample_weight)` batches."""

    @staticmethod
    def accepts(data: Any) -> bool:
        return hasattr(data, "__next__")

    @classmethod
    def of_iterable(cls, data: Any) -> GeneratorAdapter:
        """Another iterable (a data loader...): one pass of it."""
        return cls(iter(data), type(data).__name__)


__all__ = ["GeneratorAdapter"]
