"""The `%nbtrain` line magic, registered by `%load_ext nbtrain`.

Like TensorBoard's notebook extension, the magic is a thin parser: every
subcommand delegates to a plain function (`nbtrain.fit`, `Run` methods,
`legacy_on`/`legacy_off`).  Nothing here imports TensorFlow until a
subcommand needs it, so loading the extension is quick.
"""

from __future__ import annotations

import argparse
import ast
import html
import io
import tokenize
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class

from nbtrain.text import (
    batch_fraction,
    epoch_fraction,
    format_learning_rate,
    format_number,
    number_format,
)

USAGE = """\
%nbtrain fit MODEL DATA [--epochs N] [--batch-size B] [--validation VAL] [--steps N]
             [--workers N] [--processes] [--as NAME]
%nbtrain pause|resume|stop|wait [NAME]
%nbtrain resume NAME --epochs N
%nbtrain lr [NAME] VALUE
%nbtrain compare NAME NAME... [--metrics M ...] [--log] [--smoothing W]
%nbtrain status
%nbtrain search [NAME]
%nbtrain legacy [on|off]
Each subcommand takes --help."""


class _HelpShown(Exception):
    """argparse printed the help: nothing else to do."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that reports errors as IPython `UsageError`s instead of exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}\nusage: {self.format_usage().strip()[7:]}")

    def exit(self, status: int = 0, message: str | None = None) -> None:  # type: ignore[override]
        if status:
            raise UsageError(message or f"{self.prog}: error")
        raise _HelpShown()


def _parsers() -> dict[str, _Parser]:
    parsers: dict[str, _Parser] = {}
    fit = _Parser(prog="%nbtrain fit", description="Start a background Run and show its dashboard.")
    fit.add_argument("model", help="expression: a compiled keras.Model")
    fit.add_argument("data", help="expression: a Sequence, PyDataset, generator, tf.data.Dataset, "
                                  "or an (x, y) tuple of arrays")
    fit.add_argument("--epochs", type=int, default=1, help="final epoch (default 1)")
    fit.add_argument("--batch-size", type=int, default=None, help="batch size for arrays")
    fit.add_argument("--validation", default=None, help="expression: validation data")
    fit.add_argument("--steps", type=int, default=None, help="steps per epoch")
    fit.add_argument("--workers", type=int, default=1, help="data workers (default 1)")
    fit.add_argument("--processes", action="store_true", help="worker processes, not threads")
    fit.add_argument("--as", dest="name", default="run", help="name to bind the Run to (default run)")
    parsers["fit"] = fit
    for command, text in (("pause", "Hold the run before its next batch."),
                          ("stop", "Stop the run after its current batch."),
                          ("wait", "Block until the run ends; show its History.")):
        p = _Parser(prog=f"%nbtrain {command}", description=text)
        p.add_argument("name", nargs="?", default="run", help="the Run's name (default run)")
        parsers[command] = p
    resume = _Parser(prog="%nbtrain resume",
                     description="Continue a paused or stopped run; with --epochs, train on to that "
                                 "final epoch.")
    resume.add_argument("name", nargs="?", default="run", help="the Run's name (default run)")
    resume.add_argument("--epochs", type=int, default=None, help="new final epoch")
    parsers["resume"] = resume
    lr = _Parser(prog="%nbtrain lr",
                 description="Set a run's learning rate from its next batch (running, paused or "
                             "stopped).")
    lr.add_argument("words", nargs="+", metavar="[NAME] VALUE",
                    help="the Run's name (default run) and the new learning rate")
    parsers["lr"] = lr
    compare = _Parser(prog="%nbtrain compare",
                      description="One figure of the runs' curves overlaid, labelled by name.")
    compare.add_argument("names", nargs="+", help="Runs or Histories in the notebook, by name")
    compare.add_argument("--metrics", nargs="+", default=None, help="metrics to draw")
    compare.add_argument("--log", action="store_true", help="logarithmic y axes")
    compare.add_argument("--smoothing", type=float, default=0.0,
                         help="TensorBoard's smoothing weight in [0, 1) (default 0)")
    parsers["compare"] = compare
    parsers["status"] = _Parser(prog="%nbtrain status",
                                description="A table of the runs in this kernel's namespace.")
    search = _Parser(prog="%nbtrain search",
                     description="A table of the searches (nbtrain.search) in this kernel's "
                                 "namespace; with NAME, that search's dashboard in this cell.")
    search.add_argument("name", nargs="?", default=None, help="a search's name")
    parsers["search"] = search
    legacy = _Parser(prog="%nbtrain legacy",
                     description="Give keras.Model back fit_generator, evaluate_generator and "
                                 "predict_generator (delegating to nbtrain), or take them away.")
    legacy.add_argument("switch", nargs="?", choices=("on", "off"), default="on")
    parsers["legacy"] = legacy
    return parsers


def _unquote(word: str) -> str:
    """A word that is one quoted string loses its quotes, as in a shell
    (`--validation "(x, y)"` still means the expression `(x, y)`)."""
    if word.startswith("--") and "=" in word:
        option, value = word.split("=", 1)
        return f"{option}={_unquote(value)}"
    if len(word) >= 2 and word[0] == word[-1] and word[0] in "'\"":
        try:
            value = ast.literal_eval(word)
        except (ValueError, SyntaxError):
            return word
        if isinstance(value, str):
            return value
    return word


def split_words(line: str) -> list[str]:
    """Split a magic's line into words at the spaces outside Python brackets and strings.

    `fit model (x, y) --epochs 3` is `['fit', 'model', '(x, y)', '--epochs', '3']`:
    arguments are Python expressions and may hold spaces.

    Raises:
        ValueError: an unclosed bracket or string.

    Example:

    ```python
    split_words("fit model {'a': xa, 'b': xb} --as r2")
    # ['fit', 'model', "{'a': xa, 'b': xb}", '--as', 'r2']
    ```
    """
    line = line.strip()
    words: list[str] = []
    depth, start, end = 0, None, 0
    skip = (tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER, tokenize.INDENT, tokenize.DEDENT)
    try:
        for token in tokenize.generate_tokens(io.StringIO(line).readline):
            if token.type in skip:
                continue
            if token.type == tokenize.ERRORTOKEN and token.string in "'\"":
                raise ValueError(f"unclosed string at column {token.start[1] + 1}")
            first, last = token.start[1], token.end[1]
            if start is None:
                start = first
            elif depth == 0 and first > end:
                words.append(line[start:end])
                start = first
            if token.type == tokenize.OP and token.string in "([{":
                depth += 1
            elif token.type == tokenize.OP and token.string in ")]}":
                depth -= 1
            end = last
    except tokenize.TokenError as exc:
        raise ValueError(f"unclosed bracket or string ({exc.args[0]})") from None
    if start is not None:
        words.append(line[start:end])
    return [_unquote(word) for word in words]


def legacy_on() -> None:
    """`nbtrain.legacy.enable()`: Keras 2's generator methods on `keras.Model`."""
    from nbtrain import legacy

    legacy.enable()


