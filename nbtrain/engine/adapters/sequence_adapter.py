"""An `nbtrain.Sequence`, a Keras 2 Sequence or a `keras.utils.PyDataset`: read as it is;
an epoch is its length, read again at every epoch."""

from __future__ import annotations

from typing import Any

from nbtrain.data import is_sequence, sequence_length
from nbtrain.engine.adapters.data_adapter import DataAdapter


def check_sequence(sequence: Any, name: str) -> int:
    """A Sequence's length, which must be at least 1."""
    try:
        length = sequence_length(sequence)
    except Exception as exc:
        raise TypeError(f"`{name}` ({type(sequence).__name__}) has no usable length: "
                        f"{type(exc).__name__}: {exc}. Define `__len__` (the number of "
                        "batches).") from exc
    if length < 1:
        raise ValueError(f"`{name}` is empty: {type(sequence).__name__} has length "
                         f"{length}. A Sequence must hold at least one batch (check its "
                         "`__len__` and the data it reads).")
    return length


class SequenceAdapter(DataAdapter):
    """A Sequence or a PyDataset: its batches by index, its length an epoch's."""

    def __init__(self, sequence: Any):
        super().__init__(sequence, "a Sequence or PyDataset")

    @staticmethod
    def accepts(data: Any) -> bool:
        return is_sequence(data)

    def check(self, name: str) -> None:
        check_sequence(self.source, name)

    def default_steps(self, name: str, what: str) -> int | None:
        return None  # its length, read again at every epoch

    def validation_steps(self, steps: int | None) -> int | None:
        return steps


__all__ = ["SequenceAdapter", "check_sequence"]
