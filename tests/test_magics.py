"""The %nbtrain magic in a real IPython shell."""

from __future__ import annotations

import os
import subprocess
import sys

import keras
import pytest
from helpers import RecordingSequence, batch_generator, make_data, make_model
from IPython.core.error import UsageError

from nbtrain.text import format_number


@pytest.fixture
def shell(ipython):
    shell = ipython
    shell.run_line_magic("load_ext", "nbtrain")
    yield shell
    for value in list(shell.user_ns.values()):
        if type(value).__name__ == "Run" and value.state in ("running", "paused", "stopping"):
            value.stop()
            value.wait(timeout=30)
    shell.run_line_magic("unload_ext", "nbtrain")
    for name in ("run", "r2", "model", "seq", "gen", "x", "y", "val", "history", "m2", "h"):
        shell.user_ns.pop(name, None)


def magic(shell, line):
    return shell.run_line_magic("nbtrain", line)


def test_loading_is_quick_and_does_not_import_tensorflow():
    code = ("import sys, time; from IPython.core.interactiveshell import InteractiveShell; "
            "s = InteractiveShell.instance(); t = time.perf_counter(); "
            "s.run_line_magic('load_ext', 'nbtrain'); s.run_line_magic('load_ext', 'nbtrain'); "
            "print(time.perf_counter() - t, 'tensorflow' in sys.modules, 'keras' in sys.modules, "
            "'nbtrain' in s.magics_manager.magics['line'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    seconds, tf_loaded, keras_loaded, registered = out.stdout.strip().splitlines()[-1].split()
    assert (tf_loaded, keras_loaded, registered) == ("False", "False", "True")
    assert float(seconds) < 1.0


def test_fit_binds_a_run_and_wait_returns_history(shell, capsys):
    x, y = make_data(32)
    shell.user_ns.update(model=make_model(), seq=RecordingSequence(x, y), val=(x, y))
    magic(shell, "fit model seq --epochs 2 --validation val --as r2")
    run = shell.user_ns["r2"]
    history = magic(shell, "wait r2")
    assert run.state == "finished" and history.epoch == [0, 1]
    assert "val_loss" in history.history


def test_fit_with_an_array_tuple_and_batch_size(shell):
    x, y = make_data(40)
    shell.user_ns.update(model=make_model(), x=x, y=y)
    magic(shell, "fit model (x,y) --batch-size 10 --epochs 1")
    history = magic(shell, "wait")
    assert history.epoch == [0] and shell.user_ns["run"].steps == 4


def test_pause_resume_stop_and_resume_with_more_epochs(shell):
    x, y = make_data(64)
    shell.user_ns.update(model=make_model(), gen=batch_generator(x, y))
    magic(shell, "fit model gen --steps 4 --epochs 2")
    run = shell.user_ns["run"]
    magic(shell, "pause")
    assert run.state in ("pausing", "paused", "finished")
    magic(shell, "resume")
    magic(shell, "wait")
    magic(shell, "resume run --epochs 3")
    magic(shell, "stop")
    magic(shell, "wait")
    assert run.state in ("stopped", "finished")
    magic(shell, "resume run --epochs 3")
    magic(shell, "wait")
    assert run.state == "finished" and run.history.epoch == [0, 1, 2]


def test_status_lists_the_runs(shell):
    x, y = make_data(16)
    shell.user_ns.update(model=make_model(), seq=RecordingSequence(x, y))
    magic(shell, "fit model seq --epochs 1")
    magic(shell, "wait")
    from nbtrain.magics import runs_table

    run = shell.user_ns["run"]
    text, markup = runs_table({"run": run})
    lines = text.splitlines()
    assert lines[0].split() == ["run", "state", "epoch", "batch", "loss"]
    loss = run.history.history["loss"][-1]
    assert lines[1].split() == ["run", "finished", "1/1", f"{run.steps}/{run.steps}",
                                format_number(loss)]  # its last epoch complete
    assert "<table class='nbtrain-status'>" in markup and "<th" in markup
    assert markup.count("<tr>") == 2 and "finished" in markup
    magic(shell, "status")  # displays without error


def test_status_of_a_paused_run_shows_where_it_is(shell):
    import threading

    from nbtrain.magics import runs_table

    x, y = make_data(64)
    shell.user_ns.update(model=make_model(), seq=RecordingSequence(x, y))
    magic(shell, "fit model seq --epochs 1000")
    run = shell.user_ns["run"]
    paused = threading.Event()
    run.add_listener(lambda _run, _old, new: new == "paused" and paused.set())
    magic(shell, "pause")
    assert paused.wait(30)
    row = runs_table({"run": run})[0].splitlines()[1].split()
    assert row[:4] == ["run", "paused", f"{run.epoch + 1}/1000", f"{run.batch}/{run.steps}"]
    magic(shell, "stop")
    magic(shell, "wait")
    row = runs_table({"run": run})[0].splitlines()[1].split()
    assert row[:4] == ["run", "stopped", f"{run.epoch + 1}/1000", f"{run.batch}/{run.steps}"]


def test_status_step_column():
    from types import SimpleNamespace

    from nbtrain.magics import runs_table

    def row(**position):
        run = SimpleNamespace(state="x", history=SimpleNamespace(history={}), **position)
        return runs_table({"r": run})[0].splitlines()[1].split()[2:4]

    assert row(epoch=64, epochs=64, batch=0, steps=64) == ["64/64", "64/64"]  # finished
    assert row(epoch=3, epochs=64, batch=0, steps=64) == ["4/64", "0/64"]  # stopped between
    assert row(epoch=3, epochs=64, batch=12, steps=64) == ["4/64", "12/64"]
    assert row(epoch=2, epochs=2, batch=0, steps=None) == ["2/2", "0/?"]


def test_status_has_a_column_per_metric_in_one_format():
    from types import SimpleNamespace

    from nbtrain.magics import runs_table

    def fake(state, epoch, batch, **history):
        return SimpleNamespace(state=state, epoch=epoch, epochs=5, batch=batch, steps=10,
                               history=SimpleNamespace(history=history))

    text, markup = runs_table({
        "a": fake("paused", 2, 4, loss=[0.9, 0.51234], val_loss=[1.0, 0.6],
                  accuracy=[0.5, 0.75], learning_rate=[0.001, 0.001]),
        "b": fake("running", 0, 7),
        "c": fake("finished", 5, 0, loss=[0.0123], accuracy=[1.0]),
    })
    lines = text.splitlines()
    assert lines[0].split() == ["run", "state", "epoch", "batch", "loss", "val_loss", "accuracy"]
    assert lines[1].split() == ["a", "paused", "3/5", "4/10", "0.51234", "0.60000", "0.7500"]
    assert lines[2].split() == ["b", "running", "1/5", "7/10", "–", "–", "–"]
    assert lines[3].split() == ["c", "finished", "5/5", "10/10", "0.01230", "–", "1.0000"]
    assert len({len(line) for line in lines}) == 1  # aligned: numbers flush right
    assert "learning_rate" not in markup and markup.count("<td") == 3 * 7


@pytest.mark.parametrize("line, match", [
    ("frobnicate", "unknown subcommand"),
    ("fit", "required"),
    ("fit model", "required"),
    ("fit nope seq", "cannot evaluate MODEL"),
    ("fit model seq --epochs x", "invalid int"),
    ("fit model seq --as 1abc", "Python name"),
    ("pause nothing_here", "no run named"),
    ("stop model", "not an nbtrain.Run"),
    ("legacy maybe", "invalid choice"),
    ("fit model 'unclosed", "cannot parse"),
])
def test_usage_errors(shell, line, match):
    shell.user_ns.update(model=make_model(), seq=RecordingSequence(*make_data(16)))
    with pytest.raises(UsageError, match=match):
        magic(shell, line)


@pytest.mark.parametrize("command", ["fit", "pause", "resume", "stop", "wait", "status", "legacy"])
def test_every_subcommand_has_help(shell, capsys, command):
    magic(shell, f"{command} --help")
    assert f"%nbtrain {command}" in capsys.readouterr().out


def test_legacy_on_and_off(shell):
    x, y = make_data(32)
    model = make_model(metrics=["mae"])
    magic(shell, "legacy on")
    history = model.fit_generator(batch_generator(x, y), steps_per_epoch=4, epochs=2, verbose=0)
    assert history.epoch == [0, 1]
    loss, mae = model.evaluate_generator(RecordingSequence(x, y))
    assert model.predict_generator(RecordingSequence(x, y)).shape == (32, 1)
    assert loss == pytest.approx(model.evaluate(x, y, batch_size=8, verbose=0)[0], rel=1e-5)
    magic(shell, "legacy off")
    assert not hasattr(model, "fit_generator")


def test_unload_removes_everything(shell):
    magic(shell, "legacy on")
    shell.run_line_magic("unload_ext", "nbtrain")
    assert "nbtrain" not in shell.magics_manager.magics["line"]
    assert not hasattr(keras.Model, "fit_generator")
    shell.run_line_magic("load_ext", "nbtrain")  # the fixture unloads again


def test_loading_registers_the_live_view_of_a_run(shell):
    from nbtrain.dashboard.display import _display_run
    from nbtrain.run import Run

    formatter = shell.display_formatter.ipython_display_formatter
    assert formatter.lookup_by_type(Run) is _display_run


def test_arguments_are_python_expressions_with_spaces(shell):
    x, y = make_data(32)
    shell.user_ns.update(model=make_model(), x=x, y=y)
    magic(shell, "fit model (x, y) --epochs 2 --batch-size 8 --validation (x[:8], y[:8]) --as r2")
    history = magic(shell, "wait r2")
    assert history.epoch == [0, 1] and "val_loss" in history.history
    with pytest.raises(UsageError, match="cannot parse"):
        magic(shell, "fit model (x, y")


def test_split_words():
    from nbtrain.magics import split_words

    assert split_words("fit model {'a': xa, 'b': xb} --as r2") == [
        "fit", "model", "{'a': xa, 'b': xb}", "--as", "r2"]
    assert split_words('fit m d --validation "(xv, yv)"') == [
        "fit", "m", "d", "--validation", "(xv, yv)"]
    assert split_words("fit m data[:, 0:2] --validation=(a, b)") == [
        "fit", "m", "data[:, 0:2]", "--validation=(a, b)"]


# -- %nbtrain lr and %nbtrain compare ------------------------------------------------------

def lr_of(model) -> float:
    return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))


