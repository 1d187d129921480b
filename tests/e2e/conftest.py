# Fixtures every end-to-end suite here shares: a scratch folder per test
# file and the tiny model made in it by the real binary.
import os
import shutil
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.join(
    os.environ.get("R1SERVE_SOURCE_DIR")
    or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."), "tools", "python"))
from r1serve_harness import make_test_model  # noqa: E402


@pytest.fixture(scope="module")
def work(request):
    """A scratch folder for the test file, removed after it."""
    assert os.environ.get("R1SERVE_BINARY"), "R1SERVE_BINARY must name the r1serve binary"
    d = tempfile.mkdtemp(prefix=f"r1serve-{request.module.__name__}-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def model_dir(work):
    """The tiny qwen2 model (bf16, seed 5), made by `r1serve make-test-model`."""
    out = os.path.join(work, "tiny")
    made = make_test_model(os.environ["R1SERVE_BINARY"], out)
    assert made.returncode == 0, made.stderr
    return out
