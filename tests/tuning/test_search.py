"""`nbtrain.search`: real Keras Tuner searches on small generated data, each trial a Run."""

from __future__ import annotations

import _thread
import json
import os
import subprocess
import sys
import threading

import pytest

import nbtrain

kt = pytest.importorskip("keras_tuner")  # the `tuner` extra; the `test` extra installs it

from search_helpers import (  # noqa: E402
    BATCH,
    GatedSequence,
    build,
    make_data,
    random_search,
    wait_for_state,
)

HERE = os.path.dirname(os.path.abspath(__file__))
EPOCH = [*range(8), "end"]  # what one epoch reads of a GatedSequence (shuffle=False)


def trial_values(tuner) -> list[dict]:
    return [trial.hyperparameters.values for trial in tuner.oracle.trials.values()]


def test_random_search_runs_the_same_trials_as_tuner_search(tmp_path):
    x, y = make_data()
    plain = random_search(tmp_path, "plain", max_trials=2)
    plain.search(x, y, epochs=2, batch_size=BATCH, validation_data=(x, y), verbose=0)

    tuner = random_search(tmp_path, "nbtrain", max_trials=2)
    search = nbtrain.search(tuner, x, y, epochs=2, batch_size=BATCH, validation_data=(x, y),
                            display=False, verbose=0)
    assert search.wait(timeout=120) is tuner
    assert search.state == "finished" and search.current is None
    assert trial_values(tuner) == trial_values(plain)  # same seed: same trials, same order
    records = search.trials
    assert [r.hyperparameters for r in records] == trial_values(plain)
    assert [r.status for r in records] == ["completed"] * 2
    for record in records:  # each trial a Run of its 2 epochs; the oracle saw its best
        assert record.run.state == "finished" and record.run.history.epoch == [0, 1]
        assert record.score == pytest.approx(min(record.run.history.history["val_loss"]))
        assert record.score == tuner.oracle.get_trial(record.trial_id).score
    best = min(records, key=lambda r: r.score)
    assert tuner.get_best_hyperparameters()[0].values == best.hyperparameters
    model = tuner.get_best_models()[0]
    assert model.predict(x[:2], verbose=0).shape == (2, 1)


def test_hyperband_trials_train_their_own_epochs_from_initial_epoch(tmp_path):
    x, y = make_data()
    tuner = kt.Hyperband(build, objective="val_loss", max_epochs=2, factor=2, seed=3,
                         directory=str(tmp_path), project_name="hb")
    search = nbtrain.search(tuner, x, y, batch_size=BATCH, validation_data=(x, y),
                            display=False, verbose=0)
    search.wait(timeout=120)
    assert search.state == "finished"
    records = search.trials
    assert records and all(r.status == "completed" for r in records)
    continued = [r for r in records if r.hyperparameters["tuner/initial_epoch"] > 0]
    assert continued, "Hyperband's second round continues a trial's model"
    for record in records:
        start = record.hyperparameters["tuner/initial_epoch"]
        end = record.hyperparameters["tuner/epochs"]
        assert record.run.history.epoch == list(range(start, end))
    best = min(records, key=lambda r: r.score)
    assert tuner.get_best_hyperparameters()[0].values == best.hyperparameters
    assert tuner.get_best_models()[0].predict(x[:2], verbose=0).shape == (2, 1)


def test_pause_stop_resume_inside_a_trial_train_every_batch_once(tmp_path):
    x, y = make_data()
    sequence = GatedSequence(x, y, gates={3})
    tuner = random_search(tmp_path, max_trials=2)
    search = nbtrain.search(tuner, sequence, epochs=2, validation_data=(x, y), shuffle=False,
                            workers=0, display=False, verbose=0)
    _, go = sequence.next_hit()  # the first trial reads its third batch
    assert search.pause() is True
    go.set()
    wait_for_state(search, "paused")
    run = search.current
    assert run.state == "paused" and (run.epoch, run.batch) == (0, 3)
    assert sequence.served == [0, 1, 2]  # the batch in progress trained, no other read
    assert search.allowed_actions() == {"resume", "stop", "skip"}
    assert search.stop() is True
    assert search.wait(timeout=60) is tuner and search.state == "stopped"
    assert run.state == "stopped" and search.current is run
    assert sequence.served == [0, 1, 2]
    assert search.allowed_actions() == {"resume", "skip"}
    assert search.resume() is True
    search.wait(timeout=120)
    assert search.state == "finished"
    assert sequence.served == EPOCH * 2 * 2  # 2 trials of 2 epochs: each batch once
    assert search.allowed_actions() == set()
    first = search.trials[0]
    assert first.runs == [run] and run.history.epoch == [0, 1] and first.status == "completed"