def test_lr_sets_the_learning_rate_of_the_named_or_default_run(shell, capsys):
    x, y = make_data(32)
    shell.user_ns.update(model=make_model(), m2=make_model(), x=x, y=y)
    magic(shell, "fit model (x, y) --batch-size 8 --epochs 1")
    magic(shell, "fit m2 (x, y) --batch-size 8 --epochs 1 --as r2")
    magic(shell, "wait")
    magic(shell, "wait r2")
    magic(shell, "lr 0.05")
    magic(shell, "lr r2 0.002")
    assert "run: learning rate 0.05 from the next batch." in capsys.readouterr().out
    magic(shell, "resume run --epochs 2")
    magic(shell, "resume r2 --epochs 2")
    magic(shell, "wait")
    magic(shell, "wait r2")
    run, r2 = shell.user_ns["run"], shell.user_ns["r2"]
    assert [(c.epoch, c.batch, c.new) for c in run.hyperparameter_changes] == [(1, 0, 0.05)]
    assert [(c.epoch, c.batch, c.new) for c in r2.hyperparameter_changes] == [(1, 0, 0.002)]
    assert lr_of(shell.user_ns["model"]) == pytest.approx(0.05)
    assert run.history.history["learning_rate"] == pytest.approx([0.01, 0.05])


