"""What crosses the process boundary besides batches: generators and exceptions.

Datasets and generators go to workers *by value* with cloudpickle, so classes
and functions defined in `__main__` (a Jupyter kernel, a script) work in the
workers.  A generator object itself cannot be pickled; a generator that has
not started yet is rebuilt in each worker from its function and initial
arguments, also where it sits inside the object sent (a wrapper's attribute,
a closure).  Exceptions come back with the worker's traceback text attached as
their `__cause__`, as `concurrent.futures.ProcessPoolExecutor` does.
"""

from __future__ import annotations

import inspect
import pickle
import sys
import threading
import traceback
import types
from typing import Any

_USE_THREADS = (
    "Pass a freshly created generator (call the generator function and hand over "
    "the result before taking any item from it), an iterator that can be pickled, "
    "or use_multiprocessing=False to read it on worker threads."
)


def _function_of(gen: types.GeneratorType) -> types.FunctionType:
    """The function that made `gen`: found by name where possible (so it pickles
    by reference), else rebuilt from the generator's code and closure."""
    code, frame = gen.gi_code, gen.gi_frame
    module = sys.modules.get(frame.f_globals.get("__name__", ""))
    obj: Any = module
    for part in getattr(code, "co_qualname", code.co_name).split("."):
        obj = getattr(obj, part, None)
    obj = getattr(obj, "__func__", obj)
    if getattr(obj, "__code__", None) is code:
        return obj
    values = inspect.getgeneratorlocals(gen)
    cells = tuple(
        types.CellType(values[name]) if name in values else types.CellType()
        for name in code.co_freevars
    )
    func = types.FunctionType(code, frame.f_globals, code.co_name, None, cells or None)
    func.__qualname__ = getattr(code, "co_qualname", code.co_name)
    return func


def _call_of(gen: types.GeneratorType) -> tuple[types.FunctionType, tuple, dict]:
    """(function, args, kwargs) such that `function(*args, **kwargs)` makes a
    generator in the state `gen` is in (which must be GEN_CREATED)."""
    code = gen.gi_code
    values = inspect.getgeneratorlocals(gen)
    names = code.co_varnames
    n_pos, n_kw = code.co_argcount, code.co_kwonlyargcount
    args = [values[name] for name in names[:n_pos]]
    kwargs = {name: values[name] for name in names[n_pos : n_pos + n_kw]}
    extra = n_pos + n_kw
    if code.co_flags & inspect.CO_VARARGS:
        args.extend(values[names[extra]])
        extra += 1
    if code.co_flags & inspect.CO_VARKEYWORDS:
        kwargs.update(values[names[extra]])
    return _function_of(gen), tuple(args), kwargs


def _fresh_generator(func: Any, args: tuple, kwargs: dict) -> Any:
    """The worker's side of a not-yet-started generator: call its function again."""
    return func(*args, **kwargs)


def _fresh_lock(kind: str) -> Any:
    return threading.RLock() if kind == "rlock" else threading.Lock()


_LOCK_TYPES = (type(threading.Lock()), type(threading.RLock()))


def _pickler_class() -> type:
    """A cloudpickle pickler that also sends what a worker can rebuild itself:
    a generator that has not started (its function and initial arguments) and a
    lock (a new one: each worker process owns its copy), wherever they sit in the
    object sent (an attribute of a wrapper such as the well-known
    `threadsafe_iter`, a closure cell, a list...)."""
    import cloudpickle

    class Pickler(cloudpickle.CloudPickler):
        def reducer_override(self, obj: Any) -> Any:
            if inspect.isgenerator(obj):
                state = inspect.getgeneratorstate(obj)
                if state != "GEN_CREATED":
                    raise TypeError(
                        f"it holds the generator {obj.__name__!r}, which is "
                        f"{state.lower().replace('gen_', '')}: a generator that has started "
                        "cannot be copied"
                    )
                return _fresh_generator, _call_of(obj)
            if isinstance(obj, _LOCK_TYPES):
                return _fresh_lock, ("rlock" if "RLock" in type(obj).__name__ else "lock",)
            return super().reducer_override(obj)

    return Pickler


