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


def test_bad_arguments_are_usage_errors_not_tracebacks():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    for args, says in ((["--epochs", "0"], "--epochs: must be at least 1, got 0"),
                       (["--workers", "-1"], "--workers: must be at least 0, got -1"),
                       (["--epochs", "two"], "--epochs: expected an integer, got 'two'")):
        result = subprocess.run([sys.executable, "-m", "nbtrain.cli", "demo", *args],
                                capture_output=True, text=True, timeout=120, env=env)
        assert result.returncode == 2 and says in result.stderr
        assert "Traceback" not in result.stderr