def test_skip_ends_the_trial_with_what_it_reached_and_the_next_starts(tmp_path, capfd):
    x, y = make_data()
    # Trial 0: read 10 is the 2nd batch of its 2nd epoch; trial 1: read 13 is the 3rd
    # batch of its first epoch (before any epoch ended); trial 2 runs to the end.
    sequence = GatedSequence(x, y, gates={10, 13})
    tuner = random_search(tmp_path)
    search = nbtrain.search(tuner, sequence, epochs=2, validation_data=(x, y), shuffle=False,
                            workers=0, display=False, verbose=0)
    for expected in (10, 13):
        count, go = sequence.next_hit()
        assert count == expected
        assert search.skip() is True
        go.set()
    search.wait(timeout=120)
    assert search.state == "finished"
    assert sequence.served == EPOCH + [0, 1] + [0, 1, 2] + EPOCH * 2
    skipped, early, full = search.trials
    assert (skipped.status, early.status, full.status) == ("skipped", "failed", "completed")
    oracle = tuner.oracle
    assert oracle.get_trial(skipped.trial_id).status == "COMPLETED"  # scored on epoch 0
    assert skipped.run.history.epoch == [0]
    assert skipped.score == pytest.approx(skipped.run.history.history["val_loss"][0])
    assert oracle.get_trial(early.trial_id).status == "FAILED"  # no epoch: no result
    assert early.score is None and early.run.history.epoch == []
    assert full.run.history.epoch == [0, 1]
    assert len(oracle.trials) == 3
    assert tuner.get_best_hyperparameters()[0].values == min(
        (skipped, full), key=lambda r: r.score).hyperparameters
    # A skip is no error: Keras Tuner (DEBUG) prints no traceback for it, and its
    # DEBUG flag is back afterwards.
    assert "Traceback" not in capfd.readouterr().err
    from keras_tuner.src import config as tuner_config

    assert tuner_config.DEBUG is True


