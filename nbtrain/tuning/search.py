"""`Search`: a Keras Tuner search in a background thread, each trial an nbtrain `Run`;
`search()`: build one, attach its display, start it."""

from __future__ import annotations

import atexit
import contextlib
import sys
import threading
import weakref
from typing import Any, Callable

from nbtrain.run.state import State
from nbtrain.run.waiting import INTERRUPT_WAIT, STOP_TIMEOUT, Deadline, join, wait_until
from nbtrain.tuning.searchstate import (
    CONTROLS,
    CREATED,
    DONE,
    FAILED,
    FINISHED,
    PAUSE,
    PAUSED,
    PAUSING,
    RUN,
    RUNNING,
    STOP,
    STOPPED,
    STOPPING,
    SearchControl,
)
from nbtrain.tuning.trialfit import SearchBody
from nbtrain.tuning.trials import TrialBook, TrialRecord

_PAUSABLE = (RUNNING,)
_STOPPABLE = (RUNNING, PAUSING, PAUSED)  # of a search, and of a Run: where a stop acts
_RESUMABLE = (PAUSING, PAUSED, STOPPED)


class Search:
    """A Keras Tuner search (`tuner.search(x, y, ...)`) in a background thread.

    Every `model.fit` of a trial is an `nbtrain.Run` (`search.current`), so
    the controls act as a Run's do: exactly, after the current batch.  Keras
    Tuner's semantics are kept: its oracle chooses and scores the trials, its
    files are written, `tuner.get_best_hyperparameters()` and
    `tuner.get_best_models()` work afterwards, and a project reloaded with
    `overwrite=False` (in a new kernel) goes on as Keras Tuner does.  Works
    with any tuner whose trials call `HyperModel.fit` (RandomSearch,
    Hyperband, BayesianOptimization, and `HyperModel.fit` overrides).

    States (those of a Run): `'created'`, `'running'`, `'pausing'`,
    `'paused'` (the trial's Run holds between two batches, or the search holds
    before the next trial's first batch), `'stopping'`, `'stopped'` (the
    trial's Run has stopped; the search thread holds it, `resume()` goes on at
    its exact next batch), `'finished'` (`tuner.search` returned), `'failed'`
    (`tuner.search` raised: `wait()` raises it).

    `skip()` ends the trial in progress after its current batch: its Run is
    closed and the oracle scores the trial on the epochs it completed (its
    record's status is `'skipped'`); a trial skipped before its first epoch
    ended has no result and is marked `FAILED`, as Keras Tuner marks a trial
    that gives none (Keras Tuner's `FailedTrialError`).

    Args: those of `tuner.search` (`x`, `y` and `model.fit`'s keyword
        arguments; `workers`, `use_multiprocessing` and `max_queue_size` too,
        for nbtrain's data workers).  Use `nbtrain.search`, which also shows
        the search's display and starts it.

    Example:

    ```python
    search = nbtrain.search(tuner, x_train, y_train, epochs=5,
                            validation_data=(x_val, y_val))
    search.pause(); search.resume()
    search.skip()                       # this trial is clearly bad
    tuner = search.wait()
    best = tuner.get_best_models()[0]
    ```
    """

    def __init__(self, tuner: Any, x: Any, y: Any = None, *, epochs: int = 1,
                 validation_data: Any = None, callbacks: Any = None, **fit_kwargs: Any):
        for name in ("search", "oracle", "hypermodel", "on_trial_begin", "on_trial_end"):
            if not hasattr(tuner, name):
                raise TypeError(f"nbtrain.search needs a Keras Tuner tuner (a "
                                f"keras_tuner.Tuner), got {type(tuner).__name__}.")
        self._tuner = tuner
        self._control = SearchControl(self)
        self._book = TrialBook()
        self._book.load_earlier(tuner.oracle)
        self._body = SearchBody(tuner, (x,) if y is None else (x, y),
                                dict(epochs=epochs, validation_data=validation_data,
                                     callbacks=list(callbacks or []), **fit_kwargs),
                                self._control, self._book)
        self._thread: threading.Thread | None = None

    # -- reading ----------------------------------------------------------------------

    @property
    def tuner(self) -> Any:
        """The Keras Tuner tuner searched."""
        return self._tuner

    @property
    def state(self) -> State:
        """`'created'`, `'running'`, `'pausing'`, `'paused'`, `'stopping'`, `'stopped'`,
        `'finished'` or `'failed'` (a `str`)."""
        return State(self._control.state)

    @property
    def trials(self) -> list[TrialRecord]:
        """One `TrialRecord` per trial, in the order they started (an earlier
        search's ended trials of the same project first): `trial_id`,
        `hyperparameters`, `status`, `score`, `run` (and `runs`, `started`, `ended`)."""
        return self._book.all()

    @property
    def current(self) -> Any:
        """The `nbtrain.Run` of the trial in progress (started), or None between trials."""
        return self._control.current

    @property
    def max_trials(self) -> int | None:
        """The oracle's `max_trials` (None if it has none)."""
        return getattr(self._tuner.oracle, "max_trials", None)

    @property
    def exception(self) -> BaseException | None:
        """What `tuner.search` raised, if the search failed."""
        return self._control.exception

    def allowed_actions(self) -> set[str]:
        """The controls that would act now: a subset of `{'pause', 'resume', 'stop', 'skip'}`."""
        control = self._control
        with control.cond:
            if control.closing:
                return set()
            allowed = set(CONTROLS.get(control.state, ()))
            if control.current is not None and control.skipping is not control.current:
                allowed.add("skip")
            return allowed

    def __repr__(self) -> str:
        done = sum(record.status != "running" for record in self.trials)
        total = "?" if self.max_trials is None else self.max_trials
        return f"<nbtrain.Search {self.state} trials {done}/{total}>"

    def add_listener(self, fn: Callable[[Any, str, Any], None]) -> Callable[[], None]:
        """Call `fn(search, event, detail)` on each event of the search.

        Events: `'state'` with `(old, new)`; `'trial_begin'` and `'trial_end'`
        with the `TrialRecord`; `'run'` with a trial's `Run` before it starts
        (a display may add its callbacks to it then).  Called in order, outside
        the search's lock, on the thread that made the change; an exception in
        a listener is warned about, never breaks the search.

        Returns:
            A function that removes the listener.

        Example:

        ```python
        search.add_listener(lambda s, event, detail: print(event, detail))
        ```
        """
        return self._control.add_listener(fn)

    # -- controls ---------------------------------------------------------------------

    def start(self) -> Search:
        """Start `tuner.search` in a background thread; returns the search at once.

        Raises:
            RuntimeError: already started.
        """
        control = self._control
        with control.cond:
            if control.state != CREATED:
                raise RuntimeError(f"This search was already started (it is {control.state}).")
            self._thread = threading.Thread(target=self._body.main, name="nbtrain-search",
                                            daemon=True)
            control.change(RUNNING)
        self._thread.start()
        _STARTED.add(self)
        control.dispatch()
        return self

    def pause(self) -> bool:
        """Hold the search after the current batch of the trial in progress (or
        before the next trial's first batch); returns at once (`'pausing'`).

        Returns:
            True if the search was running; else False, with a `RuntimeWarning`.
        """
        return self._ask("pause", _PAUSABLE, PAUSE, PAUSING, lambda run: run.pause(),
                         (RUNNING,))

    def stop(self) -> bool:
        """Stop after the current batch: the trial's Run stops (its data workers
        end) and the search holds it; `resume()` goes on at its exact next batch.

        Returns:
            True if the search was running, pausing or paused; else False, warned.
        """
        return self._ask("stop", _STOPPABLE, STOP, STOPPING, lambda run: run.stop(),
                         _STOPPABLE)

    def resume(self) -> bool:
        """Go on: a paused trial with its next batch, a stopped one at its exact next batch.

        Returns:
            True if the search was pausing, paused or stopped; else False, warned.
        """
        return self._ask("resume", _RESUMABLE, RUN, RUNNING, lambda run: run.resume(),
                         (PAUSING, PAUSED))

    def _ask(self, what: str, sources: tuple, want: str, target: str, act: Callable,
             acts_on: tuple) -> bool:
        control = self._control
        with control.cond:
            self._require_started(what)
            if control.state not in sources or control.closing:
                return control.refused(what)
            control.want = want
            control.change(target)
            run = control.current
            if run is not None and run.state in acts_on and run is not control.skipping:
                act(run)  # exact: the Run acts after its current batch
        control.dispatch()
        return True

    def skip(self) -> bool:
        """End the trial in progress after its current batch; the next one starts.

        The oracle scores the skipped trial on the epochs it completed (as any
        trial: its best epoch by the objective), and its record's status is
        `'skipped'`; a trial skipped before its first epoch ended is marked
        `FAILED` (Keras Tuner's `FailedTrialError`: it has no result).  A
        paused or stopped search stays so: the next trial waits for `resume()`.

        Returns:
            True if a trial was in progress; else False, with a `RuntimeWarning`.
        """
        control = self._control
        with control.cond:
            self._require_started("skip")
            run = control.current
            if control.state in (FINISHED, FAILED) or control.closing:
                return control.refused("skip")
            if run is None or control.skipping is run:
                return control.refused("skip", "no trial is training (between two trials)"
                                       if run is None else "this trial is already skipped")
            control.skipping = run
            control.cond.notify_all()
            if run.state in _STOPPABLE:
                run.stop()
        control.dispatch()
        return True

    def close(self, timeout: float | None = None) -> None:
        """End the search for good: stop it, and end `tuner.search` (the search
        thread ends).  The trial in progress stays ongoing in the oracle (as
        after an interrupted kernel: Keras Tuner runs it again when the project
        is loaded with `overwrite=False`).  Closing twice, or a finished search, is a no-op.

        Args:
            timeout: seconds to wait at most for the search thread (None: no limit).

        Raises:
            TimeoutError: the search thread was still ending after `timeout` s.
        """
        control = self._control
        with control.cond:
            if control.state == CREATED or self._thread is None:
                control.closing = True
                control.change(STOPPED)
                return
            control.closing, control.want = True, STOP
            if control.state in _STOPPABLE:
                control.change(STOPPING)
            run = control.current
            if run is not None and run.state in _STOPPABLE:
                run.stop()
            control.cond.notify_all()
        control.dispatch()
        join(self._thread, Deadline(timeout))

    def wait(self, timeout: float | None = None) -> Any:
        """Block until the search is stopped, finished or failed; return the tuner.

        A Ctrl-C while waiting stops the search and is raised again within
        about a second.

        Args:
            timeout: seconds to wait at most (None: no limit).

        Returns:
            The tuner (`tuner.get_best_models()`, ...).

        Raises:
            Exception: what `tuner.search` raised, with its traceback.
            TimeoutError: `timeout` passed first.
            RuntimeError: not started, or called on the search thread.
        """
        control = self._control
        self._require_started("wait")
        if threading.current_thread() is self._thread:
            raise RuntimeError("search.wait() cannot be called on the search thread.")
        deadline = Deadline(timeout)
        try:
            with control.cond:
                wait_until(control.cond, lambda: control.state in DONE, deadline,
                           lambda: f"The search is still {control.state} after {timeout} s.")
                ended = control.state != STOPPED
            if ended:
                join(self._thread, deadline)
        except KeyboardInterrupt:
            if control.state in _STOPPABLE:
                self.stop()
                with contextlib.suppress(TimeoutError), control.cond:
                    wait_until(control.cond, lambda: control.state in DONE,
                               Deadline(INTERRUPT_WAIT))
            raise
        if control.state == FAILED and control.exception is not None:
            raise control.exception
        return self._tuner

    def set_tuner_verbose(self, verbose: int) -> None:
        """Set `tuner.search`'s `verbose` (Keras Tuner's text per trial; 0: none),
        before `start()`."""
        self._body.kwargs["verbose"] = verbose

    def _require_started(self, what: str) -> None:
        if self._control.state == CREATED:
            raise RuntimeError(f"This search has not started: call search.start() before "
                               f"search.{what}().")


