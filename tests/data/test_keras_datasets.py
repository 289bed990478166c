"""Process workers for datasets whose module imports Keras (the tutorial-style
`DataGenerator(keras.utils.Sequence)`): they load without TensorFlow, stay
exact, and keep TensorFlow's banners out of the user's output."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from test_processes import (  # noqa: F401 - leaves_nothing_behind is an autouse fixture
    CHECKS,
    REPO,
    leaves_nothing_behind,
)

from nbtrain.data._processes import lightkeras
from nbtrain.data._processes.relay import relay_line

DATAGEN = '''
import os
import sys

import keras
import numpy as np
import tensorflow as tf


class DataGenerator(keras.utils.Sequence):
    """The Stanford tutorial's generator: one .npy file per sample."""

    def __init__(self, ids, labels, folder, batch_size=4, n_classes=3, **kwargs):
        super().__init__(**kwargs)
        self.ids, self.labels, self.folder = ids, labels, folder
        self.batch_size, self.n_classes = batch_size, n_classes
        self.epoch = 0

    def __len__(self):
        return len(self.ids) // self.batch_size

    def __getitem__(self, index):
        ids = self.ids[index * self.batch_size:(index + 1) * self.batch_size]
        x = np.stack([np.load(os.path.join(self.folder, f"{i}.npy")) for i in ids])
        y = keras.utils.to_categorical([self.labels[i] for i in ids], num_classes=self.n_classes)
        return x + self.epoch, y

    def on_epoch_end(self):
        self.epoch += 100


class Modules(DataGenerator):
    def __getitem__(self, index):
        return np.array(["tensorflow.python" in sys.modules, os.getpid() != self.parent])


class UsesTensorFlow(DataGenerator):
    def __getitem__(self, index):
        print(f"worker says hello {index}", flush=True)
        return np.asarray(tf.constant([index, self.epoch]))


class Broken(DataGenerator):
    def __getitem__(self, index):
        raise KeyError(f"no sample {index}")


def write_samples(folder, n):
    for i in range(n):
        np.save(os.path.join(folder, f"{i}.npy"), np.full((2, 2), i, np.float32))
