"""TensorFlow's native start-up lines held to TF_CPP_MIN_LOG_LEVEL (nbtrain.tf_startup):
the filter itself, the import hook on a stand-in `tensorflow` package, and the real
TensorFlow imported after nbtrain, as a notebook's import cell and `nbtrain demo` do."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from nbtrain.tf_startup import filter_startup, min_log_level

PREFACE = b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
INFO = b"I0000 00:00:1796631399.715806    7678 port.cc:153] oneDNN custom operations are on.\n"
CUDA = (b"I0000 00:00:1796631399.716220    7678 cudart_stub.cc:31] Could not find cuda drivers "
        b"on your machine, GPU will not be used.\n")
GUARD = (b"I0000 00:00:1796631399.81   7678 cpu_feature_guard.cc:227] This TensorFlow binary is "
         b"optimized to use available CPU instructions in performance-critical operations.\n"
         b"To enable the following instructions: AVX2 FMA, in other operations, rebuild "
         b"TensorFlow with the appropriate compiler flags.\n")
WARNING = b"W0000 00:00:1796631400.1   7678 gpu_device.cc:2] Cannot dlopen some GPU libraries.\n"
ERROR = b"E0000 00:00:1796631400.2   7678 cuda_dnn.cc:8] Unable to register cuDNN factory\n"
BANNER = PREFACE + INFO + CUDA


def test_informational_start_up_lines_go_at_level_1():
    assert filter_startup(BANNER + BANNER + GUARD, 1) == b""


def test_level_0_keeps_everything():
    assert filter_startup(BANNER + GUARD + WARNING, 0) == BANNER + GUARD + WARNING


def test_warnings_errors_and_other_text_stay_in_order():
    text = BANNER + b"a print\n" + WARNING + b"Traceback (most recent call last):\n" + ERROR
    assert filter_startup(text, 1) == (PREFACE + b"a print\n" + WARNING
                                       + b"Traceback (most recent call last):\n" + ERROR)
    assert filter_startup(text, 2) == (PREFACE + b"a print\nTraceback (most recent call last):\n"
                                       + ERROR)
    assert filter_startup(text, 3) == b"a print\nTraceback (most recent call last):\n"


def test_only_the_known_continuation_of_a_dropped_line_goes():
    text = GUARD + b"To enable something else\n"
    assert filter_startup(text, 1) == b"To enable something else\n"


def test_level_from_the_environment():
    assert min_log_level({}) == 1
    assert min_log_level({"TF_CPP_MIN_LOG_LEVEL": "3"}) == 3
    assert min_log_level({"TF_CPP_MIN_LOG_LEVEL": " 0 "}) == 0
    assert min_log_level({"TF_CPP_MIN_LOG_LEVEL": "quiet"}) == 1


def run_python(code: str, env_updates: dict[str, str | None], path: str | None = None
               ) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    for key, value in env_updates.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    if path:
        env["PYTHONPATH"] = os.pathsep.join([path, env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          timeout=240, env=env)


@pytest.fixture
def fake_tensorflow(tmp_path):
    """A stand-in `tensorflow` package whose import writes, as the real one's native
    libraries do, to file descriptor 2: the banner twice, a warning, and a print."""
    package = tmp_path / "tensorflow"
    package.mkdir()
    (package / "__init__.py").write_text(textwrap.dedent(f"""
        import os, sys
        os.write(2, {BANNER!r})
        print("python's stderr during the import", file=sys.stderr, flush=True)
        os.write(2, {BANNER + WARNING!r})
        LOADED = True
    """))
    return str(tmp_path)


@pytest.mark.parametrize("level, expected", [
    (None, b"python's stderr during the import\n" + PREFACE + WARNING),
    ("2", b"python's stderr during the import\n"),
    ("0", BANNER + b"python's stderr during the import\n" + BANNER + WARNING),
])
def test_the_first_import_of_tensorflow_after_nbtrain_is_held(fake_tensorflow, level, expected):
    result = run_python("""
        import sys
        import nbtrain
        import tensorflow
        assert tensorflow.LOADED
        assert type(tensorflow.__loader__).__name__ == "SourceFileLoader"
        assert tensorflow.__spec__.loader is tensorflow.__loader__
        assert not any(type(f).__name__ == "TensorFlowImportHook" for f in sys.meta_path)
        print("imported")
    """, {"TF_CPP_MIN_LOG_LEVEL": level}, fake_tensorflow)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == b"imported\n"
    assert result.stderr == expected


def test_tensorflow_imported_before_nbtrain_is_left_alone(fake_tensorflow):
    result = run_python("import tensorflow, nbtrain", {"TF_CPP_MIN_LOG_LEVEL": "3"},
                        fake_tensorflow)
    assert result.returncode == 0
    assert result.stderr.count(INFO) == 2


def test_real_tensorflow_and_keras_import_quietly_after_nbtrain():
    """What a notebook's import cell does (`import nbtrain`, then Keras): with
    TF_CPP_MIN_LOG_LEVEL=3 nothing on stderr; unset, none of the start-up lines
    (TensorFlow's own logging, which reads the variable, may still report at level E,
    e.g. 'failed call to cuInit' on a machine without a GPU)."""
    for level in ("3", None):
        result = run_python("""
            import nbtrain
            import keras
            keras.layers.Dense(1)(keras.ops.ones((1, 1)))
            print("ok")
        """, {"TF_CPP_MIN_LOG_LEVEL": level, "KERAS_BACKEND": "tensorflow"})
        stderr = result.stderr.decode()
        assert result.returncode == 0, stderr[-2000:]
        assert result.stdout == b"ok\n"
        if level == "3":
            assert stderr == "", stderr[-2000:]
        for line in stderr.splitlines():
            assert not line.startswith(("I0", "W0", "WARNING: All log messages", "To enable")), stderr
