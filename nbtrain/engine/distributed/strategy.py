"""The multi-worker strategy, and how long nbtrain's own exchanges wait.

`multi_worker_strategy` builds a `MultiWorkerMirroredStrategy` whose failures
are bounded (TensorFlow's coordination service configured first);
`control_timeout` and `heartbeat_interval` are the bounds the control channel
(`control.CollectiveControl`, `gate.CollectiveGate`) uses.

Timeouts.  TensorFlow implements a collective's timeout with a thread that
sleeps for the whole timeout, one per collective executed: with the few
collectives of every step of a small model that is thousands of threads, so
the strategy's own collectives get none.  A worker that dies is detected by
TensorFlow's coordination service (its heartbeat timeout), which aborts the
collectives of every other worker; a worker whose training fails reports the
error to the cluster (`CollectiveControl.report`), which does the same at
once.  Only nbtrain's own exchanges, made when the step does not carry them
(at the start of a pass, while paused, between passes), have a timeout: the
bound for workers that are alive but out of step.
"""

from __future__ import annotations

import weakref
from typing import Any

DEFAULT_TIMEOUT = 60.0  # seconds an exchange of nbtrain's own may wait for the other workers
_TIMEOUTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # multi_worker_strategy's


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


__all__ = ["DEFAULT_TIMEOUT", "control_timeout", "heartbeat_interval", "multi_worker_strategy"]
