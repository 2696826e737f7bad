"""Fixtures that start a real Anvil (no mocked chain) and deploy the development consortium.

Each chain lives in its own temporary QEAIMS_HOME on a free loopback port. The session chain is
shared by tests that only add history; tests that kill or reset the chain get their own.

Parallel runs (`pytest -n 2`, pytest-xdist): session fixtures run once per worker, so every worker
has its own session Anvil; `free_port` hands each worker ports from its own range (below the
kernel's ephemeral range, so no outgoing connection and no other worker can take a port between
`free_port` and the server binding it), and every path is under the worker's own tmp dir. Sector
models that several tests train the same way are trained once per run (`model_cache`), shared
between workers through the run's tmp root under a file lock.

Markers, assigned here (`pytest_collection_modifyitems`) so that every test has exactly one of
`unit` / `chain` / `city`, plus `slow` where a test says so:

- `city`: starts services or processes: an MQTT broker, a Modbus device, a twin publisher, an
  oracle/controller/supervisor process (`qeaims up`, the heal bench), or runs the `qeaims` command
  as a subprocess without a chain;
- `chain`: needs an Anvil (the `chain`/`fresh_chain` fixtures, or a module that starts its own);
- `unit`: everything else: in-process, no chain, no server (`make check` runs these).

A module can say otherwise with `pytestmark = pytest.mark.city` (or `chain`/`unit`); an explicit
mark wins. `slow` tests (campaigns of minutes) are skipped unless QEAIMS_SLOW=1 (`make test-slow`).
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import inspect
import os
import random
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

# Tests never read or fill the user's machine-wide model cache (`oracles.model_cache`): each test
# process gets its own, so a model a test trains is one this checkout trained.
os.environ["QEAIMS_MODEL_CACHE"] = str(Path(os.environ.get("TMPDIR", "/tmp")) / f"qeaims-test-models-{os.getpid()}")
# ... and removes it when the process ends: one was left per test process, and a CI machine that ran
# the suite a few hundred times filled its disk with them and with pytest's own tmp trees.
atexit.register(shutil.rmtree, os.environ["QEAIMS_MODEL_CACHE"], True)

from chain.client import ChainClient
from chain.connect import connect
from chain.deploy import deploy_dev_consortium
from chain.manifest import Deployment
from chain.node import start_anvil, stop_anvil
from core.config import Settings, load_settings, project_root

if TYPE_CHECKING:
    from oracles.training import SectorModel

T = TypeVar("T")

FAST_SCRYPT_N = 1024  # keystores in tests: real scrypt, cheap parameters

# --- ports: one range per xdist worker ------------------------------------------------------------

_PORT_BASE, _PORT_SPAN = 10_000, 2_500  # gw0: 10000-12499, gw1: 12500-14999, ... (8 workers < 30000)
_next_port: int | None = None


def _worker_index() -> int | None:
    """0 for xdist's gw0, 1 for gw1, ...; None when pytest runs without workers."""
    name = os.environ.get("PYTEST_XDIST_WORKER", "")
    return int(name[2:]) if name.startswith("gw") and name[2:].isdigit() else None


def free_port() -> int:
    """A loopback port nobody listens on, from this worker's own range.

    Ports from `bind(0)` are ephemeral ports: between this call and the server binding it, another
    worker's `bind(0)` or any outgoing connection may take the same one (and `start_anvil` quietly
    reuses a chain that already answers on its port). Each worker therefore counts through its own
    range below the ephemeral one, starting at a random offset (two runs at once rarely meet),
    skipping ports that cannot be bound; without xdist the serial run takes the first range.
    """
    global _next_port
    index = _worker_index()
    base = _PORT_BASE + _PORT_SPAN * ((index or 0) % 8)
    if _next_port is None:
        _next_port = random.Random(os.getpid()).randrange(_PORT_SPAN)
    for _ in range(_PORT_SPAN):
        port = base + _next_port % _PORT_SPAN
        _next_port += 1
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    return _ephemeral_port()


def _ephemeral_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- shared files between workers -----------------------------------------------------------------

@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock between processes (xdist workers, concurrent runs) for the `with` block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _run_root(factory: pytest.TempPathFactory) -> Path:
    """This run's tmp root, the same for every xdist worker (their basetemps are its children)."""
    base = factory.getbasetemp()
    return base.parent if _worker_index() is not None else base


# --- chains --------------------------------------------------------------------------------------

@dataclass
class Chain:
    settings: Settings
    client: ChainClient
    deployment: Deployment

    @property
    def env(self) -> dict[str, str]:
        return cli_env(self.settings)

    def reconnect(self) -> None:
        self.client, self.deployment = connect(self.settings)