'''


def run_script(tmp_path, body: str, timeout: float = 300) -> subprocess.CompletedProcess:
    (tmp_path / "datagen.py").write_text(DATAGEN)
    script = tmp_path / "train.py"
    script.write_text(CHECKS + textwrap.dedent(body))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3",
               PYTHONPATH=os.pathsep.join([REPO, str(tmp_path)]))
    env.pop("NBTRAIN_LIGHT_KERAS", None)
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=tmp_path)


PRELUDE = """
import os, sys
import numpy as np
import datagen               # imports keras and tensorflow here, in the parent
import nbtrain
print("--- parent ready ---", file=sys.stderr, flush=True)
folder = os.path.dirname(os.path.abspath(datagen.__file__))
datagen.write_samples(folder, 12)
labels = {i: i % 3 for i in range(12)}
"""


def worker_output(stderr: str) -> str:
    """What reached stderr after the parent had imported TensorFlow."""
    return stderr.split("--- parent ready ---", 1)[1]


def test_a_keras_sequence_module_runs_in_workers_without_tensorflow_in_exact_order(tmp_path):
    result = run_script(tmp_path, PRELUDE + """
gen = datagen.DataGenerator(list(range(12)), labels, folder, batch_size=4)
enqueuer = nbtrain.OrderedEnqueuer(gen, use_multiprocessing=True)
enqueuer.start(workers=2)
batches = enqueuer.get()
got = [next(batches) for _ in range(6)]           # two passes of 3 batches
enqueuer.stop()
firsts = [float(x[0, 0, 0]) for x, _ in got]
labels_ok = all(y.shape == (4, 3) and (y.argmax(1) == np.arange(4 * (i % 3), 4 * (i % 3) + 4) % 3).all()
                for i, (_, y) in enumerate(got))
probe = datagen.Modules(list(range(8)), labels, folder)
probe.parent = os.getpid()
enqueuer = nbtrain.OrderedEnqueuer(probe, use_multiprocessing=True)
enqueuer.start(workers=2)
modules = next(enqueuer.get()).tolist()
enqueuer.stop()
print(firsts, labels_ok, modules, leftovers())
""")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "[0.0, 4.0, 8.0, 100.0, 104.0, 108.0] True [False, True] []"
    ), result.stderr
    assert worker_output(result.stderr).strip() == ""


def test_a_worker_that_really_uses_tensorflow_gets_it_and_its_banner_stays_out(tmp_path):
    result = run_script(tmp_path, PRELUDE + """
gen = datagen.UsesTensorFlow(list(range(8)), labels, folder, batch_size=4)
enqueuer = nbtrain.OrderedEnqueuer(gen, use_multiprocessing=True)
enqueuer.start(workers=1)
batches = enqueuer.get()
got = [next(batches).tolist() for _ in range(3)]
enqueuer.stop()
broken = datagen.Broken(list(range(8)), labels, folder)
enqueuer = nbtrain.OrderedEnqueuer(broken, use_multiprocessing=True)
enqueuer.start(workers=1)
try:
    next(enqueuer.get())
except KeyError as exc:
    error = repr(exc)
enqueuer.stop()
print(got, error, leftovers())
""")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[-1] == "[[0, 0], [1, 0], [0, 100]] KeyError('no sample 0') []", result.stderr
    # a worker's prints are relayed (the batches it read ahead print too)
    assert {"worker says hello 0", "worker says hello 1"} == set(lines[:-1])
    assert worker_output(result.stderr).strip() == ""  # TensorFlow loaded in the worker: quiet


def test_a_notebook_style_main_class_on_the_keras_base_ships_by_value(tmp_path):
    result = run_script(tmp_path, """
import os, sys
import keras
import numpy as np
import nbtrain

class Squares(keras.utils.PyDataset):      # defined in __main__: shipped by value
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.offset = 0
    def __len__(self):
        return 4
    def __getitem__(self, i):
        return np.array([i * i + self.offset, "tensorflow.python" in sys.modules, self.workers])
    def on_epoch_end(self):
        self.offset += 1

enqueuer = nbtrain.OrderedEnqueuer(Squares(workers=3), use_multiprocessing=True)
enqueuer.start(workers=2)
batches = enqueuer.get()
got = [next(batches).tolist() for _ in range(6)]
enqueuer.stop()
print(got, leftovers())
""")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "[[0, 0, 3], [1, 0, 3], [4, 0, 3], [9, 0, 3], [1, 0, 3], [2, 0, 3]] []"
    ), result.stderr


# -- the light Keras of the workers, against the real one ----------------------------------
def test_the_light_pydataset_has_the_api_of_keras_pydataset():
    keras = pytest.importorskip("keras")
    real, light = keras.utils.PyDataset, lightkeras.PyDataset
    public = {n for n in dir(real) if not n.startswith(("__", "_api_export"))} | {"__iter__"}
    assert public - set(dir(light)) == set()
    assert (light.__module__, light.__qualname__) == (real.__module__, real.__qualname__)
    ds = light(workers=4, use_multiprocessing=True, max_queue_size=3)
    assert (ds.workers, ds.use_multiprocessing, ds.max_queue_size) == (4, True, 3)


@pytest.mark.parametrize("labels, classes", [
    ([0, 2, 1], None), ([[1], [0]], 4), (np.array([[0, 1], [2, 0]]), 3), (np.int64(2), 3),
])
def test_the_light_to_categorical_equals_keras(labels, classes):
    keras = pytest.importorskip("keras")
    expected = keras.utils.to_categorical(labels, classes)
    got = lightkeras.to_categorical(labels, classes)
    assert got.dtype == expected.dtype and got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("line, shown", [
    ("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
     False),
    ("I0000 00:00:1796156238.275746    8299 cudart_stub.cc:31] Could not find cuda drivers on "
     "your machine, GPU will not be used.", False),
    ("E0000 00:00:1796156238.275746    8299 cuda_fft.cc:477] Unable to register cuFFT factory",
     False),
    ("To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow "
     "with the appropriate compiler flags.", False),
    ("F0000 00:00:1796156238.275746    8299 kernel.cc:1] Check failed: x", True),
    ("loading sample 12", True),
    ("Traceback (most recent call last):", True),
])
def test_only_tensorflow_start_up_lines_are_kept_from_the_user(line, shown):
    assert relay_line(line) is shown
