"""Jupyter's Interrupt in a real ipykernel: a cell blocked in `run.wait()` while a
batch read hangs gets its KeyboardInterrupt within about a second, with the run
stopping or stopped; the run then stops, and no nbtrain thread is left once the
hung read is released (the kernel is driven as a front-end drives it)."""

from __future__ import annotations

import time

from test_kernel_events import (  # noqa: F401 - kernel is a fixture
    kernel,
    output_of,
    replies,
)

SETUP = """
import threading
import keras
import numpy as np
import nbtrain

release, hung, reached = threading.Event(), threading.Event(), threading.Event()

class Hangs(nbtrain.Sequence):
    def __len__(self):
        return 12
    def __getitem__(self, i):
        if i == 5 and not release.is_set():
            hung.set()
            release.wait(600)          # a stuck network read
        x = np.full((4, 3), i, "float32")
        return x, x[:, :1]

class Reached(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if batch == 4:
            reached.set()

model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
model.compile(optimizer="sgd", loss="mse")
run = nbtrain.fit(model, Hangs(), workers=2, shuffle=False, callbacks=[Reached()],
                  display=False)
print("ready", reached.wait(120) and hung.wait(60))

def say_when_waiting():
    # A probe: "waiting" once the main thread is inside run.wait() (a print just
    # before the call could be interrupted in its own flush).
    import sys, time
    main = threading.main_thread().ident
    while True:
        frame, names = sys._current_frames().get(main), set()
        while frame is not None:
            names.add(frame.f_code.co_name)
            frame = frame.f_back
        if "wait_until" in names:
            print("waiting", flush=True)
            return
        time.sleep(0.01)
"""

AFTER = """
print(run.state in ("stopping", "stopped"))
release.set()
run.wait(timeout=30)
print(run.state, run.batch)
for thread in threading.enumerate():
    if thread.name.startswith("nbtrain"):
        thread.join(10)
print([thread.name for thread in threading.enumerate() if thread.name.startswith("nbtrain")])
"""


def test_the_first_interrupt_of_a_cell_waiting_for_a_hung_run_returns_within_a_second(
        kernel):  # noqa: F811 - the fixture imported above
    assert output_of(kernel, kernel.execute(SETUP), timeout=240).split() == ["ready", "True"]
    # stop_on_error=False: the cell after the interrupted one is sent as soon as its
    # reply arrives, and ipykernel 7 sends that reply before it begins aborting
    # queued cells, so the next cell could be aborted (a front-end's race, not ours).
    busy = kernel.execute("threading.Thread(target=say_when_waiting).start(); run.wait()",
                          stop_on_error=False)
    deadline = time.monotonic() + 60
    while True:  # the cell is in run.wait()
        msg = kernel.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
        if msg["msg_type"] == "stream" and "waiting" in msg["content"]["text"]:
            break
    began = time.monotonic()
    kernel.parent.interrupt_kernel()  # the notebook's Interrupt button
    reply = replies(kernel, [busy], timeout=30)[0]
    took = time.monotonic() - began
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "KeyboardInterrupt"
    assert took < 2.0, f"the first interrupt took {took:.2f} s"
    out = output_of(kernel, kernel.execute(AFTER)).splitlines()
    assert out == ["True", "stopped 5", "[]"]  # stopped at the batch that hung; nothing left
