"""Run in a fresh process (logical devices must be configured before TensorFlow
starts): MirroredStrategy over two logical CPU devices against single-device
training and against Keras's own fit under the same strategy.  Prints JSON."""

import json
import os
import sys
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

import nbtrain  # noqa: E402
from nbtrain.dashboard.liveplot import learning_rate_of  # noqa: E402
from nbtrain.engine.hyperparameters import read_hyperparameter  # noqa: E402

strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
rng = np.random.default_rng(0)
x = rng.standard_normal((131, 4)).astype("float32")
y = (x @ np.array([[1.0], [2.0], [-1.0], [0.5]], dtype="float32")).astype("float32")


class Rows(nbtrain.Sequence):
    def __init__(self, n, batch):
        self.n, self.batch = n, batch

    def __len__(self):
        return -(-self.n // self.batch)

    def __getitem__(self, i):
        s = slice(i * self.batch, min((i + 1) * self.batch, self.n))
        return x[s], y[s]


def build(scope):
    with scope:
        keras.utils.set_random_seed(1)
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
        model.compile(keras.optimizers.SGD(0.05), "mse", metrics=["mae"])
    return model


def weights(model):
    return [w.tolist() for w in model.get_weights()]


out = {"replicas": strategy.num_replicas_in_sync}
n_even = 128
ours = build(strategy.scope())
h = nbtrain.fit_generator(ours, Rows(n_even, 32), epochs=2, shuffle=False, verbose=0,
                          validation_data=Rows(n_even, 32), workers=1)
out["ours_even"] = {"history": h.history, "weights": weights(ours)}
theirs = build(strategy.scope())
h = theirs.fit(x[:n_even], y[:n_even], batch_size=32, epochs=2, shuffle=False, verbose=0,
               validation_data=(x[:n_even], y[:n_even]))
out["keras_even"] = {"history": h.history, "weights": weights(theirs)}
single = build(tf.distribute.get_strategy().scope())
h = nbtrain.fit_generator(single, Rows(n_even, 32), epochs=2, shuffle=False, verbose=0, workers=0)
out["single_even"] = {"history": h.history, "weights": weights(single)}
# 131 rows in batches of 33: no batch divides by 2, and the last batch holds 32
uneven = build(strategy.scope())
h = nbtrain.fit_generator(uneven, Rows(131, 33), epochs=2, shuffle=False, verbose=0)
out["ours_uneven"] = {"history": h.history, "weights": weights(uneven)}
single = build(tf.distribute.get_strategy().scope())
h = nbtrain.fit_generator(single, Rows(131, 33), epochs=2, shuffle=False, verbose=0)
out["single_uneven"] = {"history": h.history, "weights": weights(single)}
out["evaluate"] = nbtrain.evaluate_generator(uneven, Rows(131, 33))
out["evaluate_keras"] = uneven.evaluate(x, y, batch_size=32, verbose=0)
out["predict_shape"] = list(nbtrain.predict_generator(uneven, Rows(131, 33)).shape)


class SetLrAtBatch1(keras.callbacks.Callback):
    """Steers its run to a learning rate of 0.01 after batch 1 of the first epoch."""

    run = None

    def on_train_batch_end(self, batch, logs=None):
        if batch == 1 and not self.run.hyperparameter_changes:
            self.run.set_learning_rate(0.01)


for name, scope in [("steered", strategy.scope()),
                    ("steered_single", tf.distribute.get_strategy().scope())]:
    model = build(scope)
    setter = SetLrAtBatch1()
    run = setter.run = nbtrain.Run(model, Rows(n_even, 32), epochs=2, shuffle=False,
                                   callbacks=[setter])
    run.start()
    h = run.wait(timeout=120)
    run.close()
    per_replica = strategy.experimental_local_results(
        strategy.run(lambda m=model: tf.identity(m.optimizer.learning_rate.value))
    ) if name == "steered" else []  # each replica reads its own copy of the variable
    with warnings.catch_warnings():  # how steering and the dashboard read the rate
        warnings.simplefilter("error")
        read = [read_hyperparameter(model.optimizer, "learning_rate"), learning_rate_of(model)]
    out[name] = {"history": h.history, "weights": weights(model), "read": read,
                 "replica_lrs": [float(v.numpy()) for v in per_replica],
                 "changes": [list(c) for c in run.hyperparameter_changes]}
json.dump(out, sys.stdout)
