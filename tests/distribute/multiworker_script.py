"""One worker of a two-worker MultiWorkerMirroredStrategy job (TF_CONFIG in the
environment), training with `nbtrain.fit` on its shard of a Sequence.

The chief reads commands from stdin, one per line, and calls its Run's
controls: `pause`, `resume [epochs]`, `stop`, `lr VALUE`, `wait`, `status`, `close`; it
answers each with a JSON line (`{"event": "ack", ...}`) and reports every batch
it trains (`{"event": "batch", ...}`).  The other workers only wait.  Every
worker ends with a JSON line `{"event": "final", ...}`: the (epoch, batch)
pairs it trained (and the learning rate of each), its state changes, history,
hyperparameter changes, weights and error.

Usage: `python multiworker_script.py '<options JSON>'` (see OPTIONS).
"""

import json
import os
import sys
import threading
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

OPTIONS = {
    "rows": 512,  # samples; Sequence batches of `batch` rows, striped over the workers
    "batch": 8,
    "epochs": 2,
    "slow": 0.0,  # seconds each worker sleeps after each batch
    "timeout": 10.0,  # nbtrain's control exchanges
    "heartbeat_timeout": 3.0,  # a silent worker is dead after this
    "validation": False,  # validate on each worker's shard of the same Sequence
    "fail_at": None,  # [epoch, batch]: the chief's callback raises ValueError there
}
options = dict(OPTIONS, **json.loads(sys.argv[1] if len(sys.argv) > 1 else "{}"))

import nbtrain  # noqa: E402

strategy = nbtrain.multi_worker_strategy(timeout=options["timeout"],
                                         heartbeat_timeout=options["heartbeat_timeout"],
                                         shutdown_timeout=2.0)

import keras  # noqa: E402
import numpy as np  # noqa: E402

_lock = threading.Lock()


def emit(**event):
    with _lock:
        sys.stdout.write(json.dumps(event) + "\n")
        sys.stdout.flush()


rng = np.random.default_rng(0)
X = rng.standard_normal((options["rows"], 4)).astype("float32")
Y = (X @ np.array([[1.0], [2.0], [-1.0], [0.5]], dtype="float32")).astype("float32")


class Rows(nbtrain.Sequence):
    """Batch i is rows [i * batch, (i + 1) * batch)."""

    def __init__(self, batch):
        self.batch = batch

    def __len__(self):
        return len(X) // self.batch

    def __getitem__(self, i):
        s = slice(i * self.batch, (i + 1) * self.batch)
        return X[s], Y[s]


with strategy.scope():
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.05), "mse", metrics=["mae"])


class Record(keras.callbacks.Callback):
    def __init__(self, chief):
        super().__init__()
        self.chief = chief
        self.pairs = []
        self.lrs = []  # the learning rate each batch trained with
        self.epoch = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        self.pairs.append([self.epoch, batch])
        self.lrs.append(float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))

    def on_train_batch_end(self, batch, logs=None):
        if self.chief:
            emit(event="batch", epoch=self.epoch, batch=batch, trained=len(self.pairs))
            if options["fail_at"] == [self.epoch, batch]:
                raise ValueError(f"boom at batch {batch}")
        if options["slow"]:
            time.sleep(options["slow"])


shard = nbtrain.ShardedSequence(Rows(options["batch"]))
chief = bool(strategy.extended.should_checkpoint)
record = Record(chief)
validation = nbtrain.ShardedSequence(Rows(options["batch"])) if options["validation"] else None
run = nbtrain.fit(model, shard, epochs=options["epochs"], shuffle=False, workers=1,
                  validation_data=validation,
                  callbacks=[record])  # display=None: a text status on the chief only
states = []
run.add_listener(lambda run, old, new: states.append([old, new, len(record.pairs)]))
emit(event="started", index=shard.index, chief=run.is_chief, steps=len(shard))

error = None
if run.is_chief:
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        command, ok, failure = words[0], None, None
        try:
            if command == "pause":
                ok = run.pause()
            elif command == "resume":
                ok = run.resume(int(words[1]) if len(words) > 1 else None)
            elif command == "lr":
                run.set_learning_rate(float(words[1]))
            elif command == "stop":
                ok = run.stop()
            elif command == "wait":
                run.wait(timeout=60)
            elif command == "close":
                run.close(timeout=60)
        except Exception as exc:  # noqa: BLE001 - reported to the test
            failure = f"{type(exc).__name__}: {exc}"
        emit(event="ack", command=line.strip(), ok=ok, error=failure, state=run.state,
             trained=len(record.pairs), epoch=run.epoch, batch=run.batch, time=time.time())
        if command == "close":
            break
else:
    try:
        run.wait()
    except Exception as exc:  # noqa: BLE001 - reported to the test
        error = exc
exception = run.exception or error
emit(event="final", index=shard.index, chief=run.is_chief, state=run.state, pairs=record.pairs,
     states=states, history=run.history.history, lrs=record.lrs,
     changes=[list(change) for change in run.hyperparameter_changes],
     weights=[w.tolist() for w in model.get_weights()],
     error_type=type(exception).__name__ if exception else None,
     error=str(exception) if exception else None, time=time.time())
