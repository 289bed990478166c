"""`nbtrain.kernel_events` in a real ipykernel, driven by a jupyter_client
client as a front-end would drive it: comm messages reach a cell busy in a
wait, and the execute requests that arrive meanwhile run after it, once each,
in order.  Without a kernel the waits are the plain ones."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from nbtrain import kernel_events

jupyter_client = pytest.importorskip("jupyter_client")
pytest.importorskip("ipykernel")

REPO = Path(__file__).resolve().parents[1]

SETUP = """
import threading, time
from comm import create_comm
from nbtrain import kernel_events
clicked = threading.Event()
order = []
comm = create_comm(target_name="nbtrain-test")
comm.on_msg(lambda msg: (order.append("comm"), clicked.set()))
print("comm_id", comm.comm_id)
"""

BUSY = """
order.append("busy-start")
cond = threading.Condition()
started = time.monotonic()
with cond:
    while not clicked.is_set() and time.monotonic() - started < 60:
        kernel_events.wait(cond, 0.1)
order.append("busy-end")
events = kernel_events.current()
print("waited", round(time.monotonic() - started, 3), "events", events is not None,
      "deferred", events and events.deferred)
"""


@pytest.fixture
def kernel():
    """A python3 kernel of this environment, this worktree first on its path."""
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3")
    manager = jupyter_client.KernelManager(kernel_name="python3")
    manager.start_kernel(env=env)
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        yield client
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=False)
        manager.cleanup_resources()


def replies(client, msg_ids, timeout=60.0):
    """Shell replies to `msg_ids`, in the order they arrived."""
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < len(msg_ids):
        reply = client.get_shell_msg(timeout=max(0.1, deadline - time.monotonic()))
        if reply["parent_header"].get("msg_id") in msg_ids:
            got.append(reply)
    return got


def output_of(client, msg_id, timeout=60.0) -> str:
    """The stdout of request `msg_id` (reads iopub until its idle status), with
    any error it raised as a last line `Name: value` (so a failure says why)."""
    text = []
    deadline = time.monotonic() + timeout
    while True:
        msg = client.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "stream":
            text.append(msg["content"]["text"])
        if msg["msg_type"] == "error":
            text.append(f"{msg['content']['ename']}: {msg['content']['evalue']}\n")
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return "".join(text)


def send_comm_msg(client, comm_id: str, data: dict) -> str:
    msg = client.session.msg("comm_msg", {"comm_id": comm_id, "data": data})
    client.shell_channel.send(msg)
    return msg["header"]["msg_id"]


def test_comm_handled_in_busy_cell_and_queued_cells_run_after_in_order(kernel):
    setup = kernel.execute(SETUP)
    comm_id = output_of(kernel, setup).split()[1]
    busy = kernel.execute(BUSY)
    # Wait until the busy cell is running, then queue two cells and click.
    probe_deadline = time.monotonic() + 30
    while True:
        msg = kernel.get_iopub_msg(timeout=30)
        if (msg["parent_header"].get("msg_id") == busy and msg["msg_type"] == "execute_input"):
            break
        assert time.monotonic() < probe_deadline
    second = kernel.execute("order.append('second'); print(len(order))")
    info = kernel.kernel_info()
    third = kernel.execute("order.append('third')")
    clicked_at = time.monotonic()
    send_comm_msg(kernel, comm_id, {"click": 1})

    got = replies(kernel, [busy, second, info, third])
    latency = time.monotonic() - clicked_at
    # The three requests sent before the click went through the busy cell's pump.
    assert "deferred 3" in output_of(kernel, busy)
    assert [r["parent_header"]["msg_id"] for r in got] == [busy, second, info, third]
    assert all(r["content"]["status"] == "ok" for r in got), [r["content"] for r in got]
    counts = [got[0]["content"]["execution_count"], got[1]["content"]["execution_count"],
              got[3]["content"]["execution_count"]]
    assert counts == sorted(counts) and len(set(counts)) == 3
    assert latency < 5, latency  # the wait returned on the click, not at its 60 s limit

    check = kernel.execute("print(order)")
    assert output_of(kernel, check).strip() == str(
        ["busy-start", "comm", "busy-end", "second", "third"])


def test_busy_cell_output_stays_in_its_cell(kernel):
    """A click handled mid-cell does not steal the busy cell's output."""
    setup = kernel.execute(SETUP)
    comm_id = output_of(kernel, setup).split()[1]
    busy = kernel.execute(BUSY)
    send_comm_msg(kernel, comm_id, {"click": 1})
    text = output_of(kernel, busy)
    assert "events True" in text, text
    assert float(text.split()[1]) < 5, text  # the click ended the wait, not its 60 s limit


def test_click_sent_with_the_cell_reaches_it(kernel):
    """A click that reaches the kernel right behind a cell's request, read by
    the event loop before the cell takes the shell lock, still reaches the
    cell's wait (it used to wait behind the cell, here for 60 s)."""
    setup = kernel.execute(SETUP)
    comm_id = output_of(kernel, setup).split()[1]
    for _ in range(5):
        output_of(kernel, kernel.execute("clicked.clear()"))
        busy = kernel.execute(BUSY)
        send_comm_msg(kernel, comm_id, {"click": 1})
        text = output_of(kernel, busy)
        assert float(text.split()[1]) < 5, text


def test_no_kernel_means_plain_waits():
    assert kernel_events.current() is None
    cond = threading.Condition()
    woken = []

    def notify():
        with cond:
            woken.append(True)
            cond.notify_all()

    with cond:
        thread = threading.Thread(target=notify)
        thread.start()
        started = time.monotonic()
        while not woken:
            kernel_events.wait(cond, 10)
        assert time.monotonic() - started < 5
    thread.join()
    started = time.monotonic()
    kernel_events.sleep(0.05)
    assert time.monotonic() - started >= 0.05


def test_interrupt_in_busy_cell_aborts_queued_cells_as_jupyter_does(kernel):
    """Ctrl-C (an interrupt) reaches a cell pumping widget messages; the cells
    queued meanwhile are aborted, as after any failed cell, and the next runs."""
    output_of(kernel, kernel.execute(SETUP))
    busy = kernel.execute(BUSY)
    while True:
        msg = kernel.get_iopub_msg(timeout=30)
        if msg["parent_header"].get("msg_id") == busy and msg["msg_type"] == "execute_input":
            break
    queued = kernel.execute("order.append('queued')")
    time.sleep(0.5)  # lets the pump take the queued request (aborted either way: no event to wait on)
    kernel.parent.interrupt_kernel()
    got = replies(kernel, [busy, queued])
    assert got[0]["content"]["status"] == "error"
    assert got[0]["content"]["ename"] == "KeyboardInterrupt"
    assert got[1]["content"]["status"] == "aborted"
    check = kernel.execute("print(order)")
    assert output_of(kernel, check).strip() == str(["busy-start"])
