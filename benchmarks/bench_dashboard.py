"""Dashboard cost: the same training with the live dashboard attached and without.

A 64-320-320-1 MLP, batch 32 (about 800 steps/s on 2 CPU cores), trained by
`nbtrain.fit_generator` on an in-memory Sequence, with `nbtrain.Dashboard()`
in the callbacks and without (the `display=False` baseline), alternating,
after a warm-up; medians of steps/s.  The widgets are live: their comm is a
counting fake that serializes every message as a kernel would, so no kernel
is needed.  Then synthetic logs for 1e3 and 1e6 batches go straight to the
callback, to compare the memory it keeps (tracemalloc).

Goals (issues 5 and 25): at least 0.97x the step rate; at most 20 widget
messages a second whatever the step rate; a new plot image at least every 2 s
while training (goal 1 s) and at most about one a second; memory constant in
the number of batches.

Run: `.venv/bin/python benchmarks/bench_dashboard.py [--rounds N] [--steps N] [--inline-plot] [--no-plot]`
(`--inline-plot`: the plot rendered on the training thread, to compare with
the render thread).
"""

from __future__ import annotations

import argparse
import bisect
import gc
import json
import os
import statistics
import time
import tracemalloc

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import comm  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

import nbtrain  # noqa: E402

BATCH = 32
FEATURES = 64


class CountingComm(comm.DummyComm):
    """A widget comm that serializes and counts what it would send to the front-end."""

    sent: list[tuple[float, str]] = []
    bytes = 0

    def publish_msg(self, msg_type, data=None, metadata=None, buffers=None, **keys):
        if msg_type != "comm_msg":
            return
        CountingComm.bytes += len(json.dumps(data)) + sum(len(b) for b in buffers or ())
        CountingComm.sent.append((time.monotonic(), self.comm_id))


comm.create_comm = lambda *args, **kwargs: CountingComm(*args, **kwargs)

from nbtrain.dashboard import Dashboard  # noqa: E402  (widgets made after the patch)


class TimedDashboard(Dashboard):
    """Notes when training ends: the end-of-run flush is counted apart."""

    ended_at = 0.0

    def on_train_end(self, logs=None):
        self.ended_at = time.monotonic()
        super().on_train_end(logs)


class MemorySequence(nbtrain.Sequence):
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x) // BATCH

    def __getitem__(self, i):
        s = slice(i * BATCH, (i + 1) * BATCH)
        return self.x[s], self.y[s]


def make_model(width: int) -> keras.Model:
    model = keras.Sequential([
        keras.Input((FEATURES,)),
        keras.layers.Dense(width, activation="relu"),
        keras.layers.Dense(width, activation="relu"),
        keras.layers.Dense(1),
    ])
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    return model


def max_in_window(times: list[float], window: float = 1.0) -> int:
    times = sorted(times)
    return max((bisect.bisect_left(times, t + window) - i for i, t in enumerate(times)),
               default=0)