def dumps(obj: Any, protocol: int = 5, buffer_callback: Any = None) -> bytes:
    """Pickle `obj` by value for a worker process (cloudpickle, plus not-yet-started
    generators and locks anywhere inside it, rebuilt fresh in the worker).

    Args:
        obj: anything cloudpickle can pickle, possibly holding fresh generators or locks.
        protocol: pickle protocol.
        buffer_callback: receives out-of-band buffers (protocol 5).

    Example:

    ```python
    payload = dumps(threadsafe_iter(make_batches()))   # the wrapped generator has not started
    iterator = pickle.loads(payload)                    # a fresh copy, its own lock
    ```
    """
    import io

    buffer = io.BytesIO()
    _pickler_class()(buffer, protocol=protocol, buffer_callback=buffer_callback).dump(obj)
    return buffer.getvalue()


class _Discard:
    def write(self, data: Any) -> int:
        return len(data)


def check_picklable(obj: Any) -> None:
    """Pickle `obj` the way `dumps` would, into nothing: raise what pickling raises.

    Array buffers are taken out of band and never copied, so checking a large
    dataset costs about as much as walking its attributes.
    """
    _pickler_class()(_Discard(), protocol=5, buffer_callback=lambda _: None).dump(obj)


def generator_payload(generator: Any) -> bytes:
    """Serialise `generator` so each worker process can make its own copy.

    A generator not started yet travels as its function and initial arguments;
    any other iterator must be picklable (by cloudpickle); not-yet-started
    generators and locks inside it (a `threadsafe_iter` wrapper's attribute, a
    closure) are rebuilt fresh in each worker.

    Raises:
        TypeError: the generator has started or the iterator cannot be pickled.
    """
    if inspect.isgenerator(generator) and inspect.getgeneratorstate(generator) == "GEN_CREATED":
        try:
            return dumps(("call", *_call_of(generator)))
        except Exception as exc:  # noqa: BLE001 - reported with the fix
            raise TypeError(
                f"The generator {generator.__name__!r} cannot be sent to worker processes: "
                f"its arguments or closure cannot be pickled ({exc}). {_USE_THREADS}"
            ) from exc
    if inspect.isgenerator(generator):
        state = inspect.getgeneratorstate(generator).lower().replace("gen_", "")
        raise TypeError(
            f"The generator {generator.__name__!r} cannot be sent to worker processes: "
            f"it is {state}, and a generator that has started cannot be copied. {_USE_THREADS}"
        )
    try:
        return dumps(("iter", generator))
    except Exception as exc:  # noqa: BLE001 - reported with the fix
        raise TypeError(
            f"The iterator {type(generator).__name__!r} cannot be sent to worker processes: "
            f"it cannot be pickled ({exc}). {_USE_THREADS}"
        ) from exc


def make_iterator(payload: bytes) -> Any:
    """The worker's side of `generator_payload`: a fresh iterator."""
    kind, *rest = pickle.loads(payload)
    if kind == "call":
        func, args, kwargs = rest
        return func(*args, **kwargs)
    return iter(rest[0])


class RemoteTraceback(Exception):
    """The traceback of an exception raised in a worker process, as text.

    Set as the `__cause__` of the exception re-raised in the consumer, so the
    worker's stack is printed above the consumer's.
    """

    def __init__(self, tb: str):
        super().__init__(tb)
        self.tb = tb

    def __str__(self) -> str:
        return self.tb


def pack_exception(exc: BaseException) -> tuple:
    """The worker's side: the exception pickled by value (or None when it cannot
    be), its type name, message and formatted traceback."""
    import cloudpickle

    try:
        data = cloudpickle.dumps(exc)
    except Exception:  # noqa: BLE001 - the text below still tells what happened
        data = None
    kind = type(exc)
    tb = "".join(traceback.format_exception(kind, exc, exc.__traceback__))
    return data, f"{kind.__module__}.{kind.__qualname__}", str(exc), tb


def unpack_exception(packed: tuple, where: str) -> BaseException:
    """The consumer's side: the original exception (a RuntimeError naming its
    type if it cannot be rebuilt), the worker's traceback as its `__cause__`
    and a note telling `where` it was raised."""
    data, type_name, message, tb = packed
    exc = None
    if data is not None:
        try:
            exc = pickle.loads(data)
        except Exception:  # noqa: BLE001 - e.g. an exception class with required kwargs
            exc = None
    if not isinstance(exc, BaseException):
        exc = RuntimeError(f"{type_name}: {message}")
    exc.__cause__ = RemoteTraceback(f'\n"""\n{tb}"""')
    if hasattr(exc, "add_note"):
        exc.add_note(f"(raised in {where})")
    return exc
