"""Throttle: update and render schedules, independent of the step rate."""

from __future__ import annotations

import pytest

from nbtrain.dashboard.throttle import Throttle


def test_updates_wait_the_interval(clock):
    throttle = Throttle(interval=0.1, budget=100, clock=clock)
    assert throttle.due()
    throttle.spent(1)
    assert not throttle.due()
    clock.advance(0.099)
    assert not throttle.due()
    clock.advance(0.002)
    assert throttle.due()


def test_budget_slows_updates_that_send_many_messages(clock):
    throttle = Throttle(interval=0.1, budget=12, clock=clock)
    throttle.spent(6)  # 6 messages: next update in 0.5 s
    clock.advance(0.45)
    assert not throttle.due()
    clock.advance(0.06)
    assert throttle.due()


@pytest.mark.parametrize("messages_per_update", [1, 3, 8])
def test_messages_a_second_stay_within_budget_plus_one_update(clock, messages_per_update):
    throttle = Throttle(interval=0.1, budget=12, clock=clock)
    sent = []
    for _ in range(100_000):  # 10 s of polling every 0.1 ms
        if throttle.due():
            sent.append((clock.now, messages_per_update))
            throttle.spent(messages_per_update)
        clock.advance(0.0001)
    start = sent[0][0]
    for second in range(10):
        window = [n for t, n in sent if start + second <= t < start + second + 1]
        assert sum(window) <= 12 + messages_per_update
    assert len([1 for t, _ in sent if t < start + 1]) <= 10  # at most 10 updates a second


def test_first_plot_waits_an_interval_after_the_first_look(clock):
    """A run shorter than a second renders only its final (forced) plot."""
    throttle = Throttle(plot_interval=1.0, clock=clock)
    assert not throttle.plot_due()  # the first batch: nothing worth a render yet
    clock.advance(0.99)
    assert not throttle.plot_due()
    clock.advance(0.02)
    assert throttle.plot_due()


def test_plot_at_most_once_a_second(clock):
    throttle = Throttle(clock=clock)
    throttle.plot_due()
    clock.advance(1.0)
    assert throttle.plot_due()
    throttle.rendered(0.01)
    clock.advance(0.99)
    assert not throttle.plot_due()
    clock.advance(0.02)
    assert throttle.plot_due()


def test_plot_slows_down_when_rendering_is_slow(clock):
    throttle = Throttle(plot_share=0.05, max_plot_interval=10.0, clock=clock)
    throttle.rendered(0.1)  # 0.1 s a render: at most one every 2 s
    clock.advance(1.99)
    assert not throttle.plot_due()
    clock.advance(0.02)
    assert throttle.plot_due()
    throttle.rendered(0.3)  # recent renders average 0.2 s: at most one every 4 s
    clock.advance(3.9)
    assert not throttle.plot_due()
    clock.advance(0.2)
    assert throttle.plot_due()
    assert throttle.renders == 2 and throttle.render_seconds == pytest.approx(0.4)


def test_a_slow_render_never_freezes_the_plot_longer_than_the_limit(clock):
    throttle = Throttle(plot_share=0.01, max_plot_interval=10.0, clock=clock)
    throttle.rendered(1.0)  # 1 s a render would mean one every 100 s
    clock.advance(9.99)
    assert not throttle.plot_due()
    clock.advance(0.02)
    assert throttle.plot_due()


def test_by_default_a_plot_at_least_every_two_seconds(clock):
    throttle = Throttle(clock=clock)
    throttle.rendered(0.5)  # a render of half a second on a loaded machine
    clock.advance(1.99)
    assert not throttle.plot_due()
    clock.advance(0.02)
    assert throttle.plot_due()


def test_a_job_handed_to_the_render_thread_delays_the_next_by_the_interval(clock):
    throttle = Throttle(clock=clock)
    throttle.plot_submitted()
    clock.advance(0.99)
    assert not throttle.plot_due()
    clock.advance(0.02)
    assert throttle.plot_due()


def test_a_render_counts_against_the_message_budget(clock):
    throttle = Throttle(budget=10, clock=clock)
    throttle.rendered(0.0)
    assert not throttle.due()
    clock.advance(0.11)
    assert throttle.due()


def test_reset(clock):
    throttle = Throttle(clock=clock)
    throttle.spent(5)
    throttle.rendered(1.0)
    throttle.reset()
    assert throttle.due() and throttle.plot_due()
