"""`DataAdapter`: one kind of input turned into what the loop reads, with its checks.

Each kind has its module (`array_adapter`, `sequence_adapter`,
`generator_adapter`, `tf_dataset_adapter`); `nbtrain.engine.adapters.get_data_adapter`
picks one.  An adapter holds the `source` the loop reads (a Sequence or an
iterator) and answers what depends on the kind: how many batches an epoch
has when `steps` is None, whether `shuffle` shuffles the batch order, and the
arguments that only arrays take."""

from __future__ import annotations

from typing import Any

from nbtrain.engine.batches import describe


class DataAdapter:
    """The source the loop reads, and the checks that depend on its kind.

    The base class is the iterator's behaviour (a generator, or any iterator):
    an epoch's length must be given.

    Args:
        source: what the loop reads.
        kind: what the user passed, for messages ("a generator").

    Attributes:
        shuffles_batches: `shuffle` shuffles the order of the source's batches
            (a Sequence's); arrays shuffle their samples themselves.
    """

    shuffles_batches = True
    unknown_length = "a generator"  # in the message for missing steps

    def __init__(self, source: Any, kind: str = "a generator"):
        self.source = source
        self.kind = kind

    def check(self, name: str) -> None:
        """Refuse a source that cannot be read (an empty Sequence); `name` is the argument."""

    def default_steps(self, name: str, what: str) -> int | None:
        """The steps when `name` (`steps_per_epoch` or `steps`) is None: None for a
        Sequence's length, else a ValueError (`what` is the function called)."""
        raise ValueError(
            f"`{name}=None` is only valid for a Sequence or a PyDataset; with "
            f"{self.unknown_length} {what} cannot know where an epoch ends. Pass `{name}` "
            "(the number of batches to draw)."
        )

    def validation_steps(self, steps: int | None) -> int | None:
        """The validation steps: `steps`, which an iterator needs."""
        if steps is None:
            raise ValueError(
                "`validation_steps=None` is only valid for a validation Sequence or "
                "tuple. When `validation_data` is a generator, pass `validation_steps` "
                "(the number of batches to draw from it at the end of every epoch).")
        return steps

    def refuse_array_arguments(self, name: str, y: Any, sample_weight: Any, batch_size: Any,
                               validation_split: Any) -> None:
        """Batches already hold their targets and weights: refuse the arguments only
        arrays take."""
        for arg, value in (("y", y), ("sample_weight", sample_weight),
                           ("batch_size", batch_size)):
            if value is not None:
                raise ValueError(
                    f"`{arg}` must be None when `{name}` is {self.kind}: its batches "
                    f"already hold {'the targets' if arg == 'y' else arg.replace('_', ' ')}"
                    f"; got {arg}={describe(value)}.")
        if validation_split:
            raise ValueError(
                f"`validation_split` is only for arrays; `{name}` is {self.kind}. Pass "
                "`validation_data` instead.")


__all__ = ["DataAdapter"]