def test_lr_refuses_bad_input_with_a_usage_error(shell):
    x, y = make_data(32)
    shell.user_ns.update(model=make_model(), x=x, y=y)
    magic(shell, "fit model (x, y) --batch-size 8 --epochs 1")
    magic(shell, "wait")
    with pytest.raises(UsageError, match="'fast' is not a number"):
        magic(shell, "lr fast")
    with pytest.raises(UsageError, match=">= 0"):
        magic(shell, "lr -1")
    with pytest.raises(UsageError, match="no run named 'nope'"):
        magic(shell, "lr nope 0.1")
    with pytest.raises(UsageError, match="expected \\[NAME\\] VALUE"):
        magic(shell, "lr run 0.1 0.2")
    assert shell.user_ns["run"].hyperparameter_changes == []


def test_compare_draws_the_named_runs_and_histories(shell):
    x, y = make_data(32)
    shell.user_ns.update(model=make_model(), x=x, y=y)
    magic(shell, "fit model (x, y) --batch-size 8 --epochs 2")
    shell.user_ns["h"] = magic(shell, "wait")
    shell.user_ns["m2"] = make_model(optimizer=keras.optimizers.SGD(0.001))
    magic(shell, "fit m2 (x, y) --batch-size 8 --epochs 2 --as r2")
    magic(shell, "wait r2")
    comparison = magic(shell, "compare h r2 --metrics loss --log --smoothing 0.5")
    assert [run.name for run in comparison.runs] == ["h", "r2"]
    assert comparison.metrics == ["loss"] and comparison.log_y and comparison.smoothing == 0.5
    labels = [line.get_label() for line in comparison.figure.axes[0].get_lines()]
    assert [label for label in labels if label != "_raw"] == ["h", "r2"]
    with pytest.raises(UsageError, match="no run named 'nope'"):
        magic(shell, "compare h nope")
    with pytest.raises(UsageError, match="No run has the metric"):
        magic(shell, "compare h --metrics auc")
