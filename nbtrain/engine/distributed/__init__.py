"""Training under `tf.distribute`: the map of the distributed code.

In this package (the engine's side):

- `replicas`: each global batch split across the replicas of a strategy
  (`distribute_batch`), `is_multi_worker`, and `multi_worker_step`, the
  compiled step of a `MultiWorkerMirroredStrategy` (Keras's step with all its
  outputs, and optionally the control words, in one all-reduce);
- `strategy`: `multi_worker_strategy` (public as `nbtrain.multi_worker_strategy`),
  a strategy whose failures are bounded, and the timeouts of the control channel;
- `control`: `CollectiveControl`, the channel: a sum of a few control words
  over the workers (the chief's command, everyone's position checked equal);
- `gate`: `CollectiveGate`, the `FitLoop` gate of one worker: it acts on what
  the workers agreed, at the same batch on every worker, the words carried
  inside the train step;
- `errors`: `WorkerLostError` (public as `nbtrain.WorkerLostError`) and
  `WorkersOutOfStepError`.

Elsewhere, because of the layers (data -> engine -> run):

- `nbtrain.data.sharding`: `ShardedSequence`, `WorkerShard`, `worker_shard`:
  which batches each worker reads (no TensorFlow, so `import nbtrain` stays
  light; public as `nbtrain.ShardedSequence`);
- `nbtrain.engine.steps` calls `replicas.multi_worker_step` and carries the
  gate's words (`FitLoop.set_carrier`); `nbtrain.engine.evaluation` uses
  `distribute_batch`;
- `nbtrain.run.multiworker`: `WorkerCoordinator`, the coordinator that makes a
  `Run` a member of a job (the chief steers; the others follow), beside `Run`.
"""

from nbtrain.engine.distributed.control import (
    BETWEEN_PASSES,
    END,
    IN_PASS,
    PAUSE,
    RESUME,
    RUN,
    STOP,
    WAIT,
    WORDS,
    Agreement,
    CollectiveControl,
)
from nbtrain.engine.distributed.errors import WorkerLostError, WorkersOutOfStepError
from nbtrain.engine.distributed.gate import CollectiveGate, LocalControl
from nbtrain.engine.distributed.replicas import (
    distribute_batch,
    is_multi_worker,
    local_replicas,
    multi_worker_step,
    replicas,
    split_rows,
)
from nbtrain.engine.distributed.strategy import (
    DEFAULT_TIMEOUT,
    control_timeout,
    heartbeat_interval,
    multi_worker_strategy,
)

__all__ = [
    "BETWEEN_PASSES",
    "DEFAULT_TIMEOUT",
    "END",
    "IN_PASS",
    "PAUSE",
    "RESUME",
    "RUN",
    "STOP",
    "WAIT",
    "WORDS",
    "Agreement",
    "CollectiveControl",
    "CollectiveGate",
    "LocalControl",
    "WorkerLostError",
    "WorkersOutOfStepError",
    "control_timeout",
    "distribute_batch",
    "heartbeat_interval",
    "is_multi_worker",
    "local_replicas",
    "multi_worker_step",
    "multi_worker_strategy",
    "replicas",
    "split_rows",
]
