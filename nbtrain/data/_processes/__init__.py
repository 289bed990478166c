"""Process workers of the enqueuers (`use_multiprocessing=True`).

Private: the rest of nbtrain reaches it through `nbtrain.data.enqueuers`,
except the up-front checks (`pool.check_sendable`, `pool.check_fresh_generator`,
`pool.draw_shuffle_order`) and the pickler (`pickling`) that the engine calls
before a pool starts.  Nothing here imports TensorFlow or Keras.

Files:

- `pool.py`: `ProcessSequencePool` (a `handoff.BatchPool` for
  `OrderedEnqueuer`), `ProcessGeneratorBackend` (for `GeneratorEnqueuer`), the
  sendability checks and their advice.
- `group.py`: `WorkerGroup`, the base of both: spawns the workers, runs the
  collector thread, reports a dead worker (`WorkerLost`), shuts down.
- `spawn.py`: 'spawn' without re-running `__main__`, in a session of the
  worker's own, stdout/stderr on pipes.
- `worker.py`: the worker processes' entry points (`sequence_main`,
  `generator_main`).  A spawned child imports it by its module path,
  `nbtrain.data._processes.worker`, when it unpickles its target.
- `shm.py`: shared-memory slots (batches) and blobs (a Sequence's state).
- `pickling.py`: cloudpickle by value, generators rebuilt, `Unpicklable`
  naming the part that fails, exceptions with the worker's traceback.
- `lightkeras.py`: `keras.utils.Sequence` / `PyDataset` in a worker without
  TensorFlow, and its switch (`light_keras_enabled`, `NBTRAIN_LIGHT_KERAS`).
- `relay.py`: the workers' stdout/stderr relayed to the parent's, less
  TensorFlow's C++ start-up lines.

NOTE [ The data flow of a process pool ]

A Sequence (`ProcessSequencePool`); a generator (`ProcessGeneratorBackend`)
differs only where marked.

    consumer thread          collector thread (parent)          worker process i
    ---------------          -------------------------          ----------------
    pool = Pool(seq, n)
      check: pickle seq ---> shm blob "s0" (state by value)
      spawn n workers  ----------------------------------------> worker.sequence_main
                                                                  installs light Keras,
                                                                  watches the parent
                             <-- ("ready", pid) ----------------
      ("state", 0, blob) ---------------------------------------> read_blob -> sequence
                             <-- ("loaded", 0): blob unlinked
                                 once every worker has it
    pool.submit(k) -> BatchFuture
      (pending until worker i has a free slot: SLOTS_PER_WORKER)
      ("task", id, k, slot) ------------------------------------> sequence[k]
                                                                  -> shm slot (arrays
                                                                     copied, not pickled)
                             <-- ("done", id, slot, seg, hdr) --
                                 read slot, transform,
                                 future.settle(batch)
    future.result() <----------- (or ("error", ...): the worker's
                                  exception, its traceback as cause)
    on_epoch_end, pool.new_pass()
      ("state", 1, blob) ---------------------------------------> (tasks after it see it)

    generator: the payload (the generator rebuilt by value) goes with the
    spawn; each worker runs its own copy into its slots and sends
    ("item", slot, seg, hdr); the collector reads it, sends ("free", slot)
    and puts the item on a queue (`handoff.iter_queue`); ("end",) from every
    worker puts `handoff.END`.

Failure and shutdown:

- A worker that dies makes its process sentinel ready; the collector, which
  waits on every result pipe and every sentinel at once, fails every pending
  future (or the queue) with `WorkerLost` at once: never a hang.
- `shutdown(timeout)`: ("stop",) to every worker, join up to `timeout`
  (`handoff.DEFAULT_GRACE`), then terminate and kill; every shared-memory
  segment of the pool (prefix `nbtrain_<pid>_<token>_`) is removed, whatever
  state the workers were left in.  An `atexit` hook shuts down pools nobody
  stopped.
- A parent that dies (even SIGKILL of its whole process group: workers have
  a session of their own) is seen by each worker's watch thread, which
  removes the pool's segments and exits; the next pool in any process sweeps
  segments whose creator is dead (`shm.sweep_orphans`).
"""
