"""What crosses the process boundary besides batches: generators and exceptions.

Datasets and generators go to workers *by value* with cloudpickle, so classes
and functions defined in `__main__` (a Jupyter kernel, a script) work in the
workers.  A generator object itself cannot be pickled; a generator that has
not started yet is rebuilt in each worker from its function and initial
arguments, also where it sits inside the object sent (a wrapper's attribute,
a closure), and so is one that has started if an object made it from its
own method (`self.index_generator = self._flow_index()` in Keras's image
iterators); a lock is sent as a new one.  Exceptions come back
with the worker's traceback text attached as their `__cause__`, as
`concurrent.futures.ProcessPoolExecutor` does.

One pickler serves the up-front check (`check_picklable`) and the real send
(`dumps`, which `shm.write_blob` uses), so what the check accepts is what is
sent.  What cannot be pickled is reported as `Unpicklable`, naming the part of
the object that cannot (`MySequence.file`, `threadsafe_iter.it`): the first
part that fails on its own, found by pickling the object's parts one by one
(`locate`), each with the objects above it left out.
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


def _own_method_call(gen: types.GeneratorType) -> tuple | None:
    """For a generator an object made from its own method taking nothing else
    (`self.index_generator = self._flow_index()` in Keras's image iterators),
    the call that makes it again: (method, (object,), {}); else None.

    Such a generator is part of the object's iteration state, and a worker
    process serving the object's `__getitem__` makes it again from the start,
    whether it had started in the parent (someone called `next(iterator)` to
    look at a batch) or not."""
    code = gen.gi_code
    if (code.co_argcount != 1 or code.co_kwonlyargcount
            or code.co_flags & (inspect.CO_VARARGS | inspect.CO_VARKEYWORDS)):
        return None
    frame = gen.gi_frame
    if frame is None:
        return None
    owner = frame.f_locals.get(code.co_varnames[0])
    method = getattr(type(owner), code.co_name, None)
    if getattr(method, "__code__", None) is not code:
        return None
    return method, (owner,), {}


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
                    call = _own_method_call(obj)
                    if call is not None:
                        return _fresh_generator, call
                    raise TypeError(
                        f"the generator {obj.__name__!r} is "
                        f"{state.lower().replace('gen_', '')}: a generator that has started "
                        "cannot be copied"
                    )
                return _fresh_generator, _call_of(obj)
            if isinstance(obj, _LOCK_TYPES):
                return _fresh_lock, ("rlock" if "RLock" in type(obj).__name__ else "lock",)
            return super().reducer_override(obj)

    return Pickler


class Unpicklable(TypeError):
    """An object cannot be sent to a worker process.

    Attributes:
        path: the part of the object that cannot be pickled, as an expression
            from the object's class name (`NumpyArrayIterator.file`,
            `Wrapper.items[2]`, `make_batches(path=...)`: an argument of a generator).
        error: what pickling that part raised.
    """

    def __init__(self, path: str, error: BaseException):
        self.path = path
        self.error = error
        super().__init__(f"`{path}` cannot be pickled ({type(error).__name__}: {error})")


def _pickle(obj: Any, file: Any, protocol: int = 5, buffer_callback: Any = None,
            skip: frozenset = frozenset()) -> None:
    """Pickle `obj` into `file` with nbtrain's pickler; objects whose id is in
    `skip` are written as references, not pickled (see `locate`)."""
    pickler = _pickler_class()(file, protocol=protocol, buffer_callback=buffer_callback)
    if skip:
        def persistent_id(value: Any) -> Any:
            return "above" if id(value) in skip else None

        pickler.persistent_id = persistent_id
    pickler.dump(obj)


def dumps(obj: Any, protocol: int = 5, buffer_callback: Any = None) -> bytes:
    """Pickle `obj` by value for a worker process (cloudpickle, plus not-yet-started
    generators and locks anywhere inside it, rebuilt fresh in the worker).

    Args:
        obj: anything cloudpickle can pickle, possibly holding fresh generators or locks.
        protocol: pickle protocol.
        buffer_callback: receives out-of-band buffers (protocol 5).

    Raises:
        Unpicklable: naming the part of `obj` that cannot be pickled.

    Example:

    ```python
    payload = dumps(threadsafe_iter(make_batches()))   # the wrapped generator has not started
    iterator = pickle.loads(payload)                    # a fresh copy, its own lock
    ```
    """
    try:
        return _dumps(obj, protocol, buffer_callback)
    except Exception as exc:  # noqa: BLE001 - told with the part that fails
        raise locate(obj, exc) from exc


def _dumps(obj: Any, protocol: int = 5, buffer_callback: Any = None) -> bytes:
    import io

    buffer = io.BytesIO()
    _pickle(obj, buffer, protocol, buffer_callback)
    return buffer.getvalue()


class _Discard:
    def write(self, data: Any) -> int:
        return len(data)


def check_picklable(obj: Any) -> None:
    """Pickle `obj` the way `dumps` would, into nothing.

    Array buffers are taken out of band and never copied, so checking a large
    dataset costs about as much as walking its attributes.

    Raises:
        Unpicklable: naming the part of `obj` that cannot be pickled.
    """
    try:
        _pickle(obj, _Discard(), buffer_callback=lambda _: None)
    except Exception as exc:  # noqa: BLE001 - told with the part that fails
        raise locate(obj, exc) from exc


def _fails(obj: Any, skip: frozenset) -> BaseException | None:
    try:
        _pickle(obj, _Discard(), buffer_callback=lambda _: None, skip=skip)
    except Exception as exc:  # noqa: BLE001 - that is the answer
        return exc
    return None


def _state_parts(state: Any) -> list[tuple[str, Any]]:
    if isinstance(state, tuple) and len(state) == 2 and all(
            s is None or isinstance(s, dict) for s in state):
        return [p for s in state if s for p in _state_parts(s)]
    if isinstance(state, dict):
        return [(f".{k}" if isinstance(k, str) and k.isidentifier() else f"[{k!r}]", v)
                for k, v in state.items()]
    return [] if state is None else [(" (its state)", state)]


def _parts(obj: Any) -> list[tuple[str, Any]]:
    """The parts of `obj` as pickle sees them, each with the text naming it."""
    if isinstance(obj, dict):
        return [(f"[{k!r}]", v) for k, v in obj.items()]
    if isinstance(obj, (list, tuple)):
        return [(f"[{i}]", v) for i, v in enumerate(obj)]
    if isinstance(obj, (set, frozenset)):
        return [(" (an element)", v) for v in obj]
    if inspect.isgenerator(obj):
        if inspect.getgeneratorstate(obj) != "GEN_CREATED":
            return []
        function, args, kwargs = _call_of(obj)
        names = obj.gi_code.co_varnames
        return ([(f"({n}=...)", v) for n, v in zip(names, args)]
                + [(f"({n}=...)", v) for n, v in kwargs.items()]
                + [(" (its function)", function)])
    if isinstance(obj, types.MethodType):
        return [(".__self__", obj.__self__), (".__func__", obj.__func__)]
    if isinstance(obj, types.FunctionType):
        code = obj.__code__
        cells = zip(code.co_freevars, obj.__closure__ or ())
        parts = [(f" (closure variable {n!r})", c.cell_contents) for n, c in cells
                 if c.cell_contents is not c]
        parts += [(f" (global {n!r})", obj.__globals__[n]) for n in code.co_names
                  if n in obj.__globals__ and not inspect.ismodule(obj.__globals__[n])]
        return parts + [(".__defaults__", obj.__defaults__)] if obj.__defaults__ else parts
    if isinstance(obj, type) or inspect.ismodule(obj) or callable(obj) and not hasattr(
            obj, "__dict__"):
        return []
    try:
        reduced = obj.__reduce_ex__(5)
    except Exception:  # noqa: BLE001 - a leaf: nothing inside to blame
        return []
    if not isinstance(reduced, tuple):
        return []
    parts = _state_parts(reduced[2]) if len(reduced) > 2 else []
    if len(reduced) > 3 and reduced[3] is not None:
        parts += [(f"[{i}]", v) for i, v in enumerate(reduced[3])]
    if len(reduced) > 4 and reduced[4] is not None:
        parts += [(f"[{k!r}]", v) for k, v in reduced[4]]
    args = reduced[1] if len(reduced) > 1 and isinstance(reduced[1], tuple) else ()
    parts += [(f" (argument {i} of its constructor)", v) for i, v in enumerate(args)
              if not isinstance(v, type)]
    return parts + [(f" (its class {type(obj).__qualname__})", type(obj))]


def locate(obj: Any, error: BaseException, root: str | None = None) -> Unpicklable:
    """What part of `obj` cannot be pickled, given the `error` pickling it raised.

    Goes down from `obj` to the first part that fails to pickle on its own,
    each part pickled with the objects above it left out (so a method or a
    generator that refers back to its owner is not blamed for the owner), to
    the deepest such part.

    Args:
        obj: the object that failed to pickle.
        error: what pickling it raised.
        root: how to name `obj` in the path (default: its class name).

    Example:

    ```python
    locate(sequence, exc).path   # 'MySequence.file'
    ```
    """
    path = root or type(obj).__name__
    above = {id(obj)}
    for _ in range(50):
        try:
            parts = _parts(obj)
        except Exception:  # noqa: BLE001 - a part that cannot be listed is the answer
            break
        for suffix, part in parts:
            if id(part) in above:
                continue
            failed = _fails(part, frozenset(above))
            if failed is not None:
                obj, error, path = part, failed, path + suffix
                above.add(id(part))
                break
        else:
            break
    if isinstance(error, Unpicklable):
        return error
    return Unpicklable(path, error)


def generator_payload(generator: Any) -> bytes:
    """Serialise `generator` so each worker process can make its own copy.

    A generator not started yet travels as its function and initial arguments;
    any other iterator must be picklable (by cloudpickle); not-yet-started
    generators and locks inside it (a `threadsafe_iter` wrapper's attribute, a
    closure) are rebuilt fresh in each worker.

    Raises:
        TypeError: the generator has started or the iterator cannot be pickled
            (naming the part that cannot).
    """
    if inspect.isgenerator(generator) and inspect.getgeneratorstate(generator) == "GEN_CREATED":
        try:
            return _dumps(("call", *_call_of(generator)))
        except Exception as exc:  # noqa: BLE001 - told with the part that fails
            where = locate(generator, exc, generator.__name__)
            raise TypeError(
                f"The generator {generator.__name__!r} cannot be sent to worker processes: "
                f"its arguments or closure cannot be pickled ({where}). {_USE_THREADS}"
            ) from exc
    if inspect.isgenerator(generator):
        state = inspect.getgeneratorstate(generator).lower().replace("gen_", "")
        raise TypeError(
            f"The generator {generator.__name__!r} cannot be sent to worker processes: "
            f"it is {state}, and a generator that has started cannot be copied. {_USE_THREADS}"
        )
    try:
        return _dumps(("iter", generator))
    except Exception as exc:  # noqa: BLE001 - told with the part that fails
        where = locate(generator, exc)
        raise TypeError(
            f"The iterator {type(generator).__name__!r} cannot be sent to worker processes: "
            f"{where}. {_USE_THREADS}"
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
