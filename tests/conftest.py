import os
from pathlib import Path

# One OpenMP thread per process: the suite runs in two workers on two cores, and the notebook
# kernels they start inherit this; two-thread OpenMP regions stall when the cores are shared.
os.environ["OMP_NUM_THREADS"] = "1"
# Where a test gives jobs more than one thread (the threads parameter), both suite workers may run
# such jobs at once: OpenMP threads that wait by spinning then hold the cores the other's threads
# need (with two threads per job, the suite's two pipelines took 16 and 12 minutes side by side,
# against 4 alone). Waiting threads that sleep leave them free; the thread count, hence every
# bit, is unchanged.
os.environ["OMP_WAIT_POLICY"] = "PASSIVE"

import pytest  # noqa: E402
import torch  # noqa: E402

from helpers.data import Split, load_dataset
from helpers.model import MLP
from helpers.sources import DataUnavailableError, load_raw
from helpers.training import train

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("DATA_DIR", ROOT / "data")).resolve()  # the README test runs in other folders


def pytest_configure(config):
    """Make MNIST present before any worker starts, or stop the run with the one message that
    says how to provide it: without it most of the suite would fail, each test with that message."""
    if hasattr(config, "workerinput"):  # an xdist worker: the controller has done it
        return
    try:
        load_raw("mnist", DATA_DIR)
    except DataUnavailableError as err:
        pytest.exit(f"the test suite needs MNIST: {err}", returncode=4)


LONGEST_FIRST = ("test_readme.py", "test_jobs.py")
"""The two longest modules: the README's commands and the small run they start (about two
minutes), and the workers' (about one); each worker starts one of them, and the rest of the
suite fills in around them."""

LAST = ("test_small_run_again.py",)
"""The module that runs make small's run again: it waits for that run (made once per test run,
by the README's module), so the worker that takes it has run every other module first."""


def pytest_collection_modifyitems(items):
    # xdist hands whole modules to the workers in collection order (--no-loadscope-reorder), so
    # the two long modules go first: started last, either one alone would outlast the suite
    def place(name: str) -> int:
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST) + (name in LAST)
    items.sort(key=lambda item: place(item.path.name))


def shared_folder(tmp_path_factory) -> Path:
    """A folder every worker of this test run sees: under xdist, the parent of the workers' own
    base folders; else the base folder."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def mnist():
    """The real MNIST, both splits (from DATA_DIR, $MNIST_ARCHIVE or a download)."""
    return load_dataset("mnist", DATA_DIR)


TRAIN = {"batch_size": 64, "lr": 3e-3}
"""How the small synthetic models of the recovery and sparse tests train."""


def synthetic(n: int, seed: int) -> Split:
    """Gaussian 'images' labelled by a fixed random linear teacher: learnable in a few epochs."""
    g = torch.Generator().manual_seed(seed)
    teacher = torch.randn(10, 784, generator=torch.Generator().manual_seed(123))
    x = torch.randn(n, 784, generator=g)
    return Split(x, (x @ teacher.T).argmax(dim=1))


@pytest.fixture(scope="module")
def data():
    """A synthetic training split of 512 examples and a validation split of 256."""
    return {"train": synthetic(512, 0), "val": synthetic(256, 1)}


@pytest.fixture(scope="module")
def dense(data):
    """A small MLP (784-32-32-10) trained three epochs on :func:`data`'s training split."""
    torch.manual_seed(0)
    model = MLP(hidden=(32, 32))
    train(model, data["train"], {}, epochs=3, seed=0, progress=False, **TRAIN)
    return model


@pytest.fixture
def small_model():
    torch.manual_seed(0)
    return MLP(hidden=(40, 30, 20), in_features=50, n_classes=10)


@pytest.fixture(scope="session")
def study_model():
    """The study's network, freshly initialised: built once, never modified (pruning returns copies)."""
    torch.manual_seed(0)
    return MLP()