def legacy_off() -> None:
    """`nbtrain.legacy.disable()`: remove the methods `legacy_on` added (and nothing else)."""
    from nbtrain import legacy

    legacy.disable()


def _last_logs(run: Any) -> dict[str, float]:
    """The metrics of a run's last completed epoch (its History), numbers only."""
    logs = {}
    for key, values in (getattr(getattr(run, "history", None), "history", None) or {}).items():
        if values:
            try:
                logs[key] = float(values[-1])
            except (TypeError, ValueError):
                continue
    return logs


def _is_hyperparameter(key: str) -> bool:
    return "learning_rate" in key or key in ("lr", "val_lr")


def _metric_columns(logs: list[dict[str, float]]) -> list[str]:
    """A column per metric of any run, the loss first, each one's `val_` beside it."""
    names: dict[str, None] = {}
    for values in logs:
        for key in values:
            if not _is_hyperparameter(key):
                names.setdefault(key.removeprefix("val_"), None)
    keys = set().union(*logs) if logs else set()
    return [k for name in sorted(names, key=lambda n: n != "loss")
            for k in (name, f"val_{name}") if k in keys]


def runs_table(runs: dict[str, Any]) -> tuple[str, str]:
    """Plain-text and HTML tables of runs: name, state, the epoch and batch it is
    at (in every state), and a column per metric with its last epoch's value
    (each metric's columns in one number format).

    Example:

    ```
    run  state   epoch  batch    loss  val_loss  accuracy  val_accuracy
    r1   paused  3/10   12/100  0.4123    0.3987    0.8812        0.8901
    ```
    """
    logs = [_last_logs(run) for run in runs.values()]
    keys = _metric_columns(logs)
    specs = {}
    for key in keys:
        name = key.removeprefix("val_")
        specs[key] = number_format([v.get(k) for v in logs for k in (name, f"val_{name}")])
    header = ["run", "state", "epoch", "batch", *keys]
    rows = []
    for (name, run), values in zip(runs.items(), logs):
        epochs = getattr(run, "epochs", None) or 0
        epoch = int(getattr(run, "epoch", 0) or 0)
        rows.append([name, str(run.state),
                     epoch_fraction(epoch, epochs) if epochs else f"{epoch + 1}/?",
                     batch_fraction(int(getattr(run, "batch", 0) or 0),
                                    getattr(run, "steps", None), epoch, epochs),
                     *(format_number(values.get(k), specs[k]) for k in keys)])
    table = [header, *rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    text = "\n".join("  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                                for i, (c, w) in enumerate(zip(r, widths))).rstrip()
                     for r in table)
    left, right = "text-align:left", "text-align:right;font-variant-numeric:tabular-nums"
    cells = "".join(f"<th style='{left if i < 2 else right}'>{html.escape(h)}</th>"
                    for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(f"<td style='{left if i < 2 else right}'>"
                                    f"{html.escape(c)}</td>" for i, c in enumerate(r)) + "</tr>"
                   for r in rows)
    return text, (f"<table class='nbtrain-status'><thead><tr>{cells}</tr></thead>"
                  f"<tbody>{body}</tbody></table>")


@magics_class
class NbtrainMagics(Magics):
    """The `%nbtrain` magic."""

    def __init__(self, shell: Any):
        super().__init__(shell)
        self._parsers = _parsers()

    @line_magic
    def nbtrain(self, line: str) -> Any:
        """Steer nbtrain runs from a notebook.

        Usage:

        ```
        %nbtrain fit MODEL DATA [--epochs N] [--batch-size B] [--validation VAL] [--steps N]
                     [--workers N] [--processes] [--as NAME]
        %nbtrain pause|resume|stop|wait [NAME]
        %nbtrain resume NAME --epochs N
        %nbtrain lr [NAME] VALUE
        %nbtrain compare NAME NAME... [--metrics M ...] [--log] [--smoothing W]
        %nbtrain status
        %nbtrain search [NAME]
        %nbtrain legacy [on|off]
        ```
        """
        try:
            words = split_words(line)
        except ValueError as exc:
            raise UsageError(f"%nbtrain: cannot parse the arguments: {exc}") from None
        if not words or words[0] in ("-h", "--help", "help"):
            print(USAGE)
            return None
        command, rest = words[0], words[1:]
        parser = self._parsers.get(command)
        if parser is None:
            raise UsageError(f"%nbtrain: unknown subcommand {command!r}.\n{USAGE}")
        try:
            args = parser.parse_args(rest)
        except _HelpShown:
            return None
        return getattr(self, f"_{command}")(args)

    # -- helpers --------------------------------------------------------------------------

    def _eval(self, expression: str, what: str) -> Any:
        try:
            return self.shell.ev(expression)
        except Exception as exc:
            raise UsageError(f"%nbtrain: cannot evaluate {what} {expression!r}: "
                             f"{type(exc).__name__}: {exc}") from None

    def _run(self, name: str) -> Any:
        from nbtrain.run import Run

        value = self.shell.user_ns.get(name)
        if value is None:
            raise UsageError(f"%nbtrain: no run named {name!r} in this notebook.")
        if not isinstance(value, Run):
            raise UsageError(f"%nbtrain: {name!r} is a {type(value).__name__}, not an nbtrain.Run.")
        return value

    # -- subcommands ----------------------------------------------------------------------

    def _fit(self, args: argparse.Namespace) -> None:
        from nbtrain.interactive import fit

        if not args.name.isidentifier():
            raise UsageError(f"%nbtrain fit: --as needs a Python name, got {args.name!r}.")
        model = self._eval(args.model, "MODEL")
        data = self._eval(args.data, "DATA")
        validation = self._eval(args.validation, "VAL") if args.validation else None
        x, y = data, None
        if isinstance(data, tuple) and len(data) == 2 and hasattr(data[0], "shape"):
            x, y = data
        run = fit(model, x, y, batch_size=args.batch_size, epochs=args.epochs,
                  steps_per_epoch=args.steps, validation_data=validation, workers=args.workers,
                  use_multiprocessing=args.processes)
        self.shell.user_ns[args.name] = run
        return None

    def _pause(self, args: argparse.Namespace) -> None:
        self._run(args.name).pause()

    def _stop(self, args: argparse.Namespace) -> None:
        self._run(args.name).stop()

    def _resume(self, args: argparse.Namespace) -> None:
        run = self._run(args.name)
        try:
            run.resume(epochs=args.epochs)
        except ValueError as exc:
            raise UsageError(f"%nbtrain resume: {exc}") from None

    def _lr(self, args: argparse.Namespace) -> None:
        if len(args.words) > 2:
            raise UsageError(f"%nbtrain lr: expected [NAME] VALUE, got {' '.join(args.words)!r}.")
        name, text = args.words if len(args.words) == 2 else ("run", args.words[0])
        try:
            value = float(text)
        except ValueError:
            raise UsageError(f"%nbtrain lr: {text!r} is not a number.") from None
        run = self._run(name)
        try:
            run.set_learning_rate(value)
        except (ValueError, TypeError, RuntimeError) as exc:
            raise UsageError(f"%nbtrain lr: {exc}") from None
        print(f"{name}: learning rate {format_learning_rate(value)} from the next batch.")

    def _compare(self, args: argparse.Namespace) -> Any:
        from nbtrain.dashboard.compare import compare

        runs = []
        for name in args.names:
            if name not in self.shell.user_ns:
                raise UsageError(f"%nbtrain compare: no run named {name!r} in this notebook.")
            runs.append(self.shell.user_ns[name])
        try:
            return compare(*runs, names=args.names, metrics=args.metrics, log_y=args.log or None,
                           smoothing=args.smoothing)
        except (ValueError, TypeError) as exc:
            raise UsageError(f"%nbtrain compare: {exc}") from None

    def _wait(self, args: argparse.Namespace) -> Any:
        return self._run(args.name).wait()

    def _status(self, args: argparse.Namespace) -> Any:
        from nbtrain.run import Run

        runs = {k: v for k, v in self.shell.user_ns.items()
                if isinstance(v, Run) and not k.startswith("_")}
        text, markup = runs_table(runs)
        from IPython.display import display

        display({"text/plain": text, "text/html": markup}, raw=True)
        return None

    def _search(self, args: argparse.Namespace) -> Any:
        from nbtrain.dashboard.searchboard import display_search, searches_table
        from nbtrain.tuning import Search

        if args.name is not None:
            value = self.shell.user_ns.get(args.name)
            if not isinstance(value, Search):
                raise UsageError(f"%nbtrain search: no search named {args.name!r} in this "
                                 "notebook.")
            display_search(value)
            return None
        searches = {k: v for k, v in self.shell.user_ns.items()
                    if isinstance(v, Search) and not k.startswith("_")}
        text, markup = searches_table(searches)
        from IPython.display import display

        display({"text/plain": text, "text/html": markup}, raw=True)
        return None

    def _legacy(self, args: argparse.Namespace) -> None:
        if args.switch == "on":
            legacy_on()
            print("keras.Model has fit_generator, evaluate_generator and predict_generator "
                  "(nbtrain).")
        else:
            legacy_off()
            print("keras.Model's legacy generator methods removed.")


def load(ipython: Any) -> None:
    """Register the `%nbtrain` magic (idempotent)."""
    ipython.register_magics(NbtrainMagics)


def unload(ipython: Any) -> None:
    """Remove the `%nbtrain` magic and the legacy methods."""
    ipython.magics_manager.magics["line"].pop("nbtrain", None)
    ipython.magics_manager.registry.pop("NbtrainMagics", None)
    legacy_off()
