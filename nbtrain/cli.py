"""`nbtrain` console commands.

`nbtrain demo` trains a small model on generated data in the terminal, shown as
nbtrain shows a run outside a notebook (its states, what Ctrl-C does, Keras's
progress bar): the headless smoke test of the main job.
"""

from __future__ import annotations

import argparse
import os
import sys

INTERRUPTED = 130
"""`nbtrain demo`'s exit status after a Ctrl-C (a shell's 128 + SIGINT)."""

CTRL_C_HINT = "Ctrl-C stops it; the history is kept"


def demo(epochs: int = 3, workers: int = 1, processes: bool = False) -> int:
    """Train a small classifier on generated data in a background `nbtrain.Run`,
    shown in the terminal as nbtrain shows a run outside a notebook: its states
    (`nbtrain.dashboard.textstatus.TextStatus`, here with what Ctrl-C does) and
    Keras's progress bar.

    Args:
        epochs: epochs to train.
        workers: data workers (0 reads on the training thread).
        processes: use worker processes instead of threads.

    Returns:
        0 when the final training accuracy beats chance, 1 when it does not,
        `INTERRUPTED` after a Ctrl-C (the run stopped, its history kept).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # nbtrain is imported (this module is in it): TensorFlow's start-up lines are held
    # back (nbtrain.tf_startup) when Keras imports it now.
    import keras
    import numpy as np

    import nbtrain
    from nbtrain.dashboard.textstatus import TextStatus
    from nbtrain.engine.progress import TextProgress

    class Blobs(nbtrain.Sequence):
        """Two Gaussian blobs in 8 dimensions, in batches of 32."""

        def __init__(self, n: int = 4096, seed: int = 0):
            rng = np.random.default_rng(seed)
            self.y = rng.integers(0, 2, n).astype("float32")
            self.x = (rng.standard_normal((n, 8)) + self.y[:, None] * 1.5).astype("float32")

        def __len__(self) -> int:
            return len(self.x) // 32

        def __getitem__(self, i: int):
            s = slice(i * 32, (i + 1) * 32)
            return self.x[s], self.y[s]

    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((8,)),
        keras.layers.Dense(32, activation="relu"),
        keras.layers.Dense(1, activation="sigmoid"),
    ])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    run = nbtrain.Run(model, Blobs(), epochs=epochs, validation_data=Blobs(512, seed=1),
                      workers=workers, use_multiprocessing=processes)
    TextStatus.for_run(run, epoch_lines=False, hint=CTRL_C_HINT)
    run.add_callback(TextProgress(verbose=1))
    try:
        history = run.start().wait()
    except KeyboardInterrupt:  # wait() stopped the run: say what it kept
        kept = len(run.history.epoch)
        print(f"nbtrain demo: interrupted; the history keeps {kept} complete "
              f"epoch{'' if kept == 1 else 's'}", flush=True)
        return INTERRUPTED
    finally:
        run.close()
    accuracy = history.history["accuracy"][-1]  # epochs >= 1: argparse checked it
    print(f"final accuracy {accuracy:.3f} after {len(history.epoch)} epochs")
    return 0 if accuracy > 0.6 else 1


def _integer(minimum: int):
    """An argparse type: an integer >= `minimum`, else a usage error naming the value."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `nbtrain` command."""
    parser = argparse.ArgumentParser(prog="nbtrain", description="nbtrain commands")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="train a small model on generated data in the terminal")
    p.add_argument("--epochs", type=_integer(1), default=3, help="epochs to train (>= 1)")
    p.add_argument("--workers", type=_integer(0), default=1,
                   help="data workers (0 reads on the training thread)")
    p.add_argument("--processes", action="store_true", help="use worker processes")
    args = parser.parse_args(argv)
    if args.command == "demo":
        return demo(args.epochs, args.workers, args.processes)
    return 2  # pragma: no cover - argparse enforces the choices


if __name__ == "__main__":
    sys.exit(main())
