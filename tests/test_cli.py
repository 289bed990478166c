"""`nbtrain demo`: the headless smoke test of the main job, run as a user would."""

from __future__ import annotations

import os
import subprocess
import sys


def test_nbtrain_demo_trains_in_the_terminal():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [sys.executable, "-m", "nbtrain.cli", "demo", "--epochs", "2"],
        capture_output=True, text=True, timeout=240, env=env,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Epoch 1/2" in result.stdout and "Epoch 2/2" in result.stdout
    assert "val_loss" in result.stdout
    assert "final accuracy" in result.stdout
