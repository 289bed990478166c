"""A failed run says in one line what failed, where (a Sequence's own index) and what
to do next; a failure of the data or a callback can be resumed once fixed (issue 26,
points 2 and 3)."""

from __future__ import annotations

import multiprocessing
import threading

import keras
import numpy as np
import pytest
from helpers import FEATURES, make_model

import nbtrain
from nbtrain.dashboard import failure as report
from nbtrain.run import Run

TIMEOUT = 60


class DataError(Exception):
    pass


class CallbackError(Exception):
    pass


def ids_batch(ids):
    """A batch whose column 0 holds the batch's index."""
    ids = np.asarray(ids, dtype="float32")
    x = np.zeros((len(ids), FEATURES), "float32")
    x[:, 0] = ids
    return x, np.ones((len(ids), 1), "float32")


class Flaky(nbtrain.Sequence):
    """`n` batches; reading batch `bad` raises (set `bad = None` to fix the data)."""

    def __init__(self, n: int = 8, bad: int | None = 5):
        self.n, self.bad = n, bad

    def __len__(self):
        return self.n

    def __getitem__(self, index):
        if index == self.bad:
            raise DataError(f"bad record in batch {index}")
        return ids_batch([index] * 4)


def trained_ids(run: Run) -> list[tuple[int, int]]:
    """`(epoch, index)` of every batch the loop takes to train, in order."""
    rows: list[tuple[int, int]] = []
    loop, stream = run.loop, run.loop.train_stream
    take = stream.next

    def next_batch():
        item = take()
        x = item.batch[0] if hasattr(item, "batch") else item[0]
        rows.append((loop.state.epoch, int(np.asarray(x)[0, 0])))
        return item

    stream.next = next_batch
    return rows


class Counts(keras.callbacks.Callback):
    """Every hook's calls, in order."""

    def __init__(self):
        super().__init__()
        self.calls: list = []

    def on_train_begin(self, logs=None):
        self.calls.append("train_begin")

    def on_epoch_begin(self, epoch, logs=None):
        self.calls.append(("epoch_begin", epoch))

    def on_train_batch_end(self, batch, logs=None):
        self.calls.append(("batch_end", batch))

    def on_epoch_end(self, epoch, logs=None):
        self.calls.append(("epoch_end", epoch))

    def on_train_end(self, logs=None):
        self.calls.append("train_end")


def assert_clean():
    assert [t.name for t in threading.enumerate() if t.name.startswith("nbtrain")] == []
    assert multiprocessing.active_children() == []


# -- one line: what, where, what next -----------------------------------------------------


@pytest.mark.parametrize("workers, processes", [(0, False), (2, False), (2, True)],
                         ids=["workers=0", "threads", "processes"])
def test_the_failing_index_is_named_in_the_same_words(workers, processes):
    run = Run(make_model(), Flaky(8, bad=5), epochs=2, shuffle=True, workers=workers,
              use_multiprocessing=processes)
    rows = trained_ids(run)
    run.start()
    with pytest.raises(DataError) as info:
        run.wait(TIMEOUT)
    assert type(info.value) is DataError  # its own type
    failure = run.failure
    position = len(rows)  # batches of the shuffled epoch trained before index 5
    assert (failure.kind, failure.source, failure.batch, failure.resumable) == (
        "data", "Flaky[5]", position, True)
    line = failure.line()
    assert line == (f"Reading the training data failed at epoch 1/2, batch {position + 1}/8: "
                    "Flaky[5] raised DataError: bad record in batch 5. Fix the cause, then "
                    "run.resume() goes on at this batch.")
    assert info.value.__notes__[-1] == line
    assert run.resumable and run.allowed_actions() == {"resume"}
    assert_clean()


class StepError(Exception):
    pass


def broken_loss(y_true, y_pred):
    raise StepError("the loss cannot take this")


def test_a_step_failure_says_it_cannot_be_resumed():
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((FEATURES,)), keras.layers.Dense(1)])
    model.compile("sgd", broken_loss)
    run = nbtrain.fit(model, Flaky(4, bad=None), display=False)
    with pytest.raises(StepError) as info:
        run.wait(TIMEOUT)
    assert run.failure.kind == "step" and not run.resumable
    assert run.allowed_actions() == set()
    line = run.failure.line()
    assert line.startswith("The training step failed at epoch 1/1, batch 1/4: StepError: the "
                           "loss cannot take this. ")
    assert line.endswith("The step may have changed the model: fix the cause and start a new run.")
    assert info.value.__notes__[-1] == line
    with pytest.raises(RuntimeError, match="cannot be resumed: the training step failed"):
        run.resume()
    # the dashboard's report: the user's loss function shown, Keras's and TensorFlow's folded
    shown = report.report(run.exception, report.headline_for(run))
    assert shown.splitlines()[0] == line and 'raise StepError("the loss cannot take this")' in shown
    assert "/keras/" not in shown and "/tensorflow/" not in shown
    assert "/keras/" in shown.html.split("<details")[1]


