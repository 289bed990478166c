"""Keeping the workers of a `MultiWorkerMirroredStrategy` job in step.

Every worker of a multi-worker job runs the same program, and every training
step is a set of collective operations (the gradient all-reduce) that all of
them must enter.  A pause, stop or change of plan made on one worker (the
chief, where the dashboard is) must therefore take effect on every worker at
the same batch: a worker that trained one batch more would wait forever in an
all-reduce its peers never join.

`CollectiveControl` is the channel: a sum over the workers of a short vector
of *control words*.  The chief contributes the command (the others zeros);
every worker contributes its position `v` as `(v, v**2)`, and the sums tell
whether all positions were equal (`sum(v)**2 == n * sum(v**2)`), so workers
that drift apart fail at once with a clear error instead of timing out.  On its
own the exchange is an all-reduce on a collective group of nbtrain's own (its
keys never mix with the strategy's).

`CollectiveGate` is the loop's gate on one worker.  To cost almost nothing the
words travel *inside* the training step: the gate before batch `n` sets them,
the compiled train step sums them in the very all-reduce that averages its
loss and metrics (`distribute.multi_worker_step`), and the gate before batch
`n + 1` acts on the result, identical on every worker.  So a command takes
effect on every worker at the same batch, one batch after the chief's gate saw
it.  While paused the gate exchanges the words on their own, paced by the
chief: at once when its state changes, else every `heartbeat` seconds, so the
exchange's timeout does not fire and resume or stop reach everyone.

Timeouts.  TensorFlow implements a collective's timeout with a thread that
sleeps for the whole timeout, one per collective executed: with the few
collectives of every step of a small model that is thousands of threads, so
the strategy's own collectives get none (`multi_worker_strategy`).  A worker
that dies is detected by TensorFlow's coordination service (its heartbeat
timeout), which aborts the collectives of every other worker; a worker whose
training fails reports the error to the cluster (`CollectiveControl.report`),
which does the same at once.  Only nbtrain's own exchanges, made when the step
does not carry them (at the start of a pass, while paused, between passes),
have a timeout: the bound for workers that are alive but out of step.

The engine knows nothing of threads: the worker's local side (what it asks
for, how to wait for that to change, how to show what was agreed) is a
`LocalControl` given by the caller, in nbtrain the `Run`.
"""

from __future__ import annotations

import weakref
from typing import Any, NamedTuple, Protocol

import numpy as np

from nbtrain.engine.distribute import is_multi_worker, local_replicas
from nbtrain.engine.training import Interrupt

# Commands in a pass (at the gate) ...
RUN, PAUSE, STOP = 0, 1, 2
# ... and between passes (what the chief decided after a stop or the end).
WAIT, RESUME, END = 0, 3, 4

# Phases: a worker in a pass exchanges with peers in a pass, never with one between passes.
IN_PASS, BETWEEN_PASSES = 1, 2

DEFAULT_TIMEOUT = 60.0  # seconds an exchange of nbtrain's own may wait for the other workers
_TIMEOUTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # multi_worker_strategy's

# One collective group of its own: the strategy numbers its groups from 1 upwards.
_GROUP_KEY = 0x4E420000
_INSTANCE_KEY = 1
# command, epochs, then (v, v**2) pairs of phase, epoch, batch, steps
WORDS = 10
_CHECKED = ("phase", "epoch", "batch", "steps per epoch")


class WorkerLostError(RuntimeError):
    """The other workers of a multi-worker job are gone, failed, or did not reach
    the same point within the timeout (the original TensorFlow error is the
    `__cause__`).  The job cannot go on: start it again.

    Example:

    ```python
    try:
        run.wait()
    except nbtrain.WorkerLostError as error:
        print("the job lost a worker:", error)
    ```
    """


class WorkersOutOfStepError(RuntimeError):
    """The workers of a multi-worker job are not at the same position (every
    worker must run the same number of batches per epoch).

    Example:

    ```python
    # one shard of 10 batches, one of 11: raised on both workers at the first gate
    nbtrain.fit(model, Batches(x[k::n], y[k::n], 32), epochs=2).wait()
    ```
    """


class Agreement(NamedTuple):
    """What the workers agreed on in one exchange.

    Attributes:
        command: one of `RUN`, `PAUSE`, `STOP` (in a pass) or `WAIT`,
            `RESUME`, `END` (between passes), as the chief sent it.
        epochs: the final epoch the chief asks for (0: no change).
    """

    command: int
    epochs: int


class LocalControl(Protocol):
    """The worker's own side of the gate (the `Run` in nbtrain)."""

    def command(self) -> int:
        """What this worker asks for now: `RUN`, `PAUSE` or `STOP` (only the chief's counts)."""

    def epochs(self) -> int:
        """The final epoch this worker asks for (only the chief's counts; 0: no change)."""

    def wait(self, timeout: float) -> None:
        """Block up to `timeout` s, or until `command()` may have changed (chief only)."""

    def agreed(self, command: int) -> None:
        """The workers agreed on `command` at this gate (a follower shows it)."""


