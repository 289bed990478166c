"""`SearchBody`: what the search thread does; `TrialFit`: one `model.fit` of a
trial, served by an nbtrain `Run`.

`SearchBody.main` runs `tuner.search` with the `TunerHooks` installed: each
trial's begin and end update its `TrialRecord`, and each `model.fit` of a
trial's model is a `TrialFit`.

On the search thread, in place of Keras's `model.fit(x, y, epochs=...,
initial_epoch=..., callbacks=[...Keras Tuner's...], ...)`: the arguments make
a `Run` (Keras Tuner's `verbose` is dropped: the search's display shows the
run), which starts once the search is running (`SearchControl.hold`), and the
search thread waits on it:

- finished: its History is `model.fit`'s result, for Keras Tuner;
- failed: its exception is raised (Keras Tuner marks the trial, and retries);
- stopped by the user: the search thread holds, and the same Run resumes at
  its exact next batch on `search.resume()`;
- stopped by a skip: the Run is closed (`on_train_end`) and its History (the
  epochs it completed) is the result: the oracle scores the trial on them as
  on any trial.  A trial skipped before its first epoch ended has no result:
  it raises Keras Tuner's `FailedTrialError`, so the oracle marks it
  `FAILED` (as Keras Tuner marks a trial that cannot give a result, without
  a retry; note that Keras Tuner ends a search after
  `max_consecutive_failed_trials`, 3, such trials in a row).
"""

from __future__ import annotations

import threading
from typing import Any

from nbtrain.run import Run
from nbtrain.tuning.hooks import TunerHooks
from nbtrain.tuning.searchstate import (
    FAILED,
    FINISHED,
    RUN,
    RUNNING,
    STOPPED,
    SearchClosed,
    SearchControl,
)
from nbtrain.tuning.trials import TrialBook


class SearchBody:
    """The search thread: `tuner.search(*args, **kwargs)` with its trials served.

    Args:
        tuner: the tuner.
        args, kwargs: `tuner.search`'s arguments.
        control: the search's `SearchControl` (its final state is set here).
        book: the search's `TrialBook`.
    """

    def __init__(self, tuner: Any, args: tuple, kwargs: dict, control: SearchControl,
                 book: TrialBook):
        self.tuner, self.args, self.kwargs, self.control, self.book = (
            tuner, args, kwargs, control, book)
        self.fits: dict[str, TrialFit] = {}
        self.thread: threading.Thread | None = None

    def main(self) -> None:
        """The search thread's body: ends in `finished`, `stopped` (closed) or `failed`."""
        control, final = self.control, FINISHED
        self.thread = threading.current_thread()
        hooks = TunerHooks(self.tuner, self.trial_begin, self.trial_end, self.serve,
                           lambda: threading.current_thread() is self.thread)
        try:
            with hooks:
                self.tuner.search(*self.args, **self.kwargs)
        except SearchClosed:
            final = STOPPED
        except BaseException as error:  # noqa: BLE001 - wait() raises it in the caller
            final = FAILED
            control.exception = error
        with control.cond:
            control.current = None
            control.closing = True  # nothing to resume: the search thread has ended
            control.change(final)
        control.dispatch()

    def trial_begin(self, trial: Any) -> None:
        """Keras Tuner begins `trial`: its record, and the TrialFit serving its fits."""
        record = self.book.begin(trial)
        self.fits[trial.trial_id] = TrialFit(self.control, record)
        self.control.emit("trial_begin", record)
        self.control.dispatch()

    def trial_end(self, trial: Any) -> None:
        """Keras Tuner's oracle has ended `trial`: its verdict into the record."""
        fit = self.fits.pop(trial.trial_id, None)
        if fit is None:
            return
        fit.restore()
        self.book.end(fit.record, self.tuner.oracle.get_trial(trial.trial_id),
                      skipped=fit.skipped)
        self.control.emit("trial_end", fit.record)
        self.control.dispatch()

    def serve(self, model: Any, *args: Any, **kwargs: Any) -> Any:
        """`model.fit` of a trial's model, on the search thread: the trial's TrialFit."""
        fits = list(self.fits.values())
        if not fits:  # a fit outside a trial (a tuner's own): Keras's
            return type(model).fit(model, *args, **kwargs)
        return fits[-1](model, *args, **kwargs)


class TrialFit:
    """Serve `model.fit` calls of one trial with Runs.

    Args:
        control: the search's `SearchControl`.
        record: the trial's `TrialRecord` (each Run is appended to `record.runs`).
    """

    def __init__(self, control: SearchControl, record: Any):
        self.control = control
        self.record = record
        self.skipped = False
        self._debug: Any = None  # Keras Tuner's DEBUG, held off while a skip's error passes

    def __call__(self, model: Any, *args: Any, **kwargs: Any) -> Any:
        """`model.fit(*args, **kwargs)` as a Run; returns its History."""
        control = self.control
        kwargs.pop("verbose", None)
        run = Run(model, *args, **kwargs)
        run.add_listener(control.on_run_change)
        self.record.runs.append(run)
        control.emit("run", run)
        control.dispatch()
        control.hold(lambda: control.want == RUN)
        with control.cond:
            if control.closing:
                raise SearchClosed()
            run.start()
            control.current = run
            control.change(RUNNING)
        control.dispatch()
        try:
            return self._train(run)
        finally:
            with control.cond:
                control.current = None
                if control.skipping is run:
                    control.skipping = None
            run.close()

    def _train(self, run: Run) -> Any:
        control = self.control
        while True:
            run.wait()  # a failure is raised: Keras Tuner records the trial's
            with control.cond:
                if run.state == FINISHED:
                    return run.history
                skipped = control.skipping is run
            if not skipped:  # stopped by the user (or at exit): hold the trial
                control.hold(lambda: control.want == RUN or control.skipping is run)
                with control.cond:
                    skipped = control.skipping is run
                    if not skipped:
                        control.change(RUNNING)
                        run.resume()
                control.dispatch()
            if skipped:
                return self._skipped(run)

    def _skipped(self, run: Run) -> Any:
        self.skipped = True
        run.close()
        if not run.history.epoch:
            from keras_tuner.errors import FailedTrialError
            from keras_tuner.src import config as tuner_config

            # A skip is the user's choice, not an error: Keras Tuner (DEBUG, its default)
            # would print the traceback; `restore()` sets it back at the trial's end.
            self._debug, tuner_config.DEBUG = tuner_config.DEBUG, False
            raise FailedTrialError(
                f"Trial {self.record.trial_id} was skipped (search.skip()) before its "
                "first epoch ended: it has no result.")
        return run.history

    def restore(self) -> None:
        """Set Keras Tuner's DEBUG back, if a skip held it off."""
        if self._debug is not None:
            from keras_tuner.src import config as tuner_config

            tuner_config.DEBUG, self._debug = self._debug, None


__all__ = ["SearchBody", "TrialFit"]
