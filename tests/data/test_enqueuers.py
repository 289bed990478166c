"""Thread enqueuers: order, shuffle, on_epoch_end, errors, finite generators, safety."""

from __future__ import annotations

import threading
import traceback

import numpy as np
import pytest

import nbtrain
from nbtrain.data import SequenceCursor


class Numbers(nbtrain.Sequence):
    def __init__(self, n=10):
        self.n = n
        self.epoch_ends = 0

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return (self.epoch_ends, i)

    def on_epoch_end(self):
        self.epoch_ends += 1


def take(enqueuer, count, workers=2, max_queue_size=4):
    enqueuer.start(workers=workers, max_queue_size=max_queue_size)
    try:
        it = enqueuer.get()
        return [next(it) for _ in range(count)]
    finally:
        enqueuer.stop()


@pytest.mark.parametrize("workers", [1, 3])
def test_ordered_enqueuer_yields_in_index_order_pass_after_pass(workers):
    seq = Numbers(5)
    got = take(nbtrain.OrderedEnqueuer(seq), 12, workers=workers)
    # on_epoch_end ran after each full pass, before the next pass's items were produced
    assert got == [(0, i) for i in range(5)] + [(1, i) for i in range(5)] + [(2, 0), (2, 1)]


def test_ordered_enqueuer_shuffles_each_pass():
    seq = Numbers(30)
    got = take(nbtrain.OrderedEnqueuer(seq, shuffle=True), 90)
    passes = [[i for e, i in got if e == k] for k in range(3)]
    assert all(sorted(p) == list(range(30)) for p in passes)
    assert passes[0] != list(range(30)) and passes[0] != passes[1]


def test_cursor_is_shared_so_a_new_enqueuer_continues_at_the_next_batch():
    seq = Numbers(6)
    cursor = SequenceCursor(seq, shuffle=True, seed=3)
    first = take(nbtrain.OrderedEnqueuer(seq, cursor=cursor), 4)
    rest = take(nbtrain.OrderedEnqueuer(seq, cursor=cursor), 4)
    order = [i for _, i in first + rest[:2]]
    assert sorted(order) == list(range(6))  # the first pass completed exactly once
    assert [e for e, _ in rest] == [0, 0, 1, 1]


def test_cursor_peek_names_the_next_batch_of_a_shuffled_pass_and_the_next_pass():
    seq = Numbers(5)
    cursor = SequenceCursor(seq, shuffle=True, seed=1)
    taken = []
    for _ in range(12):
        assert cursor.peek() == cursor.remaining()[0]
        taken.append(cursor.peek())
        cursor.advance()
    assert sorted(taken[:5]) == sorted(taken[5:10]) == list(range(5))
    assert seq.epoch_ends == 2 and taken[:5] != taken[5:10]


class Failing(Numbers):
    def __getitem__(self, i):
        if i == 3:
            raise KeyError("bad index 3")
        return super().__getitem__(i)


def test_worker_exception_reaches_the_consumer_with_its_traceback():
    enqueuer = nbtrain.OrderedEnqueuer(Failing(6))
    enqueuer.start(workers=2, max_queue_size=3)
    it = enqueuer.get()
    assert [next(it) for _ in range(3)] == [(0, 0), (0, 1), (0, 2)]
    with pytest.raises(KeyError, match="bad index 3") as info:
        next(it)
    enqueuer.stop()
    assert "__getitem__" in "".join(traceback.format_tb(info.value.__traceback__))
    assert not enqueuer.is_running()


def test_generator_enqueuer_keeps_order_and_ends_with_the_generator():
    enqueuer = nbtrain.GeneratorEnqueuer(iter(range(50)))
    enqueuer.start(workers=4, max_queue_size=3)
    assert list(enqueuer.get()) == list(range(50))
    enqueuer.stop()


def test_generator_enqueuer_serialises_a_thread_unsafe_generator():
    state = {"inside": 0, "overlaps": 0}

    def unsafe():
        i = 0
        while i < 400:
            state["inside"] += 1
            if state["inside"] > 1:
                state["overlaps"] += 1
            value = i
            i += 1
            state["inside"] -= 1
            yield value

    enqueuer = nbtrain.GeneratorEnqueuer(unsafe())
    enqueuer.start(workers=4, max_queue_size=2)
    got = list(enqueuer.get())
    enqueuer.stop()
    assert got == list(range(400)) and state["overlaps"] == 0


def test_generator_enqueuer_error_is_the_original_exception():
    def gen():
        yield 1
        raise ZeroDivisionError("in the generator")

    enqueuer = nbtrain.GeneratorEnqueuer(gen())
    enqueuer.start()
    it = enqueuer.get()
    assert next(it) == 1
    with pytest.raises(ZeroDivisionError, match="in the generator"):
        next(it)
    enqueuer.stop()


def test_generator_enqueuer_keeps_unconsumed_items_on_stop():
    enqueuer = nbtrain.GeneratorEnqueuer(iter(range(100)))
    enqueuer.start(workers=2, max_queue_size=5)
    it = enqueuer.get()
    taken = [next(it) for _ in range(10)]
    enqueuer.stop()
    rest = list(enqueuer.generator)
    assert taken + enqueuer.leftover + rest == list(range(100))


@pytest.mark.parametrize("cls", [nbtrain.OrderedEnqueuer, nbtrain.GeneratorEnqueuer])
def test_stop_joins_every_thread_even_with_a_full_queue(cls):
    before = set(threading.enumerate())
    data = Numbers(100) if cls is nbtrain.OrderedEnqueuer else iter(range(10**6))
    for _ in range(20):
        enqueuer = cls(data)
        enqueuer.start(workers=3, max_queue_size=2)
        next(enqueuer.get())
        enqueuer.stop()
        assert not enqueuer.is_running()
    assert set(threading.enumerate()) == before


def test_start_and_argument_errors():
    enqueuer = nbtrain.OrderedEnqueuer(Numbers())
    with pytest.raises(RuntimeError, match="start"):
        next(enqueuer.get())
    with pytest.raises(ValueError, match="workers"):
        enqueuer.start(workers=0)
    with pytest.raises(TypeError, match="Sequence"):
        nbtrain.OrderedEnqueuer([1, 2, 3])
    with pytest.raises(TypeError, match="iterator"):
        nbtrain.GeneratorEnqueuer([1, 2, 3])


def test_pydataset_is_accepted_as_a_sequence():
    import keras

    class Data(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.begun = 0

        def __len__(self):
            return 3

        def __getitem__(self, i):
            return np.full(2, i)

        def on_epoch_begin(self):
            self.begun += 1

    data = Data()
    got = take(nbtrain.OrderedEnqueuer(data), 4)
    assert [int(g[0]) for g in got] == [0, 1, 2, 0] and data.begun == 2


def test_iter_sequence_infinite_calls_on_epoch_end_between_passes():
    seq = Numbers(2)
    it = nbtrain.iter_sequence_infinite(seq)
    assert [next(it) for _ in range(5)] == [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0)]
