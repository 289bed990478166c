"""The fit contract: every argument of a training job, written once.

`TABLE` gives each argument of `model.fit`, Keras 2's generator methods and
nbtrain's data arguments its default, its annotation and what it means.  A
public function's parameter list is a `Contract`: the order of its names in
the table (and any default it changes).  `Contract.takes` builds the public
function from a body that receives the arguments as one mapping, so the
signature `inspect.signature` and `help()` show, and the "Args:" section of
the docstring, are generated here; the body documents only what it means
differently (or its own extra parameters).  Inside nbtrain the arguments
travel as that one mapping, down to `nbtrain.engine.config.fit_config`.

```
nbtrain.fit            FIT             -> Run(**arguments) -> fit_config(api="fit")
nbtrain.Run            RUN             -> fit_config(api="fit")
nbtrain.fit_generator  FIT_GENERATOR   -> fit_config(api="fit_generator") -> FitLoop
model.fit_generator    FIT_GENERATOR   (nbtrain.legacy) -> nbtrain.fit_generator
evaluate_generator,
predict_generator      INFERENCE       (nbtrain.engine.evaluation)
```
"""

from __future__ import annotations

import functools
import inspect
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

_EMPTY = inspect.Parameter.empty


@dataclass(frozen=True)
class Argument:
    """One argument: its default, its annotation (as written) and its meaning."""

    default: Any
    annotation: str
    doc: str


#: Every argument of the fit contract, and what it means here.
TABLE: dict[str, Argument] = {
    "model": Argument(_EMPTY, "Any", "a compiled `keras.Model`."),
    "x": Argument(_EMPTY, "Any",
                  "arrays (a NumPy array, or a list or dict of them for several inputs) with "
                  "`y`, an `nbtrain.Sequence`, a `keras.utils.PyDataset`, a generator (with "
                  "`steps_per_epoch`) or a `tf.data.Dataset`."),
    "generator": Argument(_EMPTY, "Any",
                          "an `nbtrain.Sequence`, a `keras.utils.PyDataset`, or an iterator "
                          "yielding `(x, y)` or `(x, y, sample_weight)` tuples."),
    "y": Argument(None, "Any", "targets, only when `x` is arrays."),
    "batch_size": Argument(None, "int | None", "samples per batch, only for arrays (default 32)."),
    "epochs": Argument(1, "int",
                       "index of the final epoch: trains epochs `initial_epoch` to `epochs - 1`."),
    "verbose": Argument("auto", "Any", "0 silent, 1 a progress bar, 2 one line per epoch "
                                       "(Keras's own display); 'auto' is 1."),
    "callbacks": Argument(None, "Any",
                          "a list of `keras.callbacks.Callback` (run on the training thread)."),
    "validation_split": Argument(0.0, "float",
                                 "fraction of the array samples (the last ones, before "
                                 "shuffling) held out for validation, as `model.fit` does."),
    "validation_data": Argument(None, "Any",
                                "`(x, y)`, `(x, y, sample_weight)`, a Sequence, a PyDataset, a "
                                "generator (with `validation_steps`) or a `tf.data.Dataset`."),
    "shuffle": Argument(True, "bool",
                        "shuffle array samples, or a Sequence's batch order, at every epoch."),
    "class_weight": Argument(None, "dict | None",
                             "dict mapping class index to a weight for the loss."),
    "sample_weight": Argument(None, "Any", "per-sample weights, only when `x` is arrays."),
    "initial_epoch": Argument(0, "int", "epoch at which to start (to resume a previous run)."),
    "steps_per_epoch": Argument(None, "int | None",
                                "batches per epoch; None means the Sequence's length (read "
                                "again after every epoch) or the dataset's cardinality; "
                                "required for a generator."),
    "steps": Argument(None, "int | None", "batches to draw; None means the Sequence's length "
                                          "(required for a generator)."),
    "validation_steps": Argument(None, "int | None",
                                 "batches per validation; required for a validation generator."),
    "validation_batch_size": Argument(None, "int | None",
                                      "samples per validation batch for array validation data "
                                      "(default `batch_size`)."),
    "validation_freq": Argument(1, "Any", "validate every N epochs (int), or at these 1-indexed "
                                          "epochs (list)."),
    "max_queue_size": Argument(10, "int", "batches read ahead by the workers."),
    "workers": Argument(1, "int", "0 reads the data on the loop's own thread; N >= 1 uses N "
                                  "workers."),
    "use_multiprocessing": Argument(False, "bool",
                                    "the workers are processes instead of threads."),
}

#: What each argument means (the glossary `nbtrain.fit`'s docstring is made from).
ARGUMENTS: dict[str, str] = {name: argument.doc for name, argument in TABLE.items()}


