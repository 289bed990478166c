"""One pickler for the up-front check and the send to worker processes (issue 27):
what `check_picklable` accepts, `dumps` sends; what it refuses is named."""

from __future__ import annotations

import pickle
import threading

import pytest

from nbtrain.data._processes import shm
from nbtrain.data._processes.pickling import Unpicklable, check_picklable, dumps, generator_payload


class Iterator:
    """The shape of Keras's image iterators: a lock, an index generator made
    from its own method, batches by index."""

    def __init__(self, n: int = 6):
        self.n, self.lock = n, threading.Lock()
        self.index_generator = self._flow_index()

    def _flow_index(self):
        i = 0
        while True:
            yield i % self.n
            i += 1

    def __next__(self):
        with self.lock:
            return next(self.index_generator)


def _count(start):
    yield start


def test_what_the_check_accepts_is_what_is_sent_and_arrives_fresh():
    iterator = Iterator()
    check_picklable(iterator)
    segment = shm.write_blob(f"{shm.new_prefix()}blob", iterator)
    try:
        copy = shm.read_blob(segment.name)
    finally:
        segment.close()
        segment.unlink()
    assert copy.lock is not iterator.lock and not copy.lock.locked()
    assert [next(copy) for _ in range(3)] == [0, 1, 2]


def test_a_started_index_generator_of_the_object_itself_is_made_again():
    iterator = Iterator()
    assert [next(iterator) for _ in range(4)] == [0, 1, 2, 3]  # a look at a few batches
    copy = pickle.loads(dumps(iterator))
    assert next(copy) == 0 and next(iterator) == 4  # the parent's goes on where it was


def test_a_started_generator_of_another_function_is_refused_naming_it():
    holder = Iterator()
    holder.extra = {"sources": [_count(1)]}
    next(holder.extra["sources"][0])
    with pytest.raises(Unpicklable) as info:
        check_picklable(holder)
    assert info.value.path == "Iterator.extra['sources'][0]"
    assert "the generator '_count' is suspended" in str(info.value)
    with pytest.raises(Unpicklable, match=r"Iterator\.extra\['sources'\]\[0\]"):
        dumps(holder)  # the send refuses it the same way


def test_the_part_named_is_the_culprit_not_a_method_that_refers_back_to_it(tmp_path):
    holder = Iterator()  # holds a generator whose argument is the holder itself
    holder.log = open(tmp_path / "log.txt", "w")  # noqa: SIM115 - closed below
    try:
        with pytest.raises(Unpicklable) as info:
            check_picklable(holder)
    finally:
        holder.log.close()
    assert info.value.path == "Iterator.log"
    assert "not opened for reading" in str(info.value.error)


def test_a_fresh_generators_argument_that_cannot_be_pickled_is_named():
    with pytest.raises(TypeError, match=r"`_count\(start=\.\.\.\)` cannot be pickled"):
        generator_payload(_count(threading.local()))
