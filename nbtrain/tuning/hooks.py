"""`TunerHooks`: what a search wraps on its tuner while `tuner.search` runs.

Three instance attributes shadow the tuner's methods for the time of the
search and are removed after it (the class's methods are never touched):

- `tuner.on_trial_begin(trial)` and `tuner.on_trial_end(trial)`: the search's
  records (Keras Tuner's own methods still run: the oracle ends the trial);
- `tuner.hypermodel.fit(hp, model, ...)`: on the search thread, the model's
  `fit` is served by the search (`model.fit` is set on the model instance
  while the trial's `HyperModel.fit` runs, so an override of
  `HyperModel.fit` that calls `model.fit` itself is served the same way).
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable

_NAMES = ("on_trial_begin", "on_trial_end")


class TunerHooks:
    """Install and remove the search's wrappers on a tuner (a context manager).

    Args:
        tuner: the Keras Tuner tuner.
        begin: called with the trial before Keras Tuner's `on_trial_begin`.
        end: called with the trial after Keras Tuner's `on_trial_end`.
        serve: `serve(model, *args, **kwargs)`, the `model.fit` of a trial's model.
        active: True on the thread whose fits are served (the search thread).
    """

    def __init__(self, tuner: Any, begin: Callable, end: Callable, serve: Callable,
                 active: Callable[[], bool]):
        self.tuner, self.begin, self.end, self.serve, self.active = (
            tuner, begin, end, serve, active)
        self._saved: list[tuple[Any, str, bool, Any]] = []

    def __enter__(self) -> TunerHooks:
        tuner, hypermodel = self.tuner, self.tuner.hypermodel
        original_begin, original_end = tuner.on_trial_begin, tuner.on_trial_end
        original_fit = hypermodel.fit

        def on_trial_begin(trial: Any) -> None:
            self.begin(trial)
            original_begin(trial)

        def on_trial_end(trial: Any) -> None:
            try:
                original_end(trial)
            finally:
                self.end(trial)

        def fit(hp: Any, model: Any, *args: Any, **kwargs: Any) -> Any:
            if not self.active():
                return original_fit(hp, model, *args, **kwargs)
            model.fit = lambda *a, **k: self.serve(model, *a, **k)
            try:
                return original_fit(hp, model, *args, **kwargs)
            finally:
                with contextlib.suppress(AttributeError):
                    del model.fit

        self._shadow(tuner, "on_trial_begin", on_trial_begin)
        self._shadow(tuner, "on_trial_end", on_trial_end)
        self._shadow(hypermodel, "fit", fit)
        return self

    def _shadow(self, obj: Any, name: str, value: Any) -> None:
        had = name in vars(obj)
        self._saved.append((obj, name, had, vars(obj).get(name)))
        setattr(obj, name, value)

    def __exit__(self, *exc: Any) -> None:
        while self._saved:
            obj, name, had, value = self._saved.pop()
            if had:
                setattr(obj, name, value)
            else:
                with contextlib.suppress(AttributeError):
                    delattr(obj, name)


__all__ = ["TunerHooks"]