def cli_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "QEAIMS_HOME": str(settings.home),
        "QEAIMS_RPC_PORT": str(settings.rpc_port),
        "QEAIMS_SCRYPT_N": str(settings.scrypt_n),
        "COLUMNS": "200",
    })
    env.pop("QEAIMS_PASSPHRASE", None)
    return env


def run_cli(args: list[str], env: dict[str, str], *, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "qeaims", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def make_chain(home: Path, **overrides: object) -> Chain:
    settings = load_settings(home=home, rpc_port=free_port(), scrypt_n=FAST_SCRYPT_N, **overrides)
    _build_contracts_once()
    start_anvil(settings)
    try:
        client, deployment = deploy_dev_consortium(settings)
    except BaseException:  # a failed deploy must not leave its Anvil and keeper running after the test
        stop_anvil(settings)
        raise
    return Chain(settings, client, deployment)


_contracts_built = False


def _build_contracts_once() -> None:
    """`forge build` into build/out if stale, once a process and one process at a time (two workers
    must not both rewrite the artifacts the other is reading).

    forge leaves an artifact whose source changed only in ways that do not change the output (a
    comment, a checkout) untouched, so `chain.artifacts._stale` (artifact older than a source)
    stays true and every `deploy_dev_consortium` would run forge again (~0.6 s a chain, also in
    the `qeaims deploy` subprocesses). After a build that succeeded the artifacts are current:
    they get the build's time, as a build that rewrote them would have given them.
    """
    global _contracts_built
    if _contracts_built:
        return
    from chain import artifacts

    with file_lock(project_root() / "build" / ".pytest-forge.lock"):
        if artifacts._stale():
            artifacts.build_contracts(force=True)
            out = project_root() / "build" / "out"
            for name in artifacts.CONTRACTS:
                os.utime(out / f"{name}.sol" / f"{name}.json")
    _contracts_built = True


@pytest.fixture(scope="session")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    c = make_chain(tmp_path_factory.mktemp("qeaims-session"))
    yield c
    stop_anvil(c.settings)


@pytest.fixture
def fresh_chain(tmp_path: Path) -> Iterator[Chain]:
    c = make_chain(tmp_path / "home")
    yield c
    stop_anvil(c.settings)


# --- sector models, trained once per run -----------------------------------------------------------

class ModelCache:
    """Sector models trained once per run: `train(sector, **kw)` is `train_sector(sector, **kw)`.

    The first caller (any worker) trains and saves the model under the run's tmp root; every call
    then loads it from there (a fresh object each time, so no test sees another's changes).
    Training is deterministic for a sector, seed and plan, so a loaded model is the model the test
    would have trained; only `trained_at` is the first training's. Training with a `runner` (the
    twin goes on from where training left it) is not cached: call `train_sector` for that, and, if the
    twin was a fresh one, `offer` the model to the tests after it.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def train(self, sector: Any, **kw: Any) -> SectorModel:
        from oracles.training import load_model, save_model, train_sector

        assert "runner" not in kw and "progress" not in kw, "a model trained on a caller's twin is not cached"
        path = self._path(sector, **kw)
        with file_lock(path.with_suffix(".lock")):
            if not path.is_file():
                save_model(train_sector(sector, **kw), path)
        return load_model(path, sector=sector)

    def offer(self, sector: Any, model: SectorModel) -> None:
        """Keep `model`, trained by `train_sector(sector, runner=normal_twin(sector))`, as `train(sector)`.

        On a fresh twin of seed 0 (the default plan's first run) training with a runner is training
        without one: the same rows, the same fit. A test that trains so to watch the twin go on offers
        its model, and tests after it load it instead of training it again. Never waits: a model
        another worker is training, or has trained, is left to it."""
        from oracles.training import save_model

        path = self._path(sector)
        with open(path.with_suffix(".lock"), "a+b") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return
            try:
                if not path.is_file():
                    save_model(model, path)
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _path(self, sector: Any, **kw: Any) -> Path:
        from oracles.training import FORMAT_VERSION, train_sector

        name = str(getattr(sector, "value", sector))
        bound = inspect.signature(train_sector).bind(sector, **kw)
        bound.apply_defaults()  # train(s) and train(s, seed=0) are one model
        args = sorted((k, repr(v)) for k, v in bound.arguments.items() if k != "sector")
        key = hashlib.sha256(repr((FORMAT_VERSION, name, args)).encode()).hexdigest()
        self.root.mkdir(parents=True, exist_ok=True)
        return self.root / f"{name}-{key[:16]}.joblib"


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> ModelCache:
    return ModelCache(_run_root(tmp_path_factory) / "model-cache")


class RunCache:
    """Results that tests in several modules compute the same way, computed once per run.

    `get(name, compute)`: the first caller (any worker) runs `compute` and pickles its result under
    the run's tmp root; every call then unpickles it (a fresh object each time, so no test sees
    another's changes). `name` must say everything the result depends on (the code is this run's):
    one name, one computation. For computations whose every run proves the same (a twin stepped from
    its start, the same to rounding each time): what a test reads is one genuine run of it.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def get(self, name: str, compute: Callable[[], T]) -> T:
        import pickle

        path = self.root / f"{hashlib.sha256(name.encode()).hexdigest()[:16]}.pickle"
        with file_lock(path.with_suffix(".lock")):
            if not path.is_file():
                tmp = path.with_suffix(".partial")
                tmp.write_bytes(pickle.dumps(compute()))
                tmp.replace(path)
        result: T = pickle.loads(path.read_bytes())
        return result


@pytest.fixture(scope="session")
def run_cache(tmp_path_factory: pytest.TempPathFactory) -> RunCache:
    return RunCache(_run_root(tmp_path_factory) / "run-cache")


# --- markers ------------------------------------------------------------------------------------

KINDS = ("unit", "chain", "city")
CHAIN_FIXTURES = {"chain", "fresh_chain"}
# What in a test's own source starts a service or a long-lived process (city), or a chain of its own.
SERVICE_CALLS = ("EmbeddedBroker(", "MosquittoBroker(", "ModbusDeviceSimulator(", "TwinPublisher(", "running_twin(", "run_heal_bench(",
                 "start_oracle(", '["up"', "sync_playwright(")  # a browser is a process of its own
CHAIN_CALLS = ("make_chain(", "start_anvil(", '["deploy"', '["chain", "up"')
PROCESS_CALLS = ("run_cli(", "subprocess.")  # a process of its own: city unless it is a chain's


def _source(item: pytest.Item) -> str:
    """The test function's source and that of the fixtures it uses that live under tests/."""
    funcs = [getattr(item, "function", None)]
    info = getattr(item, "_fixtureinfo", None)
    for defs in (info.name2fixturedefs.values() if info is not None else ()):
        funcs.extend(d.func for d in defs if getattr(d.func, "__module__", "").startswith("tests."))
    out = []
    for fn in funcs:
        try:
            out.append(inspect.getsource(fn) if fn is not None else "")
        except (OSError, TypeError):
            pass
    return "\n".join(out)


def _kind(item: pytest.Item) -> str:
    explicit = [k for k in KINDS if item.get_closest_marker(k) is not None]
    if explicit:
        return explicit[0]
    source = _source(item)
    uses_chain = bool(CHAIN_FIXTURES & set(getattr(item, "fixturenames", ()))) or any(c in source for c in CHAIN_CALLS)
    if any(c in source for c in SERVICE_CALLS) or (not uses_chain and any(c in source for c in PROCESS_CALLS)):
        return "city"
    return "chain" if uses_chain else "unit"


# The modules of the suite's longest tests (a minute or more on 2 cores: `make test`'s --durations), run
# first, longest first. xdist's work stealing hands each worker a contiguous share of the collection
# and rebalances only tests not yet started: a worker that starts a 100-second test as the other runs
# out of work leaves that one idle for it. Run first, the long tests overlap the rest, and both workers
# end on short tests. Whole modules move, in their own order, so no module-scoped fixture is set up twice.
LONG_FIRST = (
    "tests/cli/test_up.py",
    "tests/api/test_dashboard_browser.py",
    "tests/oracles/test_training.py",  # before test_conditions: it offers the sewage model that one loads
    "tests/oracles/test_conditions.py",
    "tests/sectors/test_water_rules.py",
    "tests/oracles/test_water_detect.py",
    "tests/cli/test_cli.py",
    "tests/controller/test_bench_heal.py",
    "tests/cli/test_vault_cli.py",
    "tests/vaults/test_revoke.py",
)


def _long_first(item: pytest.Item) -> int:
    module = item.nodeid.split("::", 1)[0]
    return LONG_FIRST.index(module) if module in LONG_FIRST else len(LONG_FIRST)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=_long_first)  # stable: every other test keeps its place
    run_slow = os.environ.get("QEAIMS_SLOW") == "1"
    skip_slow = pytest.mark.skip(reason="slow: set QEAIMS_SLOW=1 (make test-slow) to run it")
    for item in items:
        kind = _kind(item)
        both = [other for other in KINDS if other != kind and item.get_closest_marker(other) is not None]
        if both:
            raise pytest.UsageError(f"{item.nodeid} is marked {kind} and {both[0]}: a test is one of {', '.join(KINDS)}")
        item.add_marker(getattr(pytest.mark, kind))
        if item.get_closest_marker("slow") is not None and not run_slow:
            item.add_marker(skip_slow)
