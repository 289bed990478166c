"""`CollectiveControl`: the channel that keeps the workers of a job in step.

Every worker of a multi-worker job runs the same program, and every training
step is a set of collective operations (the gradient all-reduce) that all of
them must enter.  A pause, stop or change of plan made on one worker (the
chief, where the dashboard is) must therefore take effect on every worker at
the same batch: a worker that trained one batch more would wait forever in an
all-reduce its peers never join.

The channel is a sum over the workers of a short vector of *control words*.
The chief contributes the command and any hyperparameter changes (the
others zeros); every worker
contributes its position `v` as `(v, v**2)`, and the sums tell whether all
positions were equal (`sum(v)**2 == n * sum(v**2)`), so workers that drift
apart fail at once with a clear error instead of timing out.  On its own the
exchange is an all-reduce on a collective group of nbtrain's own (its keys
never mix with the strategy's); in a pass the words travel inside the train
step (`gate.CollectiveGate`, `replicas.multi_worker_step`).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from nbtrain.engine.distributed.errors import WorkerLostError, WorkersOutOfStepError
from nbtrain.engine.distributed.replicas import is_multi_worker, local_replicas
from nbtrain.engine.distributed.strategy import control_timeout

# Commands in a pass (at the gate) ...
RUN, PAUSE, STOP = 0, 1, 2
# ... and between passes (what the chief decided after a stop or the end).
WAIT, RESUME, END = 0, 3, 4

# Phases: a worker in a pass exchanges with peers in a pass, never with one between passes.
IN_PASS, BETWEEN_PASSES = 1, 2

# One collective group of its own: the strategy numbers its groups from 1 upwards.
_GROUP_KEY = 0x4E420000
_INSTANCE_KEY = 1
# Hyperparameter changes one exchange carries (`run.set_hyperparameters`): each is
# (1 + its index in the optimizer's sorted steerable names, then the float64's bits
# as two 32-bit halves, exact in the float64 sum a train step makes).
STEER_SLOTS = 2
# command, epochs, then (v, v**2) pairs of phase, epoch, batch, steps, then the slots
WORDS = 10 + 3 * STEER_SLOTS
_CHECKED = ("phase", "epoch", "batch", "steps per epoch")


class Agreement(NamedTuple):
    """What the workers agreed on in one exchange.

    Attributes:
        command: one of `RUN`, `PAUSE`, `STOP` (in a pass) or `WAIT`,
            `RESUME`, `END` (between passes), as the chief sent it.
        epochs: the final epoch the chief asks for (0: no change).
        steer: the chief's hyperparameter changes, `(index, value)` pairs (the
            index into the optimizer's sorted steerable names).
    """

    command: int
    epochs: int
    steer: tuple = ()


class CollectiveControl:
    """An all-reduce of a few integers among the workers of a multi-worker job.

    Args:
        strategy: a `tf.distribute.MultiWorkerMirroredStrategy` with more than
            one worker.
        timeout: seconds an exchange waits for the other workers before it
            fails with `WorkerLostError`; None: `control_timeout(strategy)`.

    Raises:
        ValueError: the strategy is not a multi-worker one.

    Example:

    ```python
    control = CollectiveControl(strategy, timeout=30)
    agreement = control.exchange(PAUSE if control.is_chief else RUN)
    agreement.command            # PAUSE on every worker
    ```
    """

    def __init__(self, strategy: Any, *, timeout: float | None = None):
        import tensorflow as tf

        if not is_multi_worker(strategy):
            raise ValueError("CollectiveControl needs a MultiWorkerMirroredStrategy with several "
                             f"workers, got {type(strategy).__name__}.")
        self.strategy = strategy
        self.num_workers = int(strategy.num_replicas_in_sync) // local_replicas(strategy)
        self.is_chief = bool(strategy.extended.should_checkpoint)
        resolver = strategy.cluster_resolver
        self.task = f"{resolver.task_type} {resolver.task_id}"
        self.timeout = control_timeout(strategy) if timeout is None else float(timeout)
        host = tf.DeviceSpec.from_string(strategy.extended.worker_devices[0])
        self.device = host.replace(device_type="CPU", device_index=0).to_string()
        spec = tf.TensorSpec([WORDS], tf.int64)
        self._exchange = tf.function(self._all_reduce).get_concrete_function(spec)

    def _all_reduce(self, words: Any) -> Any:
        import tensorflow as tf

        with tf.device(self.device):
            return tf.raw_ops.CollectiveReduceV2(
                input=words, group_size=self.num_workers, group_key=_GROUP_KEY,
                instance_key=_INSTANCE_KEY, ordering_token=[], merge_op="Add", final_op="Id",
                communication_hint="auto", timeout_seconds=self.timeout,
            )

    def encode(self, command: int, epochs: int, phase: int,
               position: tuple[int, int, int], steer: tuple = ()) -> np.ndarray:
        """The words this worker contributes: the chief's command, epochs and
        hyperparameter changes (`(index, value)` pairs, at most `STEER_SLOTS`;
        zeros elsewhere), and everyone's phase and `(epoch, batch, steps)`."""
        if not self.is_chief:
            command, epochs, steer = 0, 0, ()
        if len(steer) > STEER_SLOTS:
            raise ValueError(f"At most {STEER_SLOTS} hyperparameter changes per exchange.")
        words = [int(command), int(epochs)]
        for value in (phase, *position):
            words += [int(value), int(value) ** 2]
        for index, value in steer:
            bits = int(np.array(value, dtype=np.float64).view(np.uint64))
            words += [int(index) + 1, bits >> 32, bits & 0xFFFFFFFF]
        words += [0] * (WORDS - len(words))
        return np.array(words, dtype=np.int64)

    def decode(self, reduced: Any) -> Agreement:
        """The agreement in a vector of words summed over the workers.

        Raises:
            WorkersOutOfStepError: the workers were not in the same phase, epoch,
                batch or epoch length.
        """
        summed = [int(v) for v in np.rint(np.asarray(reduced, dtype=np.float64))]
        n = self.num_workers
        for i, what in enumerate(_CHECKED):
            total, squares = summed[2 + 2 * i], summed[3 + 2 * i]
            if total * total != n * squares:
                raise WorkersOutOfStepError(
                    f"The workers of this multi-worker job are out of step: their {what} "
                    f"differs (mean {total / n:g}).  Every worker must run the same number of "
                    "batches per epoch (give each one an nbtrain.ShardedSequence of the same "
                    "Sequence), and only the chief steers training."
                )
        steer = []
        for slot in range(STEER_SLOTS):
            index, high, low = summed[10 + 3 * slot: 13 + 3 * slot]
            if index:
                bits = np.array((high << 32) | low, dtype=np.uint64)
                steer.append((index - 1, float(bits.view(np.float64))))
        return Agreement(summed[0], summed[1], tuple(steer))

    def exchange(self, command: int = RUN, epochs: int = 0, phase: int = IN_PASS,
                 position: tuple[int, int, int] = (0, 0, 0), steer: tuple = ()) -> Agreement:
        """One exchange on its own; blocks until every worker has made it.

        Args:
            command: the chief's command (ignored elsewhere).
            epochs: the chief's final epoch (ignored elsewhere; 0: no change).
            phase: `IN_PASS` or `BETWEEN_PASSES`.
            position: this worker's `(epoch, batch, steps per epoch)`.
            steer: the chief's hyperparameter changes (see `encode`).

        Returns:
            The `Agreement`, the same on every worker.

        Raises:
            WorkerLostError: a worker is gone or did not come within the timeout.
            WorkersOutOfStepError: the workers are at different positions.

        Example:

        ```python
        if control.exchange(RESUME, epochs=10, phase=BETWEEN_PASSES).command == RESUME: ...
        ```
        """
        import tensorflow as tf

        words = self.encode(command, epochs, phase, position, steer)
        try:
            reduced = self._exchange(tf.constant(words)).numpy()
        except tf.errors.OpError as exc:
            raise self.lost(exc) from exc
        return self.decode(reduced)

    def lost(self, error: BaseException) -> BaseException:
        """`error` as a `WorkerLostError` if it is a failed or timed-out collective
        (the original is its `__cause__`); any other error unchanged."""
        import tensorflow as tf

        lost_types = (tf.errors.UnavailableError, tf.errors.DeadlineExceededError,
                      tf.errors.CancelledError, tf.errors.AbortedError)
        if not isinstance(error, lost_types):
            return error
        lost = WorkerLostError(
            f"{self.task.capitalize()} of a {self.num_workers}-worker job lost the other workers "
            f"({type(error).__name__}: {_summary(error)}).  A worker died or failed, or did not "
            f"reach the same point within {self.timeout:g} s."
        )
        lost.__cause__ = error
        return lost

    def report(self, error: BaseException) -> None:
        """Tell every other worker that this one failed: their collectives are aborted
        at once (with this message) instead of waiting for a timeout."""
        import tensorflow as tf
        from tensorflow.python.eager import context  # no public API reports to the cluster

        message = f"{self.task} failed: {type(error).__name__}: {error}"[:500]
        try:
            context.context().report_error_to_cluster(tf.errors.ABORTED, message)
        except Exception:  # noqa: BLE001 - best effort: the others still time out
            pass


def _summary(error: BaseException) -> str:
    """The informative line of a TensorFlow error message (not its node traceback)."""
    for line in str(getattr(error, "message", "") or error).splitlines():
        line = line.strip()
        if line and not line.startswith(("Graph execution error", "Detected at node", "File ",
                                         "[[", "Additional GRPC")) and not line.endswith(":"):
            prefix = "Collective ops is aborted by: "
            while line.startswith(prefix + prefix):
                line = line[len(prefix):]
            return line[:300]
    return "collective failed"


__all__ = ["BETWEEN_PASSES", "END", "IN_PASS", "PAUSE", "RESUME", "RUN", "STEER_SLOTS", "STOP",
           "WAIT", "WORDS", "Agreement", "CollectiveControl"]
