"""`TrialRecord`: what the search knows of one Keras Tuner trial; `TrialBook`: the list."""

from __future__ import annotations

import threading
import time
from typing import Any

RUNNING = "running"
COMPLETED = "completed"
SKIPPED = "skipped"
FAILED = "failed"
INVALID = "invalid"
STATUSES = (RUNNING, COMPLETED, SKIPPED, FAILED, INVALID)
"""A record's `status`: Keras Tuner's trial status in lower case, except
`'skipped'`: a trial `search.skip()` ended early that the oracle recorded as
completed with the epochs it reached."""


class TrialRecord:
    """One Keras Tuner trial as the search saw it.

    Attributes:
        trial_id: Keras Tuner's id of the trial (`trial.trial_id`).
        hyperparameters: the trial's hyperparameter values, a dict (Hyperband's
            `tuner/epochs`, `tuner/initial_epoch`... included).
        status: one of `STATUSES`: `'running'`, `'completed'`, `'skipped'`,
            `'failed'` or `'invalid'` (Keras Tuner's, lower case).
        score: the objective's value the oracle scored the trial with, or None.
        runs: the `nbtrain.Run` of each `model.fit` of the trial (one, or
            `executions_per_trial` of them); empty for a trial of an earlier
            search of the same project (`overwrite=False`).
        started, ended: `time.time()` at the trial's start and end (None when
            unknown or not yet).
        message: Keras Tuner's message for a failed or invalid trial (its traceback).
    """

    def __init__(self, trial_id: str, hyperparameters: dict, status: str = RUNNING,
                 score: float | None = None, started: float | None = None):
        self.trial_id = trial_id
        self.hyperparameters = dict(hyperparameters)
        self.status = status
        self.score = score
        self.runs: list = []
        self.started = started
        self.ended: float | None = None
        self.message: str | None = None

    @property
    def run(self) -> Any:
        """The trial's latest `nbtrain.Run`, or None (not yet, or an earlier search's trial)."""
        return self.runs[-1] if self.runs else None

    @property
    def duration(self) -> float | None:
        """Seconds from the trial's start to its end (to now while it runs), or None."""
        if self.started is None:
            return None
        return (self.ended if self.ended is not None else time.time()) - self.started

    def __repr__(self) -> str:
        score = "" if self.score is None else f" score={self.score:.4g}"
        return f"<TrialRecord {self.trial_id} {self.status}{score} {self.hyperparameters}>"


def _status_of(trial: Any, skipped: bool) -> str:
    status = str(getattr(trial.status, "value", trial.status)).lower()
    if status == COMPLETED and skipped:
        return SKIPPED
    return status if status in STATUSES else status


class TrialBook:
    """The search's trials in the order they started, one record per trial id."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._records: dict[str, TrialRecord] = {}

    def load_earlier(self, oracle: Any) -> None:
        """Record the ended trials of an earlier search of the same project (`overwrite=False`)."""
        for trial in getattr(oracle, "trials", {}).values():
            status = _status_of(trial, skipped=False)
            if status in (COMPLETED, FAILED, INVALID):
                record = TrialRecord(trial.trial_id, trial.hyperparameters.values, status,
                                     trial.score)
                with self.lock:
                    self._records.setdefault(trial.trial_id, record)

    def begin(self, trial: Any) -> TrialRecord:
        """The record of `trial`, starting (again, for a retried trial)."""
        with self.lock:
            record = self._records.get(trial.trial_id)
            if record is None:
                record = self._records[trial.trial_id] = TrialRecord(
                    trial.trial_id, trial.hyperparameters.values)
            record.hyperparameters = dict(trial.hyperparameters.values)
            record.status, record.started, record.ended = RUNNING, time.time(), None
            return record

    def end(self, record: TrialRecord, trial: Any, skipped: bool) -> None:
        """Copy the oracle's verdict on `trial` into its record."""
        with self.lock:
            record.hyperparameters = dict(trial.hyperparameters.values)  # fit's own too
            record.status = _status_of(trial, skipped)
            record.score = trial.score
            record.message = trial.message
            record.ended = time.time()

    def all(self) -> list[TrialRecord]:
        """The records, in the order their trials started."""
        with self.lock:
            return list(self._records.values())


__all__ = ["COMPLETED", "FAILED", "INVALID", "RUNNING", "SKIPPED", "STATUSES", "TrialBook",
           "TrialRecord"]