@dataclass(frozen=True)
class Contract:
    """A public function's parameter list: names of `TABLE`, in its order.

    Attributes:
        names: the arguments after the body's leading parameters (`model`,
            `x`...), in the signature's order.
        keyword_only: they are keyword-only (`model.fit`'s style) rather than
            positional (Keras 2's).
        defaults: defaults this function changes (Keras 2's `verbose=1`).

    Example:

    ```python
    @FIT_GENERATOR.takes
    def fit_generator(model, generator, **arguments) -> History:
        \"\"\"Train ...

        Args:
            model: a compiled `keras.Model`.
        \"\"\"
        loop = FitLoop(model, generator, **arguments)   # arguments: the 13 others
    ```
    """

    names: tuple[str, ...]
    keyword_only: bool = False
    defaults: dict[str, Any] = field(default_factory=dict)

    def default(self, name: str) -> Any:
        return self.defaults.get(name, TABLE[name].default)

    def complete(self, arguments: dict[str, Any], who: str) -> dict[str, Any]:
        """`arguments` with this contract's defaults for those not given; a TypeError,
        as Python words it, for a name the contract does not have."""
        for name in arguments:
            if name not in self.names:
                raise TypeError(f"{who}() got an unexpected keyword argument {name!r}")
        return {name: arguments.get(name, self.default(name)) for name in self.names}

    def signature(self, body: Callable) -> inspect.Signature:
        """`body`'s own parameters before its `**arguments`, this contract's arguments,
        then `body`'s own keyword-only parameters; `body`'s return annotation."""
        own = inspect.signature(body)
        first = [p for p in own.parameters.values()
                 if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
        last = [p for p in own.parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY]
        kind = (inspect.Parameter.KEYWORD_ONLY if self.keyword_only
                else inspect.Parameter.POSITIONAL_OR_KEYWORD)
        table = [inspect.Parameter(name, kind, default=self.default(name),
                                   annotation=TABLE[name].annotation) for name in self.names]
        return own.replace(parameters=[*first, *table, *last])

    def takes(self, body: Callable) -> Callable:
        """The public function: `body`, called with the arguments bound as Python
        binds them to the generated signature (defaults filled in), the contract's
        ones gathered in its `**arguments`; its docstring's "Args:" made whole."""
        signature = self.signature(body)
        name = body.__qualname__  # as Python names it in its own TypeError

        @functools.wraps(body)
        def function(*args: Any, **kwargs: Any) -> Any:
            try:
                bound = signature.bind(*args, **kwargs)
            except TypeError as exc:
                raise TypeError(f"{name}() {exc}") from None
            bound.apply_defaults()
            return body(**bound.arguments)

        function.__signature__ = signature  # type: ignore[attr-defined]
        if body.__doc__:  # (a class's __init__ is documented by its class)
            function.__doc__ = document(body.__doc__, signature)
        return function


#: `model.fit`'s arguments in its order, then nbtrain's data arguments (`nbtrain.fit`).
FIT = Contract(("batch_size", "epochs", "verbose", "callbacks", "validation_split",
                "validation_data", "shuffle", "class_weight", "sample_weight", "initial_epoch",
                "steps_per_epoch", "validation_steps", "validation_batch_size", "validation_freq",
                "workers", "use_multiprocessing", "max_queue_size"), keyword_only=True)
#: `nbtrain.Run`: those of `nbtrain.fit` but `verbose` (the display's).
RUN = Contract(tuple(name for name in FIT.names if name != "verbose"), keyword_only=True)
#: Keras 2.3's `fit_generator`, in its order.
FIT_GENERATOR = Contract(("steps_per_epoch", "epochs", "verbose", "callbacks", "validation_data",
                          "validation_steps", "validation_freq", "class_weight", "max_queue_size",
                          "workers", "use_multiprocessing", "shuffle", "initial_epoch"),
                         defaults={"verbose": 1})
#: Keras 2.3's `evaluate_generator` and `predict_generator`.
INFERENCE = Contract(("steps", "callbacks", "max_queue_size", "workers", "use_multiprocessing",
                      "verbose"), defaults={"verbose": 0})


def document(doc: str, signature: inspect.Signature, *, others: bool = False) -> str:
    """`doc` with its "Args:" section listing every parameter of `signature` in order:
    the entry `doc` writes for it, else the table's (`self` aside).  An entry for a
    parameter `signature` lacks is an error, or dropped with `others` (`doc` is
    another function's: `nbtrain.legacy`'s methods are told without `model`)."""
    lines = doc.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip().startswith("Args:"))
    except StopIteration:
        raise ValueError("a docstring made from the fit contract needs an 'Args:' "
                         "section") from None
    indent = " " * (len(lines[start]) - len(lines[start].lstrip()) + 4)
    end, own, name = start + 1, {}, None
    while end < len(lines) and lines[end].startswith(indent):
        line = lines[end]
        if not line.startswith(indent + " "):
            name = line.strip().partition(":")[0]
            own[name] = []
        own[name].append(line)
        end += 1
    block = []
    for name in signature.parameters:
        if name in own:
            block += own.pop(name)
        elif name in TABLE:
            block += textwrap.wrap(f"{name}: {TABLE[name].doc}", 92, initial_indent=indent,
                                   subsequent_indent=indent + "    ", break_long_words=False,
                                   break_on_hyphens=False)
        elif name != "self":
            raise ValueError(f"`{name}` is documented neither in the docstring nor in TABLE")
    if own and not others:
        raise ValueError(f"the docstring documents parameters it does not take: {sorted(own)}")
    return "\n".join([*lines[:start + 1], *block, *lines[end:]])


__all__ = ["ARGUMENTS", "FIT", "FIT_GENERATOR", "INFERENCE", "RUN", "TABLE", "Argument",
           "Contract", "document"]