def test_a_stopped_search_goes_on_in_a_new_process_with_overwrite_false(tmp_path):
    x, y = make_data()
    sequence = GatedSequence(x, y, gates={11})  # trial 1's 3rd batch (epochs=1)
    tuner = random_search(tmp_path, max_trials=2)
    search = nbtrain.search(tuner, sequence, epochs=1, validation_data=(x, y), shuffle=False,
                            workers=0, display=False, verbose=0)
    _, go = sequence.next_hit()
    search.stop()
    go.set()
    search.wait(timeout=60)
    assert search.state == "stopped"
    search.close(timeout=60)  # the search thread ends; trial 1 stays ongoing in the oracle
    assert search.state == "stopped"
    first, interrupted = search.trials
    assert first.status == "completed" and interrupted.status == "running"

    code = ("import sys; sys.path.insert(0, sys.argv[1]); import search_helpers; "
            "search_helpers.continue_search(sys.argv[2])")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([sys.executable, "-c", code, HERE, str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert lines[-1] == {"state": "finished"}
    trials = {line["id"]: line for line in lines[:-1]}
    assert len(trials) == 2 and all(t["status"] == "completed" for t in trials.values())
    assert trials[first.trial_id]["runs"] == 0  # kept from the first process
    again = trials[interrupted.trial_id]  # Keras Tuner runs the interrupted trial again
    assert again["runs"] == 1 and again["values"] == interrupted.hyperparameters
    # The script's last search, not waited for, is named and closed at exit.
    assert "exiting while a search is still running" in done.stderr


def test_a_hypermodel_fit_override_is_served_by_runs(tmp_path):
    class BatchSizeModel(kt.HyperModel):
        def build(self, hp):
            return build(hp)

        def fit(self, hp, model, x, y, **kwargs):  # calls model.fit itself: served too
            return model.fit(x, y, batch_size=hp.Choice("batch_size", [8, 16]), **kwargs)

    x, y = make_data()
    tuner = kt.RandomSearch(BatchSizeModel(), objective="val_loss", max_trials=2, seed=2,
                            directory=str(tmp_path), project_name="hm")
    search = nbtrain.search(tuner, x, y, validation_data=(x, y), display=False, verbose=0)
    search.wait(timeout=120)
    records = search.trials
    assert [r.status for r in records] == ["completed"] * 2
    for record in records:
        assert record.run.steps == 64 // record.hyperparameters["batch_size"]
    assert tuner.oracle.get_best_trials()[0].score == min(r.score for r in records)


def test_controls_that_do_nothing_warn_and_the_tuner_is_left_as_it_was(tmp_path):
    x, y = make_data()
    tuner = random_search(tmp_path, max_trials=1)
    with pytest.raises(TypeError, match="Keras Tuner"):
        nbtrain.search(object(), x, y)
    search = nbtrain.search(tuner, x, y, batch_size=16, validation_data=(x, y),
                            display=False, verbose=0)
    search.wait(timeout=120)
    for control in (search.pause, search.stop, search.resume, search.skip):
        with pytest.warns(RuntimeWarning, match="the search is finished"):
            assert control() is False
    assert not {"on_trial_begin", "on_trial_end"} & set(vars(tuner))  # hooks removed
    assert "fit" not in vars(tuner.hypermodel)
    search.close()  # a no-op once finished


def test_import_nbtrain_does_not_import_keras_tuner():
    code = ("import sys, nbtrain; assert 'keras_tuner' not in sys.modules; "
            "assert 'search' in dir(nbtrain)")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_ctrl_c_in_wait_stops_the_search_and_resume_goes_on(tmp_path):
    assert threading.current_thread() is threading.main_thread()
    x, y = make_data()
    sequence = GatedSequence(x, y, gates={3})
    tuner = random_search(tmp_path, max_trials=1)
    search = nbtrain.search(tuner, sequence, epochs=1, validation_data=(x, y), shuffle=False,
                            workers=0, display=False, verbose=0)

    def interrupt():
        _, go = sequence.next_hit()
        _thread.interrupt_main()
        wait_for_state(search, "stopping", "stopped")  # the stop is asked: let the read end
        go.set()

    interrupter = threading.Thread(target=interrupt)
    interrupter.start()
    with pytest.raises(KeyboardInterrupt):
        search.wait()
    interrupter.join()
    search.wait(timeout=60)
    assert search.state == "stopped" and sequence.served == [0, 1, 2]
    search.resume()
    search.wait(timeout=60)
    assert search.state == "finished" and sequence.served == EPOCH


def test_a_skip_while_paused_ends_the_trial_and_the_next_one_waits_for_resume(tmp_path):
    x, y = make_data()
    sequence = GatedSequence(x, y, gates={3})
    tuner = random_search(tmp_path, max_trials=2)
    second_run = threading.Event()
    search = nbtrain.search(tuner, sequence, epochs=1, validation_data=(x, y), shuffle=False,
                            workers=0, display=False, verbose=0)
    search.add_listener(lambda s, event, detail: event == "run" and len(s.trials) == 2
                        and second_run.set())
    _, go = sequence.next_hit()
    search.pause()
    go.set()
    wait_for_state(search, "paused")
    assert search.skip() is True
    with pytest.warns(RuntimeWarning, match="already skipped|no trial is training"):
        assert search.skip() is False  # one skip a trial; none between two trials
    assert second_run.wait(60)  # the skipped trial ended (with no epoch: FAILED) ...
    first, second = search.trials
    assert first.status == "failed" and second.status == "running"
    assert search.state == "paused" and search.current is None  # ... the next one holds:
    assert second.run.state == "created"  # its Run is made (and has checked its first
    assert sequence.served == [0, 1, 2, 0]  # batch, which it keeps) but not started
    search.resume()
    search.wait(timeout=60)
    assert search.state == "finished" and sequence.served == [0, 1, 2] + EPOCH
    assert second.status == "completed" and second.run.history.epoch == [0]


class BrokenSequence(GatedSequence):
    """Reading batch 2 always fails."""

    def __getitem__(self, index):
        if index == 2:
            raise ValueError("batch 2 is unreadable")
        return super().__getitem__(index)


def test_failed_trials_are_keras_tuners_and_wait_raises_what_ends_the_search(tmp_path):
    x, y = make_data()
    tuner = random_search(tmp_path, max_trials=5)
    search = nbtrain.search(tuner, BrokenSequence(x, y), epochs=1,
                            validation_data=(x, y), shuffle=False, workers=0, display=False,
                            verbose=0)
    with pytest.raises(RuntimeError, match="consecutive failures"):  # Keras Tuner's limit: 3
        search.wait(timeout=120)
    assert search.state == "failed" and isinstance(search.exception, RuntimeError)
    records = search.trials
    assert [r.status for r in records] == ["failed"] * 3
    for record in records:  # each trial's Run failed on the read, and is kept
        assert record.run.state == "failed"
        assert isinstance(record.run.exception, ValueError)
        assert "batch 2 is unreadable" in record.message
