"""`RunHistory`: the one `keras.callbacks.History` of a Run, across all its passes."""

from __future__ import annotations

import keras


class RunHistory(keras.callbacks.History):
    """A `keras.callbacks.History` that lasts across every pass of a `Run`.

    It does not reset on `on_train_begin`, and an epoch logged again (an epoch
    interrupted by a stop, then completed after a resume) replaces its earlier
    entry, so `epoch` is contiguous with no duplicates and `history[key][i]`
    belongs to `epoch[i]`.  An epoch end whose logs hold no training metric
    (stopped before any batch of the pass) leaves the history as it was.

    Example:

    ```python
    run = nbtrain.fit(model, x, y, epochs=3, display=False)
    run.wait().history["loss"]       # three values, one per epoch
    ```
    """

    def __init__(self) -> None:
        super().__init__()
        self.epoch: list[int] = []
        self._entries: dict[int, dict] = {}

    def on_train_begin(self, logs: dict | None = None) -> None:
        """Keep what earlier passes recorded."""

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = dict(logs or {})
        if not any(not key.startswith("val_") for key in logs):
            return
        self._entries[int(epoch)] = logs
        self._rebuild()

    def fill(self, key: str, values: dict[int, float]) -> None:
        """Give the recorded epochs that lack `key` its value from `values` (by epoch),
        so a log that appears mid-run (a steered `learning_rate`) lines up with `epoch`.

        Args:
            key: the log's name.
            values: epoch to value; epochs not in it are left as they are.
        """
        for epoch, logs in self._entries.items():
            if key not in logs and epoch in values:
                logs[key] = values[epoch]
        self._rebuild()

    def _rebuild(self) -> None:
        self.epoch = sorted(self._entries)
        history: dict[str, list] = {}
        for number in self.epoch:
            for key, value in self._entries[number].items():
                history.setdefault(key, []).append(value)
        self.history = history
        if self.model is not None:
            self.model.history = self


__all__ = ["RunHistory"]
