"""`TorchSteps`: the PyTorch fast path.

PyTorch runs eagerly, so there is no compiled step to reach: the gain over
`train_on_batch` is what it does around the step at every batch (build
checks, making the function, resetting the metrics, converting the logs to
Python numbers, which waits for the step).  `TorchSteps` calls Keras's
`train_function` / `test_function` directly, as Keras's `fit` does, with the
tensors made on the worker thread; metrics are reset once per epoch and the
module is in `train()` mode for training steps and `eval()` mode otherwise,
as in `fit`.
"""

from __future__ import annotations

from typing import Any

import keras

from nbtrain.engine.backends.base import ModelMetricSteps, to_tensors


class TorchSteps(ModelMetricSteps):
    """Runs Keras's PyTorch `train_function` / `test_function` on tensors made
    on the worker thread.

    Args:
        model: a compiled Keras 3 model (PyTorch backend).
        mode: `"train"` or `"test"`.
    """

    def __init__(self, model: Any, mode: str):
        super().__init__(model, mode)
        self._function: Any = None
        self._training = mode == "train"
        self._convert = keras.ops.convert_to_tensor

    @staticmethod
    def applies(model: Any) -> bool:
        """True on PyTorch for a Keras 3 model."""
        return (keras.backend.backend() == "torch" and hasattr(model, "make_train_function")
                and hasattr(model, "train"))

    def prepare(self, batch: tuple) -> Any:
        """The batch's NumPy arrays as tensors on Keras's device (any thread)."""
        return to_tensors(batch, self._convert)

    def _make_function(self, batch: Any) -> Any:
        model = self.model
        model._symbolic_build(data_batch=batch)
        if self._training:
            model.make_train_function()
            self._function = model.train_function
        else:
            model.make_test_function()
            self._function = model.test_function
        return self._function

    def run(self, items: list) -> Any:
        """Run the step on each `(x, y, sample_weight)` item; return the last
        step's logs (tensors)."""
        model = self.model
        function = self._function or self._make_function(items[0])
        if model.training != self._training:
            model.train(self._training)
        logs = None
        for item in items:
            logs = function([to_tensors(item, self._convert)])  # converts raw batches only
        return logs

    def sync(self) -> None:
        """Hand the model back as `fit` leaves it: in `eval()` mode; the next
        step makes the function again (the model may have been compiled again)."""
        self._function = None
        if self.model.training:
            self.model.eval()


__all__ = ["TorchSteps"]
