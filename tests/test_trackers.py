"""The experiment trackers Keras users already have, with nbtrain's loop.

MLflow's Keras autologging (which patches `keras.Model.fit`, never called by
nbtrain) against a real local MLflow store (SQLite in tmp_path): an nbtrain
training is logged as `fit` would be, and a Run across a stop and a resume is one
MLflow run; a failed training's run ends FAILED, and one resumed after the failure
goes on.  W&B's `WandbMetricsLogger` in offline mode across a stop and a
resume.  (TensorBoard's callback across a stop and a resume:
tests/run/test_run_keras_callbacks.py.)
"""

from __future__ import annotations

import json
import sys
import warnings

import pytest
from helpers import HoldAt, make_data, make_model

import nbtrain

# mlflow and wandb (the `test` extra installs mlflow-skinny and wandb) are imported in
# the tests: at collection they would cost every pytest worker seconds, and put MLflow
# in sys.modules for every other test.

TIMEOUT = 60


@pytest.fixture(scope="module")
def tracking(tmp_path_factory):
    """A local MLflow store (SQLite) for the module: making its tables takes seconds."""
    import mlflow

    uri = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}")
    yield mlflow.MlflowClient()
    mlflow.set_tracking_uri(uri)


@pytest.fixture
def store(tracking, request, monkeypatch, tmp_path):
    """A new experiment in the store, with Keras autologging on; off again after.

    Logging a model, MLflow infers its pip requirements by loading it in a new Python
    process (importing TensorFlow: 10 s and more); its fallback when that fails, the
    Keras flavor's default requirements, stands in for the inference here."""
    import mlflow
    import mlflow.keras.save

    monkeypatch.setattr(mlflow.keras.save, "infer_pip_requirements",
                        lambda path, flavor, fallback=None: fallback)
    # artifacts (models, summaries) in the test's folder: MLflow's default is ./mlruns
    tracking.create_experiment(request.node.name, artifact_location=tmp_path.as_uri())
    mlflow.set_experiment(request.node.name)
    mlflow.keras.autolog(silent=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield tracking
    mlflow.keras.autolog(disable=True)
    failed = [str(w.message) for w in caught if "MLflow autologging failed" in str(w.message)]
    assert not failed  # a logging error is only a warning: the test would miss it
    while mlflow.active_run():  # only if a test failed half-way
        mlflow.end_run()


def runs(client):
    """The runs of the test's experiment (the current one)."""
    import mlflow

    return mlflow.search_runs(output_format="list")


def history(client, run_id, key):
    return [(m.step, m.value) for m in sorted(client.get_metric_history(run_id, key),
                                              key=lambda m: m.step)]


def test_autolog_run_across_stop_and_resume_is_one_mlflow_run(store):
    import mlflow

    x, y = make_data(64)
    hold = HoldAt(1, 3)
    run = nbtrain.Run(make_model(), x, y, batch_size=8, epochs=3, workers=0,
                      validation_data=(x[:16], y[:16]), callbacks=[hold])
    run.start()
    assert hold.reached.wait(TIMEOUT)
    run.stop()
    hold.go.set()
    run.wait(timeout=TIMEOUT)
    assert run.state == "stopped"

    # -- while stopped: one MLflow run, still running, with epoch 0 logged
    (logged,) = runs(store)
    assert logged.info.status == "RUNNING"
    assert [step for step, _ in history(store, logged.info.run_id, "loss")] == [0]

    run.resume()
    run.wait(timeout=TIMEOUT)
    assert run.state == "finished"
    (logged,) = runs(store)  # the same run, ended at the training's real end
    run_id = logged.info.run_id
    assert logged.info.status == "FINISHED"
    assert logged.data.tags["mlflow.autologging"] == "keras"
    for key in ("loss", "val_loss"):
        assert history(store, run_id, key) == [
            (epoch, pytest.approx(value)) for epoch, value in enumerate(run.history.history[key])]
    params = logged.data.params
    assert (params["epochs"], params["batch_size"], params["initial_epoch"]) == ("3", "8", "0")
    assert float(params["optimizer_learning_rate"]) == pytest.approx(0.01)
    assert "model_summary.txt" in [f.path for f in store.list_artifacts(run_id)]
    inputs = {tag.value: d.dataset for d in logged.inputs.dataset_inputs for tag in d.tags
              if tag.key == "mlflow.data.context"}
    assert sorted(inputs) == ["eval", "train"]
    assert json.loads(inputs["train"].profile)["features_shape"] == [64, 4]
    (model,) = mlflow.search_logged_models(experiment_ids=[logged.info.experiment_id],
                                           output_format="list")
    assert model.source_run_id == run_id
    reloaded = mlflow.keras.load_model(model.model_uri)
    assert reloaded.predict(x[:4], verbose=0) == pytest.approx(run.model.predict(x[:4], verbose=0))
    assert mlflow.active_run() is None  # nothing left on this thread's run stack

    run.resume(epochs=4)  # a continue after the finish: the same MLflow run goes on
    run.wait(timeout=TIMEOUT)
    (logged,) = runs(store)
    assert logged.info.status == "FINISHED"
    assert [step for step, _ in history(store, run_id, "loss")] == [0, 1, 2, 3]
    assert logged.data.params["epochs"] == "3"  # parameters are logged once
    models = mlflow.search_logged_models(experiment_ids=[logged.info.experiment_id],
                                         output_format="list")
    assert len(models) == 2 and {m.source_run_id for m in models} == {run_id}  # one a segment
    run.close()


def test_autolog_fit_generator_and_a_users_own_run(store):
    import mlflow

    mlflow.keras.autolog(silent=True, log_models=False)  # the model's logging: the test above
    x, y = make_data(64)
    model = make_model()

    def batches():
        while True:
            for i in range(0, 64, 16):
                yield x[i:i + 16], y[i:i + 16]

    hist = nbtrain.fit_generator(model, batches(), steps_per_epoch=4, epochs=2, verbose=0)
    (logged,) = runs(store)
    assert logged.info.status == "FINISHED"
    assert history(store, logged.info.run_id, "loss") == [
        (epoch, pytest.approx(value)) for epoch, value in enumerate(hist.history["loss"])]
    assert logged.data.params["steps_per_epoch"] == "4"
    assert mlflow.active_run() is None

    with mlflow.start_run() as mine:  # autolog logs into the user's run and leaves it open
        hist = nbtrain.fit_generator(model, batches(), steps_per_epoch=4, epochs=2, verbose=0)
        assert mlflow.active_run().info.run_id == mine.info.run_id
        assert store.get_run(mine.info.run_id).info.status == "RUNNING"
    assert len(runs(store)) == 2
    assert [v for _, v in history(store, mine.info.run_id, "loss")] == pytest.approx(
        hist.history["loss"])


class FailOnce(nbtrain.Sequence):
    """Batches of 8 of `x, y`; the `at`-th read raises (that one only)."""

    def __init__(self, x, y, at: int):
        self.x, self.y, self.at, self.reads = x, y, at, 0

    def __len__(self):
        return len(self.x) // 8

    def __getitem__(self, index):
        self.reads += 1
        if self.reads == self.at:
            raise ValueError(f"deliberate failure in batch {index}")
        return self.x[index * 8:(index + 1) * 8], self.y[index * 8:(index + 1) * 8]


def test_autolog_a_failed_run_is_failed_and_a_resumed_one_goes_on(store):
    import mlflow

    mlflow.keras.autolog(silent=True, log_models=False)
    x, y = make_data(64)
    hold = HoldAt(1, 2)  # in the resumed pass (the failure is in epoch 0)
    run = nbtrain.Run(make_model(), FailOnce(x, y, at=4), epochs=3, workers=0, shuffle=False,
                      callbacks=[hold])
    run.start()
    with pytest.raises(ValueError, match="deliberate failure"):
        run.wait(timeout=TIMEOUT)
    assert run.state == "failed"
    (logged,) = runs(store)  # failed and not resumed: the run ends FAILED, as fit's would
    run_id = logged.info.run_id
    assert logged.info.status == "FAILED" and logged.info.end_time is not None
    assert history(store, run_id, "loss") == []  # the failure came in the first epoch

    run.resume()  # the failure was in the data of a Sequence: the run goes on
    assert hold.reached.wait(TIMEOUT)
    assert store.get_run(run_id).info.status == "RUNNING"  # while it goes on
    hold.go.set()
    run.wait(timeout=TIMEOUT)
    assert run.state == "finished"
    (logged,) = runs(store)  # the same MLflow run, finished with every epoch
    assert logged.info.run_id == run_id and logged.info.status == "FINISHED"
    assert history(store, run_id, "loss") == [
        (epoch, pytest.approx(value)) for epoch, value in enumerate(run.history.history["loss"])]
    assert len(run.history.history["loss"]) == 3
    assert mlflow.active_run() is None
    run.close()

    def failing():  # a blocking fit that fails: its run too (not resumable: ends FAILED)
        yield x[:16], y[:16]
        raise RuntimeError("deliberate failure in the generator")

    with pytest.raises(RuntimeError, match="deliberate failure"):
        nbtrain.fit_generator(make_model(), failing(), steps_per_epoch=4, epochs=2, verbose=0)
    statuses = sorted(r.info.status for r in runs(store))
    assert statuses == ["FAILED", "FINISHED"]
    assert mlflow.active_run() is None


def test_autolog_off_or_mlflow_not_imported_adds_nothing(store, monkeypatch):
    import mlflow

    from nbtrain.engine.autolog import MlflowAutolog, autolog_callbacks
    from nbtrain.engine.config import fit_config

    x, y = make_data(16)
    config = fit_config(make_model(), x, y, api="fit", batch_size=8)
    assert [type(c) for c in autolog_callbacks(config)] == [MlflowAutolog]
    mlflow.keras.autolog(disable=True)
    assert autolog_callbacks(config) == []
    mlflow.tensorflow.autolog(silent=True)  # with Keras 3 it patches the same keras.Model.fit
    try:
        assert [c.flavor for c in autolog_callbacks(config)] == ["tensorflow"]
    finally:
        mlflow.tensorflow.autolog(disable=True)
    mlflow.keras.autolog(silent=True)
    monkeypatch.delitem(sys.modules, "mlflow")  # a user who never imported MLflow
    assert autolog_callbacks(config) == []
    assert "mlflow" not in sys.modules  # and nbtrain did not import it


# -- Weights & Biases (offline) ----------------------------------------------------------


def wandb_history(path) -> list[dict]:
    """The rows `wandb.log` wrote to an offline run's `.wandb` file (W&B's record log:
    a LevelDB-style log of `wandb_internal_pb2.Record`s, in blocks of 32 KiB)."""
    import json
    import struct

    from wandb.proto import wandb_internal_pb2

    data, block = path.read_bytes(), 32768
    assert data[:4] == b":W&B"
    pos, chunks, rows = 7, b"", []
    while pos + 7 <= len(data):
        left = block - pos % block
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if left < 7 or (kind, length) == (0, 0):  # a block's padding
            pos += left
            continue
        chunks += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # a whole record, or its last piece
            record = wandb_internal_pb2.Record()
            record.ParseFromString(chunks)
            chunks = b""
            if record.WhichOneof("record_type") == "history":
                rows.append({item.key or "/".join(item.nested_key): json.loads(item.value_json)
                             for item in record.history.item})
    return rows


def test_wandb_metrics_logger_across_stop_and_resume(tmp_path, monkeypatch):
    import wandb
    from wandb.integration.keras import WandbMetricsLogger

    for name, value in (("WANDB_MODE", "offline"), ("WANDB_SILENT", "true"),
                        ("WANDB_DIR", str(tmp_path))):
        monkeypatch.setenv(name, value)
    tracked = wandb.init(project="nbtrain", dir=tmp_path, settings=wandb.Settings(console="off"))
    try:
        x, y = make_data(64)
        hold = HoldAt(1, 3)
        run = nbtrain.Run(make_model(), x, y, batch_size=8, epochs=3, workers=0,
                          validation_data=(x[:16], y[:16]),
                          callbacks=[WandbMetricsLogger(log_freq="batch"), hold])
        run.start()
        assert hold.reached.wait(TIMEOUT)
        run.stop()
        hold.go.set()
        run.wait(timeout=TIMEOUT)
        assert run.state == "stopped"
        run.resume()
        run.wait(timeout=TIMEOUT)
        assert run.state == "finished"
        run.close()
    finally:
        wandb.finish()
        wandb.teardown()  # W&B's service and its threads end here
    (path,) = (tmp_path / "wandb").glob(f"offline-run-*-{tracked.id}/run-{tracked.id}.wandb")
    rows = wandb_history(path)
    epochs = [row for row in rows if "epoch/epoch" in row]
    assert [row["epoch/epoch"] for row in epochs] == [0, 1, 2]  # each epoch once
    for key in ("loss", "val_loss"):
        assert [row[f"epoch/{key}"] for row in epochs] == pytest.approx(run.history.history[key])
    steps = [row["batch/batch_step"] for row in rows if "batch/batch_step" in row]
    assert steps == list(range(3 * 8))  # no batch logged twice or lost across the stop
