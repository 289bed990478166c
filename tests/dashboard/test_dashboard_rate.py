"""The rate and the ETA: from the steady state, smoothed, shown only once known."""

from __future__ import annotations

import re

import pytest

from nbtrain.dashboard.callback import Dashboard
from nbtrain.dashboard.presenter import RateMeter
from nbtrain.dashboard.throttle import Throttle


def test_the_compile_step_is_not_measured():
    meter = RateMeter()
    meter.set_active(True, now=0.0)
    assert meter.measure(0.0, 0) is None
    assert meter.measure(20.0, 1) is None  # the first step: 20 s of tracing
    assert meter.measure(20.6, 31) is None  # 0.6 s measured: too little to tell
    assert meter.eta(1000) is None
    assert meter.measure(21.2, 61) == pytest.approx(50.0)
    assert meter.eta(1000) == pytest.approx(20.0)


def test_a_resume_measures_from_its_first_step_and_keeps_the_rate():
    meter = RateMeter()
    meter.set_active(True, now=0.0)
    for i in range(31):
        meter.measure(i * 0.1, 10 * i)
    assert meter.rate == pytest.approx(100.0)
    meter.set_active(False, now=3.0)
    assert meter.elapsed_at(50.0) == 3.0
    assert meter.measure(50.0, 300, active=False) == pytest.approx(100.0)  # kept while stopped
    meter.set_active(True, now=60.0)
    meter.measure(60.0, 300)
    meter.measure(65.0, 301)  # a slow first step after the resume (data workers starting)
    meter.measure(66.0, 401)
    assert meter.rate == pytest.approx(100.0)


def test_the_eta_is_steady_and_counts_the_epochs_ends():
    """50 steps/s within epochs of 100 steps, 1 s at each epoch's end (validation;
    the first one 5 s, tracing the validation step): 100 steps take 3 s, and the
    ETA, once known, falls as the clock runs."""
    meter = RateMeter()
    meter.set_active(True, now=0.0)
    now, total, finish = 0.0, 0, 3.0 * 20 + 4.0
    etas = []
    for epoch in range(20):
        for _ in range(100):
            now += 0.02
            total += 1
            meter.measure(now, total, ends=epoch)
            if epoch >= 2 and meter.rate:
                etas.append((now, now + meter.eta(2000 - total, 20 - epoch)))
        now += 5.0 if epoch == 0 else 1.0
    ends = [end for _, end in etas]
    assert max(ends) - min(ends) < 0.01 * finish  # the predicted finish does not move
    assert sum(ends) / len(ends) == pytest.approx(finish, rel=0.01)


def test_epochs_shorter_than_a_window_are_measured_across():
    """Epochs of 0.2 s of steps and 0.1 s of validation: the rate is the pace across them."""
    meter = RateMeter()
    meter.set_active(True, now=0.0)
    now, total, finish = 0.0, 0, 0.3 * 100
    ends = []
    for epoch in range(100):
        for _ in range(10):
            now += 0.02
            total += 1
            meter.measure(now, total, ends=epoch)
            if epoch >= 20:
                ends.append(now + meter.eta(1000 - total, 100 - epoch))
        now += 0.1
    assert meter.rate == pytest.approx(10 / 0.3, rel=0.1)
    assert max(ends) - min(ends) < 0.1 * finish
    assert sum(ends) / len(ends) == pytest.approx(finish, rel=0.05)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def dashboard():
    made = Dashboard(plot=False, auto_display=False, throttle=Throttle(clock=Clock()))
    yield made
    made.close()


def test_no_eta_while_compiling_then_the_steady_one(dashboard):
    clock = dashboard.throttle.clock
    view = dashboard.view
    dashboard.set_params({"epochs": 3, "steps": 100})
    dashboard.on_train_begin()
    dashboard.on_epoch_begin(0)
    clock.now += 20.0  # the first batch traces and compiles the train step
    dashboard.on_train_batch_end(0, {"loss": 1.0})
    dashboard.presenter.update(force=True)
    assert "ETA" not in view.time.value and "steps/s" not in view.batch_counter.value
    shown = []
    for batch in range(1, 100):
        clock.now += 0.02  # 50 steps/s from now on
        dashboard.on_train_batch_end(batch, {"loss": 1.0})
        dashboard.presenter.update(force=True)
        shown.append((batch, view.time.value, view.batch_counter.value))
    unknown = [b for b, time, _ in shown if "ETA" not in time]
    assert unknown and max(unknown) < 60  # about a second of steady steps first
    batch, time, counter = shown[-1]
    assert counter == "batch 100/100 · 50 steps/s"
    assert re.fullmatch(r"elapsed 0:22 · ETA 0:04", time)  # 200 steps at 50 a second
