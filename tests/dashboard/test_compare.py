"""`nbtrain.compare`: Runs or Histories in one figure, each metric's curves overlaid
(train solid, validation dashed), labelled by run name, with a static PNG snapshot."""

from __future__ import annotations

import base64

import keras
import pytest
from helpers import make_data, make_model

import nbtrain
from nbtrain.dashboard.compare import COLORS


def history(**values) -> keras.callbacks.History:
    h = keras.callbacks.History()
    h.history = {k: list(v) for k, v in values.items()}
    h.epoch = list(range(len(next(iter(values.values())))))
    return h


def lines_of(comparison, panel):
    ax = comparison.figure.axes[panel]
    return {line.get_label(): (list(line.get_xdata()), list(line.get_ydata()),
                               line.get_color(), line.get_linestyle())
            for line in ax.get_lines()}


def test_each_metric_in_one_panel_runs_overlaid_train_solid_validation_dashed():
    a = history(loss=[1.0, 0.5, 0.25], val_loss=[1.1, 0.6, 0.4], accuracy=[0.5, 0.7, 0.8])
    b = history(loss=[0.9, 0.3], val_loss=[1.0, 0.5])
    comparison = nbtrain.compare(a, b, names=["fixed", "steered"])
    assert comparison.metrics == ["loss", "accuracy"]
    assert [ax.get_title(loc="left") for ax in comparison.figure.axes] == ["loss", "accuracy"]
    loss = lines_of(comparison, 0)
    assert loss["fixed"] == ([1, 2, 3], [1.0, 0.5, 0.25], COLORS[0], "-")
    assert loss["fixed (val)"] == ([1, 2, 3], [1.1, 0.6, 0.4], COLORS[0], "--")
    assert loss["steered"][:3] == ([1, 2], [0.9, 0.3], COLORS[1])
    assert loss["steered (val)"][3] == "--"
    assert set(lines_of(comparison, 1)) == {"fixed"}  # only run a has an accuracy
    assert [t.get_text() for t in comparison.figure.axes[0].get_legend().get_texts()] == [
        "fixed", "fixed (val)", "steered", "steered (val)"]
    assert comparison.summary() == ("loss: fixed 0.25 (val 0.4), steered 0.3 (val 0.5)\n"
                                    "accuracy: fixed 0.8")


def test_the_static_snapshot_is_a_png_with_a_text_summary():
    comparison = nbtrain.compare({"a": history(loss=[2.0, 1.0]), "b": history(loss=[3.0, 1.5])})
    bundle = comparison._repr_mimebundle_()
    png = base64.b64decode(bundle["image/png"])
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png == comparison.png
    assert bundle["text/plain"] == "<nbtrain comparison of a, b>\nloss: a 1, b 1.5"


def test_runs_are_compared_with_their_names_and_a_metric_choice_and_log_scale():
    x, y = make_data(64)
    runs = []
    for lr in (0.01, 0.001):
        run = nbtrain.Run(make_model(optimizer=keras.optimizers.SGD(lr)), x, y, batch_size=16,
                          epochs=2, validation_data=(x, y))
        run.name = f"lr={lr}"
        run.start()
        run.wait(60)
        run.close()
        runs.append(run)
    comparison = nbtrain.compare(*runs, metrics=["loss"], log_y=True)
    assert comparison.metrics == ["loss"] and len(comparison.figure.axes) == 1
    assert set(lines_of(comparison, 0)) == {"lr=0.01", "lr=0.01 (val)", "lr=0.001",
                                            "lr=0.001 (val)"}
    assert lines_of(comparison, 0)["lr=0.01"][1] == runs[0].history.history["loss"]
    assert comparison.figure.axes[0].get_yscale() == "log"


def test_bad_input_is_refused_clearly():
    with pytest.raises(ValueError, match="at least one"):
        nbtrain.compare()
    with pytest.raises(TypeError, match="Runs or keras.callbacks.History objects, got list"):
        nbtrain.compare([1, 2])
    with pytest.raises(ValueError, match="2 runs but 1 names"):
        nbtrain.compare(history(loss=[1.0]), history(loss=[1.0]), names=["a"])
    with pytest.raises(ValueError, match=r"No run has the metric\(s\) \['auc'\]"):
        nbtrain.compare(history(loss=[1.0]), metrics=["auc"])


def test_smoothing_draws_the_average_and_the_raw_values_faintly():
    values = [4.0, 1.0, 3.0, 0.5, 2.0]
    comparison = nbtrain.compare(history(loss=values), names=["a"], smoothing=0.6)
    lines = comparison.figure.axes[0].get_lines()
    shown, raw = lines[0], [line for line in lines if line.get_alpha() == 0.25]
    expected, acc, weight = [], 0.0, 0.0
    for value in values:  # TensorBoard's debiased exponential average, weight 0.6
        acc, weight = 0.6 * acc + 0.4 * value, 0.6 * weight + 0.4
        expected.append(acc / weight)
    assert list(shown.get_ydata()) == pytest.approx(expected)
    assert [list(line.get_ydata()) for line in raw] == [values]
    with pytest.raises(ValueError, match=r"smoothing must be in \[0, 1\)"):
        nbtrain.compare(history(loss=values), smoothing=1.0)
