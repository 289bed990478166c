"""How a Run takes part in a job: the `Coordinator` protocol, and the local one.

A Run on one process is steered by its own controls alone: `LocalCoordinator`.
A Run on a worker of a `MultiWorkerMirroredStrategy` job must act at the same
batch as every other worker: `nbtrain.run.multiworker.WorkerCoordinator`.  The
Run picks one when it is built (`make_coordinator`) and calls only the methods
below, the way PyTorch's DataLoader swaps its iterator classes; nothing else in
the Run knows whether it is part of a job.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

from nbtrain.run.waiting import Deadline


class Coordinator(Protocol):
    """What a Run asks of the job it is part of.

    Attributes:
        is_chief: this Run is steered by its own controls (False: it follows
            another worker's).
        task: the Run's worker, in words (for error messages).
    """

    is_chief: bool
    task: str

    def gate(self, local: Callable[[], None], steering: Any) -> Callable[[], None]:
        """The gate the loop calls before each step, given the Run's own (`Hold.gate`)
        and its `RunSteering` (pending hyperparameters, applied before the step)."""

    def wait_check(self, local: Callable[[], None]) -> Callable[[], None] | None:
        """What the loop calls while it waits for a batch, given the Run's own
        (`Hold.check_stop`), or None (`FitLoop.set_wait_check`)."""

    def set_epochs(self, epochs: int, pass_active: bool) -> None:
        """`run.resume(epochs=N)`: make `epochs` the final epoch."""

    def check_hold(self) -> None:
        """Raise `RuntimeError` if `run.paused()` is not available."""

    def before_pass(self) -> None:
        """On the pass thread, before `FitLoop.run()`."""

    def translate(self, error: BaseException) -> BaseException:
        """The error a failed pass fails the Run with."""

    def after_pass(self, error: BaseException | None, start_pass: Callable[[], None]) -> None:
        """On the pass thread, after the pass ended; `start_pass()` begins the next one."""

    def job_ended(self) -> bool:
        """`run.wait()` may return once no pass is in progress."""

    def close(self, deadline: Deadline) -> None:
        """`run.close()`: leave the job (after the Run's own pass has ended, on the chief)."""


class LocalCoordinator:
    """The coordinator of a Run that is not part of a multi-worker job.

    Args:
        loop: the Run's `FitLoop`.
    """

    is_chief = True
    task = "this process"

    def __init__(self, loop: Any):
        self.loop = loop

    def gate(self, local: Callable[[], None], steering: Any) -> Callable[[], None]:
        apply = steering.apply_pending

        def gate() -> None:
            local()
            if steering.pending:  # read without the lock: apply_pending takes it
                apply()

        return gate

    def wait_check(self, local: Callable[[], None]) -> Callable[[], None] | None:
        return local  # a stop ends a wait for a batch that hangs

    def set_epochs(self, epochs: int, pass_active: bool) -> None:
        self.loop.set_epochs(epochs)

    def check_hold(self) -> None:
        return None

    def before_pass(self) -> None:
        return None

    def translate(self, error: BaseException) -> BaseException:
        return error

    def after_pass(self, error: BaseException | None, start_pass: Callable[[], None]) -> None:
        return None

    def job_ended(self) -> bool:
        return True

    def close(self, deadline: Deadline) -> None:
        return None


def multi_worker_strategy_of(model: Any) -> Any:
    """The model's MultiWorkerMirroredStrategy when several workers train it, else None."""
    from nbtrain.engine.distributed import is_multi_worker

    strategy = getattr(model, "distribute_strategy", None)
    return strategy if is_multi_worker(strategy) else None


def make_coordinator(strategy: Any, status: Any, loop: Any, owner: Any) -> Coordinator:
    """`LocalCoordinator` for `strategy=None`, else a `WorkerCoordinator` of the job."""
    if strategy is None:
        return LocalCoordinator(loop)
    from nbtrain.run.multiworker import WorkerCoordinator

    return WorkerCoordinator(status, loop, owner, strategy)


__all__ = ["Coordinator", "LocalCoordinator", "make_coordinator", "multi_worker_strategy_of"]
