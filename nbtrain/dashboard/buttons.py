"""A dashboard's buttons (`ControlButtons`) and what they act on (`Controls`).

The buttons act on anything that has what `Controls` declares: an
`nbtrain.Run`, or the controls of a blocking fit (`nbtrain.dashboard.cell`),
which implements it by the same table (`nbtrain.run.state.CONTROLS`).
`RunControls` binds them to a Run and follows it: it needs what
`ControlledRun` declares of a Run (an `nbtrain.Run` has all of it); a test may
bind any object that has it.  Clicks are handled on the main thread (the
kernel runs click handlers there); state changes arrive from whichever thread
made them, through the listener.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

from nbtrain.dashboard import failure
from nbtrain.dashboard.layout import set_traits
from nbtrain.run.state import FAILED


class Controls(Protocol):
    """What a dashboard's buttons act on: a state, the actions it allows, and the
    actions (`'continue'` is `resume(epochs=N)`)."""

    state: str

    def allowed_actions(self) -> set[str]:
        """A subset of `{'pause', 'resume', 'stop', 'continue'}`: the buttons shown."""

    def add_listener(self, fn: Callable[[Any, str, str], Any]) -> Callable[[], None]:
        """Call `fn(controls, old_state, new_state)` on every change; return its remover."""

    def pause(self) -> bool: ...

    def resume(self, epochs: int | None = None) -> bool: ...

    def stop(self) -> bool: ...


class ControlledRun(Controls, Protocol):
    """What a dashboard's controls use of a Run: its `Controls`, and what it follows."""

    epochs: int
    epoch: int
    batch: int
    steps: int | None
    history: Any
    exception: BaseException | None


class ControlButtons:
    """A dashboard's Pause/Resume, Stop and Continue, wired to a `Controls`.

    One button per action a user means: Pause toggles (Resume while the
    controls allow no pause), Continue resumes to the epoch in its field.

    Args:
        view: the dashboard's `DashboardView`.
        controls: what the clicks act on.
        failed: called, on the main thread, with an exception a control raised (the
            action became illegal meanwhile).
    """

    def __init__(self, view: Any, controls: Controls, failed: Callable[[Exception], None]):
        self.view = view
        self.controls = controls
        self.failed = failed

    def bind(self) -> None:
        """Wire the buttons' clicks and show the controls row."""
        view = self.view
        view.pause.on_click(self._on_pause_click)
        view.stop.on_click(self._on_stop_click)
        view.continue_.on_click(self._on_continue_click)
        set_traits(view.controls.layout, display=None)

    def unbind(self) -> None:
        """Detach the clicks (the widgets stay)."""
        view = self.view
        view.pause.on_click(self._on_pause_click, remove=True)
        view.stop.on_click(self._on_stop_click, remove=True)
        view.continue_.on_click(self._on_continue_click, remove=True)

    def _act(self, action: Callable[[Any], Any]) -> None:
        try:
            action(self.controls)
        except Exception as exc:  # an action that became illegal meanwhile
            self.failed(exc)

    def _on_pause_click(self, _button: Any) -> None:
        def toggle(controls: Any) -> None:
            if "pause" in controls.allowed_actions():
                controls.pause()
            else:
                controls.resume()
        self._act(toggle)

    def _on_stop_click(self, _button: Any) -> None:
        self._act(lambda controls: controls.stop())

    def _on_continue_click(self, _button: Any) -> None:
        epochs = int(self.view.continue_epochs.value)
        self._act(lambda controls: controls.resume(epochs=epochs))


class RunControls:
    """Binds a dashboard's Pause/Resume, Stop and Continue to a Run and follows it.

    Args:
        dashboard: the `Dashboard` (its `presenter`, `set_state` and `message`).
        run: the Run.
        follows_history: the dashboard is not one of the run's callbacks (it was
            made for a run already started): it follows the run's History.
    """

    def __init__(self, dashboard: Any, run: ControlledRun, follows_history: bool = False):
        self.dashboard = dashboard
        self.presenter = dashboard.presenter
        self.run = run
        self.follows_history = follows_history
        self.buttons = ControlButtons(self.presenter.view, run, self._failed)
        self._remove_listener: Callable[[], None] | None = None

    def bind(self) -> None:
        """Wire the buttons, load the run's History so far and follow its state."""
        presenter, run = self.presenter, self.run
        self.buttons.bind()
        history = getattr(run, "history", None)
        if history is not None and getattr(history, "epoch", None):
            with presenter.lock:
                presenter.tracker.load_history(history)
                presenter.changed()
        self._remove_listener = run.add_listener(self.on_run_state)
        self.on_run_state(run, None, run.state)

    def unbind(self) -> None:
        """Stop following the run."""
        if self._remove_listener is not None:
            self._remove_listener()
            self._remove_listener = None

    def on_run_state(self, run: Any, old: str | None, new: str) -> None:
        """Listener: show the run's new state and enable the legal controls."""
        try:
            allowed = frozenset(run.allowed_actions())
        except Exception:  # a run without the method: no controls
            allowed = frozenset()
        if new == FAILED:
            self.dashboard.failure(getattr(run, "exception", None), failure.headline_for(run))
        elif old == FAILED:  # resumed once fixed: the report is over
            self.dashboard.clear_failure()
        if self.follows_history:
            self._refresh_from_run()
        self.dashboard.set_state(new)
        with self.presenter.lock:
            self.presenter.view.set_controls(allowed, new, self._continue_default())

    def _continue_default(self) -> int | None:
        run, tracker = self.run, self.presenter.tracker
        target = getattr(run, "epochs", None) or self.presenter.epochs()
        if target is None:
            return None
        done = getattr(run, "epoch", None)
        if done is None:
            done = tracker.epochs_done
        if done < target:
            return int(target)
        span = target - (tracker.first_epoch or 0)
        return int(target + max(span, 1))

    def _refresh_from_run(self) -> None:
        """A dashboard that is not one of the run's callbacks follows its History."""
        run, presenter = self.run, self.presenter
        with presenter.lock:
            tracker = presenter.tracker
            tracker.reset()
            tracker.load_history(getattr(run, "history", None))
            tracker.epoch = int(getattr(run, "epoch", tracker.epoch) or 0)
            tracker.steps = getattr(run, "steps", None)
            tracker.done = int(getattr(run, "batch", 0) or 0)
            presenter.changed()

    def _failed(self, exc: Exception) -> None:
        """A click's action raised: say why, and show what the run allows now."""
        self.dashboard.message(f"{type(exc).__name__}: {exc}")
        self.on_run_state(self.run, None, self.run.state)


__all__ = ["ControlButtons", "ControlledRun", "Controls", "RunControls"]