class _Follower:
    """A LocalControl that asks for nothing and shows nothing."""

    def command(self) -> int:
        return RUN

    def epochs(self) -> int:
        return 0

    def wait(self, timeout: float) -> None:
        return None

    def agreed(self, command: int) -> None:
        return None


def control_timeout(strategy: Any) -> float:
    """Seconds nbtrain's exchanges wait for the other workers: the `timeout` given
    to `multi_worker_strategy`, else the strategy's own collective timeout, else 60.

    Args:
        strategy: a `MultiWorkerMirroredStrategy`.

    Returns:
        The timeout in seconds.

    Example:

    ```python
    control_timeout(nbtrain.multi_worker_strategy(timeout=30))   # 30.0
    ```
    """
    timeout = _TIMEOUTS.get(strategy)
    if timeout is None:
        options = getattr(strategy.extended, "_communication_options", None)
        timeout = getattr(options, "timeout_seconds", None)
    return float(timeout or DEFAULT_TIMEOUT)


def heartbeat_interval(timeout: float) -> float:
    """Seconds between exchanges while paused or between passes: a quarter of the
    timeout, within [0.5, 5] (each exchange holds a TensorFlow thread for `timeout` s).

    Args:
        timeout: the exchanges' timeout in seconds.

    Returns:
        The interval in seconds.

    Example:

    ```python
    heartbeat_interval(60.0)   # 5.0
    ```
    """
    return min(5.0, max(0.5, timeout / 4))


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
               position: tuple[int, int, int]) -> np.ndarray:
        """The words this worker contributes: the chief's command and epochs
        (zeros elsewhere), and everyone's phase and `(epoch, batch, steps)`."""
        if not self.is_chief:
            command = epochs = 0
        words = [int(command), int(epochs)]
        for value in (phase, *position):
            words += [int(value), int(value) ** 2]
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
        return Agreement(summed[0], summed[1])

    def exchange(self, command: int = RUN, epochs: int = 0, phase: int = IN_PASS,
                 position: tuple[int, int, int] = (0, 0, 0)) -> Agreement:
        """One exchange on its own; blocks until every worker has made it.

        Args:
            command: the chief's command (ignored elsewhere).
            epochs: the chief's final epoch (ignored elsewhere; 0: no change).
            phase: `IN_PASS` or `BETWEEN_PASSES`.
            position: this worker's `(epoch, batch, steps per epoch)`.

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

        words = self.encode(command, epochs, phase, position)
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


class CollectiveGate:
    """The `FitLoop` gate of one worker of a multi-worker job.

    Called before each training step, it acts on what every worker agreed
    (the words the previous train step summed, or an exchange of its own at
    the first gate of a pass): stop raises `Interrupt` (the pass ends as an
    interruption, on every worker at the same batch); pause
    exchanges heartbeats until the chief resumes or stops; a new final epoch is
    applied to the loop.  Then it sets the words the next train step carries:
    `loop.train_steps.carrier` is this gate when the step runner supports it
    (the compiled steps do), else every gate makes an exchange of its own.

    Args:
        control: the `CollectiveControl`.
        loop: the `FitLoop` it gates.
        local: this worker's `LocalControl`; None asks for nothing (a follower).
        heartbeat: seconds between exchanges while paused (None: a quarter of
            the control timeout, within [0.5, 5]).

    Example:

    ```python
    loop = FitLoop(model, nbtrain.ShardedSequence(batches), epochs=3, verbose=0)
    loop.gate = CollectiveGate(CollectiveControl(model.distribute_strategy), loop)
    loop.run()
    ```
    """

    def __init__(self, control: CollectiveControl, loop: Any, local: LocalControl | None = None,
                 *, heartbeat: float | None = None):
        self.control = control
        self.loop = loop
        self.local = local if local is not None else _Follower()
        self.heartbeat = heartbeat_interval(control.timeout) if heartbeat is None else heartbeat
        self._outgoing: np.ndarray | None = None  # words for the next train step to carry
        self._carried: Any = None  # the all-reduced words a train step brought back
        if hasattr(loop.train_steps, "carrier"):
            loop.train_steps.carrier = self

    def reset(self) -> None:
        """Forget words in flight (at the start of a pass)."""
        self._outgoing = self._carried = None

    # -- the train step's side ----------------------------------------------------------

    def take_outgoing(self) -> np.ndarray | None:
        """The words the next train step should all-reduce (once), or None."""
        words, self._outgoing = self._outgoing, None
        return words

    def bring_back(self, reduced: Any) -> None:
        """The summed words of the step that carried them."""
        self._carried = reduced

    # -- the gate -----------------------------------------------------------------------

    def _position(self) -> tuple[int, int, int]:
        state = self.loop.state
        steps = self.loop.callbacks.params.get("steps") or 0
        return state.epoch, state.batch, int(steps)

    def _exchange(self) -> Agreement:
        return self.control.exchange(self.local.command(), self.local.epochs(), IN_PASS,
                                     self._position())

    def _apply_epochs(self, epochs: int) -> None:
        loop = self.loop
        if epochs and epochs != loop.epochs:
            loop.epochs = max(int(epochs), loop.state.epoch + 1)
            loop.callbacks.params["epochs"] = loop.epochs

    def __call__(self) -> None:
        self._outgoing = None
        carried, self._carried = self._carried, None
        if carried is not None:
            agreement = self.control.decode(carried)
        else:
            agreement = self._exchange()
        while True:
            self._apply_epochs(agreement.epochs)
            if agreement.command == STOP:
                self.local.agreed(STOP)
                raise Interrupt
            if agreement.command != PAUSE:
                break
            self.local.agreed(PAUSE)
            self.local.wait(self.heartbeat)
            agreement = self._exchange()
        self.local.agreed(RUN)
        self._outgoing = self.control.encode(self.local.command(), self.local.epochs(), IN_PASS,
                                             self._position())


def multi_worker_strategy(*, timeout: float = DEFAULT_TIMEOUT, heartbeat_timeout: float = 10.0,
                          shutdown_timeout: float = 5.0, **kwargs: Any) -> Any:
    """A `tf.distribute.MultiWorkerMirroredStrategy` from `TF_CONFIG` whose failures are bounded.

    Call it first thing, on every worker, before anything else uses
    TensorFlow.  It configures TensorFlow's coordination service (the
    cluster's health check) before the strategy starts it:

    - a worker that stops sending heartbeats for `heartbeat_timeout` s is
      declared dead and the collectives of every other worker are aborted, so a
      killed or hung worker makes the others fail within about that time, even
      when they are idle (a killed one usually at once: its sockets close);
    - at exit a worker waits at most `shutdown_timeout` s for the others
      (TensorFlow's default lets a survivor hang at exit);
    - nbtrain's own control exchanges wait at most `timeout` s: the bound for
      workers that are alive but out of step.  Make it longer than anything one
      worker does alone between two steps (the chief writing a checkpoint).

    The strategy's collectives get no timeout of their own (unless
    `communication_options` says so): TensorFlow holds a sleeping thread for
    the whole timeout of every collective it runs, thousands of threads at the
    pace of a small model's steps.

    With no `TF_CONFIG`, or a one-worker cluster, it is a plain
    `MultiWorkerMirroredStrategy` on the local devices.

    Args:
        timeout: seconds nbtrain's exchanges wait for the other workers.
        heartbeat_timeout: seconds without heartbeats before a worker is dead.
        shutdown_timeout: seconds a worker waits for the others at exit.
        **kwargs: passed on to `MultiWorkerMirroredStrategy` (`cluster_resolver`,
            `communication_options`).

    Returns:
        The strategy.

    Example:

    ```python
    strategy = nbtrain.multi_worker_strategy(heartbeat_timeout=5)
    with strategy.scope():
        model = build_model()
    ```
    """
    import tensorflow as tf

    resolver = kwargs.get("cluster_resolver") or tf.distribute.cluster_resolver.TFConfigClusterResolver()
    cluster = resolver.cluster_spec().as_dict()
    jobs = [job for job in ("chief", "worker") if job in cluster]
    workers = sum(len(cluster[job]) for job in jobs)
    if workers > 1:
        from tensorflow.python.eager import context  # the public API has no way to set these

        try:
            from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2 as config
        except ImportError:  # pragma: no cover - older TensorFlow
            from tensorflow.tsl.protobuf import coordination_config_pb2 as config
        context.context().configure_coordination_service(
            service_type="standalone", service_leader=f"/job:{jobs[0]}/replica:0/task:0",
            coordinated_jobs=[config.CoordinatedJob(name=job, num_tasks=len(cluster[job]))
                              for job in jobs],
            heartbeat_timeout_in_ms=int(heartbeat_timeout * 1000),
            shutdown_barrier_timeout_in_ms=int(shutdown_timeout * 1000),
        )
    strategy = tf.distribute.MultiWorkerMirroredStrategy(**kwargs)
    _TIMEOUTS[strategy] = float(timeout)
    return strategy


__all__ = [
    "BETWEEN_PASSES",
    "END",
    "IN_PASS",
    "PAUSE",
    "RESUME",
    "RUN",
    "STOP",
    "WAIT",
    "Agreement",
    "CollectiveControl",
    "CollectiveGate",
    "LocalControl",
    "WorkerLostError",
    "WorkersOutOfStepError",
    "control_timeout",
    "heartbeat_interval",
    "multi_worker_strategy",
]