def test_the_report_shows_the_line_first_the_users_frames_and_folds_the_rest():
    run = nbtrain.fit(make_model(), Flaky(8, bad=3), shuffle=False, workers=2, display=False)
    with pytest.raises(DataError):
        run.wait(TIMEOUT)
    shown = report.report(run.exception, report.headline_for(run))
    lines = shown.splitlines()
    assert lines[0] == run.failure.line()
    assert "raise DataError(f\"bad record in batch {index}\")" in shown
    assert "DataError: bad record in batch 3" in shown
    assert lines[-1].endswith("of nbtrain, Keras, TensorFlow and threading hidden)")
    assert "threading.py" not in shown and "/nbtrain/" not in shown
    assert shown.count(run.failure.line()) == 1  # the note is not repeated under the error
    page = shown.html
    assert page.index("nbtrain-failure-line") < page.index("nbtrain-failure-frames") < \
        page.index("<details")
    assert "nbtrain/engine/training.py" in page.split("<details")[1]  # the folded frames
    assert "\x1b" not in page and "[1m" not in page


def test_keras_escape_codes_never_reach_the_report():
    error = ValueError("Exception encountered when calling X.\n\n\x1b[1mbad input\x1b[0m")
    error.__traceback__ = None
    shown = report.report(error, report.cell_headline(error))
    assert shown.splitlines()[0] == ("Training failed: ValueError: bad input. Fix the cause and "
                                     "run the cell again.")
    assert "\x1b" not in shown and "\x1b" not in shown.html


def test_blocking_fit_generator_raises_with_the_line_and_ends():
    counts = Counts()
    with pytest.raises(DataError) as info:
        nbtrain.fit_generator(make_model(), Flaky(6, bad=2), shuffle=False, verbose=0,
                              callbacks=[counts])
    note = info.value.__notes__[-1]
    assert note.startswith("Reading the training data failed at epoch 1/1, batch 3/6: "
                           "Flaky[2] raised DataError")
    assert note.endswith("Fix the cause and train again (initial_epoch=0 goes on from this "
                         "epoch).")
    assert "train_end" not in counts.calls  # as in Keras: no on_train_end for a failure
    assert_clean()


# -- resumed once fixed --------------------------------------------------------------------


@pytest.mark.parametrize("workers, processes", [(0, False), (2, False), (2, True)],
                         ids=["workers=0", "threads", "processes"])
def test_a_data_failure_resumed_after_the_fix_trains_every_batch_once(workers, processes):
    sequence, counts = Flaky(8, bad=5), Counts()
    run = Run(make_model(), sequence, epochs=2, shuffle=True, workers=workers,
              use_multiprocessing=processes, callbacks=[counts])
    rows = trained_ids(run)
    run.start()
    with pytest.raises(DataError):
        run.wait(TIMEOUT)
    failed_at = len(rows)
    sequence.bad = None  # the fix: read again (and sent to the worker processes again)
    assert run.resume() is True
    run.wait(TIMEOUT)
    assert run.state == "finished" and run.exception is None and run.failure is None
    for epoch in (0, 1):
        assert sorted(i for e, i in rows if e == epoch) == list(range(8))  # each once
    assert rows[failed_at] == (0, 5)  # it went on with the batch that failed
    assert counts.calls.count("train_begin") == 1 and counts.calls.count("train_end") == 1
    assert [c for c in counts.calls if c[0] == "batch_end"] == \
        [("batch_end", b) for b in range(8)] * 2
    assert [c for c in counts.calls if c[0] in ("epoch_begin", "epoch_end")] == [
        ("epoch_begin", 0), ("epoch_end", 0), ("epoch_begin", 1), ("epoch_end", 1)]
    assert run.history.epoch == [0, 1]
    assert_clean()


class BreaksOnce(keras.callbacks.Callback):
    """Raises in `hook` at `(epoch, batch)` until fixed."""

    def __init__(self, hook: str, at: tuple):
        super().__init__()
        self.hook, self.at, self.fixed = hook, at, False
        self.calls: list = []
        self.epoch = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        self._hit("on_epoch_begin", (epoch, None))

    def on_epoch_end(self, epoch, logs=None):
        self._hit("on_epoch_end", (epoch, None))

    def on_train_batch_end(self, batch, logs=None):
        self._hit("on_train_batch_end", (self.epoch, batch))

    def _hit(self, hook, where):
        self.calls.append((hook, where))
        if hook == self.hook and where == self.at and not self.fixed:
            raise CallbackError(f"{hook} broke at {where}")


