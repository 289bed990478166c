"""Check the package's layout: no import cycle, no class over a size, no reach into
another object's private attributes.

Usage: `python tools/check_layout.py [--max-class-lines N]`; exits 1 on a finding.

- Imports: every `import`/`from ... import` in `nbtrain/` (at module level or
  inside functions: a lazy import is still a dependency) makes an edge between
  modules; a package's `__init__` counts as the package.  Any strongly
  connected component of more than one module is a cycle.
- Classes: the lines from `class` to the end of its body, docstrings included.
- Private access: `obj._name` where `obj` is not `self` or `cls`, and
  `from nbtrain... import _name` across modules; `KNOWN` lists the private
  names of other projects nbtrain uses on purpose, each with its reason.
- File names: no two modules share one (`__init__.py` aside), so a name says
  which room it is; `SHARED_NAMES` would list an exception, with why.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "nbtrain"

# Private names of other projects that nbtrain uses knowingly (no public API does it),
# and markers nbtrain sets on objects of its own making.  Not nbtrain's own privates.
KNOWN = {
    "_dom_classes": "ipywidgets' trait for CSS classes (one message, unlike add_class)",
    "_launch": "multiprocessing's spawn Popen (nbtrain.data._processes.spawn: fd passing)",
    "_Popen": "multiprocessing's Process factory (nbtrain.data._processes.spawn)",
    "_in_multi_worker_mode": "tf.distribute: whether the strategy spans several workers",
    "_maybe_symbolic_build": "Keras: build the model before the first compiled step",
    "_symbolic_build": "Keras (JAX, PyTorch): build the model before the first step, as fit does",
    "_jax_state_synced": "Keras JAX: a callback wrote the state back (engine.backends.jax_steps)",
    "_history": "Keras CallbackList's History (LoopCallbacks is a CallbackList)",
    "_nbtrain_legacy": "a marker on the methods nbtrain.magics adds to keras.Model",
    "_call_flat": "TF ConcreteFunction: the traced step called on flat tensors (engine.steps, checked)",
    "_prev_summary_state": "Keras TensorBoard: its writer, re-pushed on a new pass's thread",
    "_push_writer": "Keras TensorBoard: re-push its default writer on another thread",
    "_pop_writer": "Keras TensorBoard: pop its thread-local writer at an interruption",
    "_train_writer": "Keras TensorBoard: its writer, re-pushed on a new pass's thread",
    "_global_train_batch": "Keras TensorBoard: its batch step, kept across training segments",
    "_learning_rate": "Keras optimizer: its learning-rate variable or schedule (engine.hyperparameters)",
    "_initial_epoch": "Keras BackupAndRestore: the restored epoch (what Keras's own fit reads)",
    "_exit": "os._exit: a worker process ends without running the parent's exit hooks",
    "_name": "multiprocessing.Process's name, read by the spawn launcher (data._processes.spawn)",
    "_getframe": "CPython's sys._getframe: warnings attributed to the user's frame",
    "_recv_callback": "pyzmq ZMQStream: ipykernel 7's main-shell reader, wrapped (kernel_events)",
    "_parent_ident": "ipykernel 7: routing identity of the busy cell's request (nbtrain.kernel_events)",
}

# File names two modules may share (none now: each name says which room it is).
SHARED_NAMES: dict[str, str] = {}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def resolve(module: str, level: int, name: str | None, is_package: bool) -> str:
    if level == 0:
        return name or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def imports(modules: dict[str, ast.Module], paths: dict[str, Path]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, tree in modules.items():
        is_package = paths[name].name == "__init__.py"
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                # `from pkg import submodule` depends on the submodule; `from pkg
                # import name` on the module that defines it (pkg's __init__).
                base = resolve(name, node.level, node.module, is_package)
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    targets.append(sub if sub in modules else base)
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10000)
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def package_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Cycles between a package's subpackages: edges module -> module, folded to
    the first two name components (nbtrain.run, nbtrain.dashboard, ...)."""
    folded: dict[str, set[str]] = {}
    for name, targets in graph.items():
        key = ".".join(name.split(".")[:2])
        folded.setdefault(key, set())
        for target in targets:
            other = ".".join(target.split(".")[:2])
            if other != key and other != "nbtrain":
                folded[key].add(other)
            folded.setdefault(other, set())
    return cycles(folded)


def large_classes(modules: dict[str, ast.Module], limit: int) -> list[tuple[str, int]]:
    found = []
    for name, tree in modules.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > limit:
                    found.append((f"{name}.{node.name}", lines))
    return found


def private_access(modules: dict[str, ast.Module]) -> list[str]:
    found = []
    for name, tree in modules.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute):
                attr = node.attr
                if not attr.startswith("_") or attr.startswith("__"):
                    continue
                owner = node.value
                if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
                    continue
                if isinstance(owner, ast.Call) and getattr(owner.func, "id", None) == "super":
                    continue
                if attr in KNOWN:
                    continue
                text = ast.unparse(node)
                found.append(f"{name}:{node.lineno}: {text}")
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("nbtrain"):
                for alias in node.names:
                    if (alias.name.startswith("_") and not alias.name.startswith("__")
                            and alias.name not in KNOWN):
                        found.append(f"{name}:{node.lineno}: from {node.module} import "
                                     f"{alias.name}")
    return found


def shared_names(paths: list[Path]) -> list[str]:
    """File names (not `__init__.py`) of more than one module, other than `SHARED_NAMES`."""
    by_name: dict[str, list[str]] = {}
    for path in paths:
        if path.name != "__init__.py":
            by_name.setdefault(path.name, []).append(str(path.relative_to(PACKAGE)))
    return [f"{name}: {', '.join(where)}" for name, where in sorted(by_name.items())
            if len(where) > 1 and name not in SHARED_NAMES]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-class-lines", type=int, default=300)
    args = parser.parse_args()
    paths = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
    modules = {name: ast.parse(p.read_text(), str(p)) for name, p in paths.items()}
    graph = imports(modules, paths)
    status = 0
    for component in cycles(graph):
        print("import cycle:", " <-> ".join(component))
        status = 1
    for component in package_cycles(graph):
        print("package cycle:", " <-> ".join(component))
        status = 1
    for cls, lines in large_classes(modules, args.max_class_lines):
        print(f"class over {args.max_class_lines} lines: {cls} ({lines})")
        status = 1
    for where in private_access(modules):
        print("private access:", where)
        status = 1
    for where in shared_names(list(paths.values())):
        print("file name of more than one module:", where)
        status = 1
    if status == 0:
        print(f"{len(modules)} modules: no import cycle, no class over "
              f"{args.max_class_lines} lines, no private access across objects, "
              "no file name shared.")
    return status


if __name__ == "__main__":
    sys.exit(main())
