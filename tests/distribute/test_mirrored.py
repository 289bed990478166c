"""MirroredStrategy over two logical CPU devices: batches are split across replicas,
weights match single-device training, History matches Keras's own fit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).with_name("mirrored_script.py")


@pytest.fixture(scope="module")
def results():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True,
                          timeout=240, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def close(a, b, **kw):
    for u, v in zip(a, b):
        np.testing.assert_allclose(np.array(u), np.array(v), **kw)


def test_two_replicas(results):
    assert results["replicas"] == 2


def test_weights_match_single_device_training(results):
    close(results["ours_even"]["weights"], results["single_even"]["weights"], rtol=1e-5, atol=1e-6)


def test_history_and_weights_agree_with_keras_fit_under_the_same_strategy(results):
    ours, keras_ = results["ours_even"], results["keras_even"]
    assert sorted(ours["history"]) == sorted(keras_["history"])
    for key in keras_["history"]:
        np.testing.assert_allclose(ours["history"][key], keras_["history"][key], rtol=1e-5)
    close(ours["weights"], keras_["weights"], rtol=1e-5, atol=1e-6)


def test_batches_that_do_not_divide_by_the_replicas_work(results):
    ours, single = results["ours_uneven"], results["single_uneven"]
    assert all(np.isfinite(v).all() for v in ours["history"].values())
    # per-replica means of unequal shards are averaged (as Keras does): close, not equal
    close(ours["weights"], single["weights"], rtol=0, atol=2e-2)
    assert results["evaluate"] == pytest.approx(results["evaluate_keras"], rel=1e-2)
    assert results["predict_shape"] == [131, 1]


def test_a_learning_rate_set_while_training_reaches_every_replica(results):
    steered, single = results["steered"], results["steered_single"]
    assert steered["replica_lrs"] == pytest.approx([0.01, 0.01])
    for changes in (steered["changes"], single["changes"]):
        ((epoch, batch, steps, name, old, new),) = changes
        assert (epoch, batch, steps, name, new) == (0, 2, 4, "learning_rate", 0.01)
        assert old == pytest.approx(0.05)
    assert steered["history"]["learning_rate"] == pytest.approx([0.01, 0.01])
    # read as steering and the dashboard read it (a MirroredVariable), warning nothing
    assert steered["read"] == single["read"] == pytest.approx([0.01, 0.01])
    # the replicas trained with the new value: the same weights as one device steered alike,
    # not those of the run left at 0.05
    close(steered["weights"], single["weights"], rtol=1e-5, atol=1e-6)
    assert not np.allclose(steered["weights"][0], results["ours_even"]["weights"][0], atol=1e-4)