@pytest.mark.parametrize("hook, at", [("on_epoch_end", (1, None)),
                                      ("on_epoch_begin", (1, None)),
                                      ("on_train_batch_end", (1, 2))])
def test_a_callback_failure_resumed_calls_each_callback_once(hook, at):
    before, after = Counts(), Counts()
    breaker = BreaksOnce(hook, at)
    run = Run(make_model(), Flaky(4, bad=None), epochs=3, shuffle=False, workers=1,
              callbacks=[before, breaker, after])
    rows = trained_ids(run)
    run.start()
    with pytest.raises(CallbackError) as info:
        run.wait(TIMEOUT)
    assert run.failure.kind == "callback" and run.resumable
    assert run.failure.source == f"BreaksOnce.{hook}"
    assert info.value.__notes__[-1].startswith("A callback failed at epoch 2/3")
    breaker.fixed = True
    run.resume()
    run.wait(TIMEOUT)
    assert run.state == "finished"
    for counts in (before, after):  # one training: every hook once
        assert counts.calls.count("train_begin") == 1 and counts.calls.count("train_end") == 1
        assert [c for c in counts.calls if c[0] == "epoch_end"] == [
            ("epoch_end", e) for e in range(3)]
        assert [c for c in counts.calls if c[0] == "epoch_begin"] == [
            ("epoch_begin", e) for e in range(3)]
        assert [c for c in counts.calls if c[0] == "batch_end"] == [
            ("batch_end", b) for b in range(4)] * 3
    assert breaker.calls.count((hook, at)) == 2  # the failed call, then once fixed
    assert sorted(rows) == [(e, i) for e in range(3) for i in range(4)]  # each batch once
    assert run.history.epoch == [0, 1, 2]


@pytest.mark.parametrize("workers", [0, 2])
def test_a_validation_failure_resumed_validates_the_epoch_again(workers):
    validation, counts = Flaky(3, bad=1), Counts()  # the first validation fails at its batch 1
    tests = []

    class Tests(keras.callbacks.Callback):
        def on_test_begin(self, logs=None):
            tests.append(validation.bad)

    run = Run(make_model(), Flaky(4, bad=None), epochs=3, shuffle=False, workers=workers,
              validation_data=validation, callbacks=[counts, Tests()])
    rows = trained_ids(run)
    run.start()
    with pytest.raises(DataError) as info:
        run.wait(TIMEOUT)
    failure = run.failure
    assert (failure.kind, failure.source, failure.resumable) == ("validation", "Flaky[1]", True)
    assert info.value.__notes__[-1] == (
        "Validation failed at the end of epoch 1/3: Flaky[1] raised DataError: bad record in "
        "batch 1. Fix the cause, then run.resume() validates the epoch again and goes on.")
    assert run.history.epoch == [] and counts.calls[-1] == ("batch_end", 3)
    validation.bad = None
    run.resume()
    run.wait(TIMEOUT)
    assert run.state == "finished"
    assert run.history.epoch == [0, 1, 2]
    assert len(run.history.history["val_loss"]) == 3
    assert [c for c in counts.calls if c[0] == "epoch_end"] == [("epoch_end", e) for e in range(3)]
    assert counts.calls.count("train_begin") == 1
    assert sorted(rows) == [(e, i) for e in range(3) for i in range(4)]  # trained once
    assert tests == [1, None, None, None]  # epoch 1 validated again, whole


def test_the_text_status_of_a_failed_run_is_its_one_line():
    import io

    from nbtrain.dashboard.textstatus import TextStatus

    out = io.StringIO()
    run = Run(make_model(), Flaky(6, bad=2), shuffle=False, workers=0)
    TextStatus.for_run(run, out)
    run.start()
    with pytest.raises(DataError):
        run.wait(TIMEOUT)
    assert out.getvalue().splitlines()[-1] == f"nbtrain: failed - {run.failure.line()}"
    assert "\x1b" not in out.getvalue()


def test_a_worker_process_traceback_is_shown_from_the_users_frames():
    run = nbtrain.fit(make_model(), Flaky(8, bad=3), shuffle=False, workers=2,
                      use_multiprocessing=True, display=False)
    with pytest.raises(DataError):
        run.wait(TIMEOUT)
    shown = report.report(run.exception, report.headline_for(run))
    worker = shown.split("The above exception")[0].rstrip()
    assert worker.splitlines()[1:] == [
        "Traceback in the data worker process (most recent call last):",
        f'  File "{__file__}", line {Flaky.__getitem__.__code__.co_firstlineno + 2}, '
        "in __getitem__",
        '    raise DataError(f"bad record in batch {index}")',
        "test_failures.DataError: bad record in batch 3"]
    assert "_processes/worker.py" not in shown and "_processes/worker.py" in shown.html  # folded
    assert_clean()
