"""The errors of a multi-worker job (`WorkerLostError` is public as `nbtrain.WorkerLostError`)."""

from __future__ import annotations


class WorkerLostError(RuntimeError):
    """The other workers of a multi-worker job are gone, failed, or did not reach
    the same point within the timeout (the original TensorFlow error is the
    `__cause__`).  The job cannot go on: start it again.

    Example:

    ```python
    try:
        run.wait()
    except nbtrain.WorkerLostError as error:
        print("the job lost a worker:", error)
    ```
    """


class WorkersOutOfStepError(RuntimeError):
    """The workers of a multi-worker job are not at the same position (every
    worker must run the same number of batches per epoch).

    Example:

    ```python
    # one shard of 10 batches, one of 11: raised on both workers at the first gate
    nbtrain.fit(model, Batches(x[k::n], y[k::n], 32), epochs=2).wait()
    ```
    """


__all__ = ["WorkerLostError", "WorkersOutOfStepError"]