# Searches started: at exit, those still searching are named on stderr and closed.
_STARTED: weakref.WeakSet = weakref.WeakSet()


def _close_unfinished_searches() -> None:
    """At interpreter exit (before the Runs' own exit hook: threading runs its exit
    hooks last registered first), close the searches still going, so the trial in
    progress stays ongoing in the oracle as after an interrupted kernel."""
    for found in list(_STARTED):
        if found.state in _STOPPABLE:
            sys.stderr.write(
                f"nbtrain: the program is exiting while a search is still running ({found!r}): "
                "it is stopped now. Call `search.wait()` before the end of the script to let "
                "it finish.\n")
            sys.stderr.flush()
        if found.state not in (FINISHED, FAILED):
            with contextlib.suppress(Exception):
                found.close(timeout=STOP_TIMEOUT + 1)


getattr(threading, "_register_atexit", atexit.register)(_close_unfinished_searches)


def search(tuner: Any, x: Any, y: Any = None, *, epochs: int = 1, validation_data: Any = None,
           callbacks: Any = None, display: bool | None = None, **fit_kwargs: Any) -> Search:
    """Run a Keras Tuner search in the background, each trial an nbtrain `Run`; returns at once.

    Takes the arguments of `tuner.search` (those of `model.fit`, passed to
    every trial; Hyperband sets each trial's `epochs` and `initial_epoch`),
    plus `display`.  Steer it with `search.pause()`, `search.resume()`,
    `search.stop()`, `search.skip()`; `search.wait()` returns the tuner.

    Args:
        tuner: a `keras_tuner` tuner (RandomSearch, Hyperband, BayesianOptimization...).
        x: the training data, as `model.fit` takes it (also an `nbtrain.Sequence`).
        y: targets, when `x` is arrays.
        epochs: epochs per trial (Hyperband sets its own).
        validation_data: as `model.fit`'s.
        callbacks: Keras callbacks for every trial (Keras Tuner deep-copies them).
        display: None shows the search's dashboard in a notebook; True always;
            False nothing (Keras Tuner's own text lines still print unless `verbose=0`).
        **fit_kwargs: `model.fit`'s other arguments (`batch_size`, ...) and
            nbtrain's `workers`, `use_multiprocessing`, `max_queue_size`.

    Returns:
        The started `nbtrain.tuning.Search`.

    Example:

    ```python
    tuner = keras_tuner.RandomSearch(build_model, objective="val_loss", max_trials=10)
    search = nbtrain.search(tuner, x, y, epochs=5, validation_split=0.2)
    search.skip()
    tuner = search.wait()
    ```
    """
    if display not in (None, True, False):
        raise ValueError(f"`display` must be None, True or False, got {display!r}.")
    found = Search(tuner, x, y, epochs=epochs, validation_data=validation_data,
                   callbacks=callbacks, **fit_kwargs)
    shown = None
    if display is not False:
        try:
            from nbtrain.dashboard.searchboard import attach_search_display
        except ImportError:  # the search's dashboard is not built yet
            attach_search_display = None
        if attach_search_display is not None:
            shown = attach_search_display(found, display)
    if shown is not None and "verbose" not in fit_kwargs:
        found.set_tuner_verbose(0)  # the dashboard shows what Keras Tuner would print
    return found.start()


__all__ = ["Search", "search"]