def speed(args) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.steps * BATCH, FEATURES)).astype("float32")
    y = rng.standard_normal((args.steps * BATCH, 1)).astype("float32")
    sequence, validation = MemorySequence(x, y), (x[:2048], y[:2048])
    model = make_model(args.width)

    def fit(callbacks):
        return nbtrain.fit_generator(model, sequence, epochs=args.epochs, verbose=0,
                                     callbacks=callbacks, validation_data=validation)

    stats = {"messages": [], "msg_window": [], "final": [], "renders": [], "render_window": [],
             "render_ms": [], "updates": [], "kb": [], "gap": []}

    def with_dashboard():
        CountingComm.sent, CountingComm.bytes = [], 0
        dashboard = TimedDashboard(auto_display=False, plot=not args.no_plot)  # timed, as fit
        dashboard.presenter.live.threaded = not args.inline_plot
        plot_id = dashboard.view.plot.model_id
        start = time.monotonic()
        fit([dashboard])
        end = dashboard.ended_at
        seconds = end - start
        sent = [t for t, _ in CountingComm.sent if start <= t < end]
        renders = [t for t, i in CountingComm.sent if i == plot_id and start <= t < end]
        throttle = dashboard.throttle
        stats["messages"].append(len(sent) / seconds)
        stats["msg_window"].append(max_in_window(sent))
        stats["final"].append(len([t for t, _ in CountingComm.sent if t >= end]))
        stats["renders"].append(len(renders) / seconds)
        stats["render_window"].append(max_in_window(renders))
        # the longest wait for a new plot image, from the first one to the end of training
        stats["gap"].append(max(np.diff([*renders, end]), default=seconds) if renders else seconds)
        stats["render_ms"].append(1000 * throttle.render_seconds / max(throttle.renders, 1))
        stats["updates"].append(throttle.updates / seconds)
        stats["kb"].append(CountingComm.bytes / 1024 / seconds)
        dashboard.close()

    contenders = {"display=False": lambda: fit(None), "Dashboard": with_dashboard}
    for fn in contenders.values():  # warm-up: tracing, fonts
        fn()
    for key in stats:
        stats[key].clear()
    rates: dict[str, list[float]] = {name: [] for name in contenders}
    steps = args.steps * args.epochs
    for round_ in range(args.rounds):
        order = list(contenders.items())
        if round_ % 2:
            order.reverse()
        for name, fn in order:
            gc.collect()
            start = time.perf_counter()
            fn()
            rates[name].append(steps / (time.perf_counter() - start))

    med = {name: statistics.median(r) for name, r in rates.items()}
    print(f"steps/s, median of {args.rounds} rounds of {args.epochs} epochs x {args.steps} "
          f"steps (batch {BATCH}, 64-{args.width}-{args.width}-1 MLP, validation each epoch):")
    for name, value in med.items():
        print(f"  {name:14s} {value:8.0f}   (rounds: {', '.join(f'{r:.0f}' for r in rates[name])})")
    ratio = med["Dashboard"] / med["display=False"]
    # Each round runs the two back to back: the ratio within a round is free of the
    # machine's drift between rounds (here steps/s moved 425-632 from round to round).
    paired = [d / o for d, o in zip(rates["Dashboard"], rates["display=False"])]
    print(f"ratio Dashboard / display=False, median of the rounds' ratios: "
          f"{statistics.median(paired):.3f}x  (goal >= 0.97x; rounds: "
          f"{', '.join(f'{r:.3f}' for r in paired)}); ratio of the medians: {ratio:.3f}x")
    worst = max(stats["msg_window"])
    print(f"widget messages while training: {statistics.median(stats['messages']):.1f}/s on "
          f"average, at most {worst} in any 1 s window  (goal <= 20/s); "
          f"{statistics.median(stats['kb']):.1f} KB/s; then {max(stats['final'])} in the "
          "final flush at the end")
    print(f"bar/table updates: {statistics.median(stats['updates']):.1f}/s  (<= 10/s)")
    if args.no_plot:
        return
    where = "the training thread's wall time" if args.inline_plot else "the render thread's CPU"
    print(f"plot renders while training: {statistics.median(stats['renders']):.2f}/s on "
          f"average, at most {max(stats['render_window'])} in any 1 s window (about 1/s); "
          f"{statistics.median(stats['render_ms']):.1f} ms per render ({where}; the final "
          "flush renders once more)")
    print(f"longest wait for a new plot image while training: {max(stats['gap']):.2f} s "
          f"(median of the rounds {statistics.median(stats['gap']):.2f} s; goal <= 2 s)")


def memory(epochs: int = 10) -> None:
    def feed(batches: int, epochs: int = epochs) -> int:
        """Bytes the dashboard holds after `batches` batches in `epochs` epochs."""
        steps = batches // epochs
        dashboard = Dashboard(auto_display=False)
        dashboard.set_params({"epochs": epochs, "steps": steps})
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        start = time.perf_counter()
        dashboard.on_train_begin()
        done = 0
        for epoch in range(epochs):
            dashboard.on_epoch_begin(epoch)
            loss = mae = 0.0
            for batch in range(steps):
                value = 1.0 / (1.0 + 9.0 * done / batches)  # the same curve at any length
                loss += value
                mae += value / 2
                dashboard.on_train_batch_end(batch, {"loss": loss / (batch + 1),
                                                     "mae": mae / (batch + 1)})
                done += 1
            dashboard.on_epoch_end(epoch, {"loss": loss / steps, "mae": mae / steps,
                                           "val_loss": loss / steps, "val_mae": mae / steps})
        dashboard.on_train_end()
        seconds = time.perf_counter() - start
        gc.collect()
        traced = tracemalloc.get_traced_memory()[0] - before
        points = max(len(m.batch) for m in dashboard.tracker.metrics.values())
        png = len(dashboard.png or b"")
        dashboard.close()
        del dashboard
        gc.collect()
        held = traced - (tracemalloc.get_traced_memory()[0] - before)
        tracemalloc.stop()
        print(f"  {batches:>9,} batches in {epochs:>4} epochs: the dashboard holds "
              f"{held / 1024:6.1f} KB ({traced / 1024:6.1f} KB traced in all), {points:4d} "
              f"points per series, PNG {png / 1024:.0f} KB, {1e6 * seconds / batches:6.2f} us "
              "per batch (tracemalloc on)")
        return held

    print("memory, feeding synthetic logs straight to the callback:")
    feed(1000)  # warm-up: fonts, PIL plugins
    small, large = feed(1000), feed(1_000_000)
    print(f"ratio 1e6 / 1e3 batches: {large / max(small, 1):.2f}x  (goal: constant, ~1x)")
    feed(1_000_000, epochs=1000)  # epoch-level series are bounded too
    print("('traced in all' adds matplotlib's process-wide caches of text and tick layouts, "
          "bounded LRUs shared by every figure)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=4000, help="steps per epoch")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--width", type=int, default=320, help="hidden layer width")
    parser.add_argument("--no-plot", action="store_true",
                        help="a dashboard without its plot (what the rest of it costs)")
    parser.add_argument("--inline-plot", action="store_true",
                        help="render the plot on the training thread (as before issue 25), "
                             "not on the dashboard's render thread")
    args = parser.parse_args()
    speed(args)
    memory()


if __name__ == "__main__":
    main()
