"""`JaxSteps`: the JAX fast path.

Keras's JAX `train_function` is stateless: it takes the state (trainable,
non-trainable, optimizer and metric variables) and returns the new one,
donating the old buffers.  Keras's own `fit` keeps that state outside the
model for an epoch and writes it back once; `train_on_batch` takes it out and
writes it back at every step (most of a small model's step time).  `JaxSteps`
does what `fit` does, across the passes of a `FitLoop`: the state is taken out
at the first `run()` after a `sync()`, stays out while steps run, and goes
back at every `sync()` (the loop's epoch end, a hold in the gate, the end of a
pass).  While it is out the model's `_jax_state` points at it and
`_jax_state_synced` is False, Keras's own protocol: a callback reading
`self.model` writes it back (Keras's `Callback.model` calls
`jax_state_sync`), and the next `run()` takes it out again.
"""

from __future__ import annotations

from typing import Any

import jax

from nbtrain.engine.backends.base import ModelMetricSteps

_TRAIN = ("trainable_variables", "non_trainable_variables", "optimizer_variables",
          "metrics_variables")
_TEST = ("trainable_variables", "non_trainable_variables", "metrics_variables")


def _deleted(state: tuple) -> bool:
    """True when a buffer of `state` was donated to a step (it cannot be read)."""
    return any(getattr(value, "is_deleted", lambda: False)()
               for group in state for value in group)


class JaxSteps(ModelMetricSteps):
    """Runs Keras's compiled JAX `train_function` / `test_function` on a state
    kept outside the model between syncs.

    The batch goes to the device once, when the compiled step is called (on an
    accelerator `prepare` puts it there on the worker thread); `run` calls the
    function with `steps_per_execution` items (Keras's function takes them from
    an iterator, as in `fit`) and keeps the logs as device arrays (JAX's
    dispatch stays asynchronous until a callback needs numbers).

    Args:
        model: a compiled Keras 3 model (JAX backend).
        mode: `"train"` or `"test"`.
    """

    def __init__(self, model: Any, mode: str):
        super().__init__(model, mode)
        self._state: tuple | None = None  # the state while it is out of the model
        self._holder: dict = {}  # the model's `_jax_state` while it is out
        self._names = _TRAIN if mode == "train" else _TEST
        self._function: Any = None
        self._on_cpu = jax.default_backend() == "cpu"
        self._per_call = 1  # the model's steps_per_execution, read when the state is taken

    @staticmethod
    def applies(model: Any) -> bool:
        """True on JAX for a Keras 3 model, with no `keras.distribution` set (a
        distributed layout places data and state itself: `BatchSteps` then)."""
        import keras

        return (
            keras.backend.backend() == "jax"
            and hasattr(model, "jax_state_sync")
            and hasattr(model, "make_train_function")
            and keras.distribution.distribution() is None
        )

    def prepare(self, batch: tuple) -> Any:
        """On an accelerator, the batch's arrays put on the device (on a worker
        thread when there is one); on the CPU, the batch as it is: the compiled
        step takes NumPy arrays in its C++ dispatch for less than `jax.device_put`
        costs in Python (measured: about 50 us against 500-1000 us a batch)."""
        if self._on_cpu:
            return batch
        try:
            return jax.device_put(batch)
        except (TypeError, ValueError):  # leaves JAX cannot place: the step converts them
            return batch

    def _take_state(self, batch: Any) -> tuple:
        """Build the model if needed, make the step function and take the state out."""
        model = self.model
        model._symbolic_build(data_batch=batch)
        if self.mode == "train":
            model.make_train_function()
            self._function = model.train_function
            groups = (model.trainable_variables, model.non_trainable_variables,
                      model.optimizer.variables, model.metrics_variables)
        else:
            model.make_test_function()
            self._function = model.test_function
            groups = (model.trainable_variables, model.non_trainable_variables,
                      model.metrics_variables)
        state = tuple([v.value for v in variables] for variables in groups)
        self._holder = dict(zip(self._names, state))
        # Keras's attribute setter would track (copy) the dict and its lists: set
        # the plain dict, which `run` keeps up to date.
        object.__setattr__(model, "_jax_state", self._holder)
        object.__setattr__(model, "_jax_state_synced", False)
        self._per_call = self.steps_per_execution
        return state

    def run(self, items: list) -> Any:
        """Run the step on each `(x, y, sample_weight)` item; return the last
        step's logs (device arrays)."""
        state = self._state
        if state is None or self.model._jax_state_synced:  # synced since: take it again
            state = self._take_state(items[0])
        function = self._function
        batches = iter(items)
        # Keras's function runs up to steps_per_execution items per call.
        calls = -(-len(items) // self._per_call)
        logs = None
        try:
            for _ in range(calls):
                logs, state = function(state, batches)
        except BaseException:
            # A step that failed before it ran (a trace error) left the state as it
            # was: `sync` writes it back.  One that ran took the buffers (donated).
            if _deleted(state):
                self._state = None
                object.__setattr__(self.model, "_jax_state", None)  # nothing left to sync
            else:
                self._keep(state)
            raise
        self._keep(state)
        return logs

    def _keep(self, state: tuple) -> None:
        """Hold `state` as the current one, in the model's `_jax_state` too (what
        Keras's `jax_state_sync` writes back when a callback reads `self.model`)."""
        self._state = state
        self._holder.update(zip(self._names, state))

    def sync(self) -> None:
        """Write the state back into the model (Keras's `jax_state_sync`)."""
        if self._state is not None:
            self._state = None
            model = self.model
            model.jax_state_sync()
            object.__setattr__(model, "_jax_state", None)


__all__ = ["JaxSteps"]
