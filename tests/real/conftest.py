# The real model file for the `real` suite: $R1SERVE_REAL_MODEL, else the
# file scripts/fetch-model.sh leaves in the cache. Missing: the suite skips
# with the command that fetches it.
import os
import shutil
import sys
import tempfile

import pytest

SOURCE_DIR = os.environ.get("R1SERVE_SOURCE_DIR") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..")
sys.path.insert(0, os.path.join(SOURCE_DIR, "tools", "python"))

NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def real_model_path():
    if os.environ.get("R1SERVE_REAL_MODEL"):
        return os.environ["R1SERVE_REAL_MODEL"]
    cache = os.environ.get("R1SERVE_MODEL_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "r1serve", "models")
    return os.path.join(cache, NAME)


@pytest.fixture(scope="session")
def real_model():
    path = real_model_path()
    if not os.path.exists(path + ".sha256-ok") and not os.environ.get("R1SERVE_REAL_MODEL"):
        print(f"\nREAL MODEL MISSING: {path} is not there; run `make fetch-model` "
              "(scripts/fetch-model.sh) once, then rerun the real tests")
        pytest.skip("REAL MODEL MISSING: run `make fetch-model` first")
    return path


@pytest.fixture(scope="session")
def work():
    d = tempfile.mkdtemp(prefix="r1serve-real-")
    yield d
    shutil.rmtree(d, ignore_errors=True)
