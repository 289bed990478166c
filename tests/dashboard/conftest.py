"""Dashboard test fixtures: widgets without a kernel, a counting comm, a fake
clock, captured cell outputs."""

from __future__ import annotations

import comm
import pytest
from dashboard_helpers import CellOutputs, CountingComm, FakeClock

from nbtrain.dashboard import notebook


@pytest.fixture
def comm_log(monkeypatch):
    """Widgets created in the test send into this list: `(comm_id, state)` pairs."""
    CountingComm.log = []
    monkeypatch.setattr(comm, "create_comm", lambda *a, **k: CountingComm(*a, **k))
    return CountingComm.log


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def cell(monkeypatch):
    """`notebook.show`/`notebook.update` captured: what the cell's outputs would hold."""
    outputs = CellOutputs()
    monkeypatch.setattr(notebook, "show", outputs.show)
    monkeypatch.setattr(notebook, "update", outputs.update)
    return outputs
