"""Stand-ins the dashboard tests share: a counting comm, a fake clock, captured
cell outputs and a fake Run."""

from __future__ import annotations

from types import SimpleNamespace

import comm


class CountingComm(comm.DummyComm):
    """A comm that records every message a widget sends instead of sending it."""

    log: list = []

    def publish_msg(self, msg_type, data=None, metadata=None, buffers=None, **keys):
        if msg_type == "comm_msg":
            CountingComm.log.append((self.comm_id, dict((data or {}).get("state", {}))))


class FakeClock:
    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class CellOutputs:
    """Stands in for the notebook: records displayed bundles and their updates."""

    def __init__(self):
        self.bundles: dict[str, dict] = {}
        self.metadata: dict[str, dict | None] = {}
        self.order: list[str] = []
        self.updates = 0

    def show(self, bundle, metadata=None):
        display_id = f"id{len(self.order)}"
        self.order.append(display_id)
        self.bundles[display_id] = bundle
        self.metadata[display_id] = metadata
        return display_id

    def update(self, display_id, bundle, metadata=None):
        assert display_id in self.bundles
        self.bundles[display_id] = bundle
        self.metadata[display_id] = metadata
        self.updates += 1

    def outputs(self) -> list[dict]:
        return [self.bundles[i] for i in self.order]


class FakeRun:
    """The `Run` contract the dashboard relies on, driven by hand."""

    ACTIONS = {"running": {"pause", "stop"}, "paused": {"resume", "stop"},
               "stopped": {"resume", "continue"}, "finished": {"continue"}}

    def __init__(self, epochs: int = 3, started: bool = False):
        self.state = "running" if started else "created"
        self.epochs = epochs
        self.epoch = 0
        self.batch = 0
        self.steps = None
        self.exception = None
        self.model = None
        self.history = SimpleNamespace(epoch=[], history={})  # a History's attributes
        self.callbacks: list = []
        self.calls: list = []
        self.listeners: list = []

    def add_listener(self, fn):
        self.listeners.append(fn)
        return lambda: self.listeners.remove(fn) if fn in self.listeners else None

    def add_callback(self, callback):
        if self.state in ("running", "paused", "stopping"):
            raise RuntimeError("a pass is in progress")
        self.callbacks.append(callback)

    def allowed_actions(self):
        return set(self.ACTIONS.get(self.state, set()))

    def set(self, new: str) -> None:
        old, self.state = self.state, new
        for fn in list(self.listeners):
            fn(self, old, new)

    def pause(self):
        self.calls.append("pause")
        self.set("paused")

    def resume(self, epochs=None):
        self.calls.append(("resume", epochs))
        if epochs is not None:
            if epochs <= self.epoch:
                raise ValueError("epochs must be greater than the epoch in progress")
            self.epochs = epochs
        self.set("running")

    def stop(self):
        self.calls.append("stop")
        self.set("stopping")
