"""Fixtures: start the real `shoal` binary on free loopback ports.

`ShoalNode` runs one node (controller+broker) in its own data dir with its
stderr in a log file. The `shoal` fixture is module-scoped; a test module can
set `SHOAL_OVERRIDES = {"name": "value"}` to pass `--override` flags. The
`shoal_factory` fixture makes extra (function-scoped) nodes. When a test
fails, the tail of each node's log is attached to the report.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

REPO = Path(__file__).resolve().parents[2]
READY_TIMEOUT = float(os.environ.get("SHOAL_READY_TIMEOUT", "20"))
STOP_TIMEOUT = float(os.environ.get("SHOAL_STOP_TIMEOUT", "20"))
LOG_TAIL_LINES = 80

_used_ports: set[int] = set()


def _die_with_parent() -> None:  # runs in the child before exec (Linux only)
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - best effort: never block the start
        pass


def shoal_bin() -> Path:
    path = Path(os.environ.get("SHOAL_BIN") or REPO / "target" / "release" / "shoal")
    if not path.is_file() or not os.access(path, os.X_OK):
        raise RuntimeError(
            f"shoal binary not found at {path}: run `cargo build --release --bin shoal` "
            "(or `make test-python`) or set SHOAL_BIN"
        )
    return path


def free_port() -> int:
    """A free 127.0.0.1 TCP port not handed out before in this run."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _used_ports:
            _used_ports.add(port)
            return port
    raise RuntimeError("could not find a free port")


def port_in_use(port: int) -> bool:
    """Whether 127.0.0.1:`port` is taken (tests that need fixed ports check first)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


class ShoalNode:
    def __init__(self, workdir: Path, overrides: dict[str, object] | None = None, node_id: int = 1,
                 name: str = "shoal"):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.node_id = node_id
        self.data_dir = self.workdir / "data"
        self.log_path = self.workdir / f"{name}.log"
        self.kafka_port = free_port()
        self.admin_port = free_port()
        self.controller_port = free_port()
        self.replication_port = free_port()
        self.overrides = {str(k): str(v) for k, v in (overrides or {}).items()}
        self.proc: subprocess.Popen | None = None
        self.exit_codes: list[int] = []
        self._log_file = None

    # ------------------------------------------------------------ addresses
    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def args(self) -> list[str]:
        settings = {
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.kafka_port}",
            "admin.listener": f"127.0.0.1:{self.admin_port}",
            "replication.listener": f"127.0.0.1:{self.replication_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.kafka_port},CONTROLLER://127.0.0.1:{self.controller_port}",
            # No offsets.topic.replication.factor: a single node serves groups with the defaults.
        }
        settings.update(self.overrides)
        argv = [str(shoal_bin()), "--data-dir", str(self.data_dir), "--node-id", str(self.node_id)]
        for k, v in settings.items():
            argv += ["--override", f"{k}={v}"]
        return argv + list(getattr(self, "extra_args", []))

    # ------------------------------------------------------------ lifecycle
    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, wait: bool = True) -> "ShoalNode":
        assert not self.running, "already running"
        env = {k: v for k, v in os.environ.items() if not k.startswith("SHOAL_")}
        env.setdefault("RUST_LOG", "info")
        env.setdefault("RUST_BACKTRACE", "1")
        env.setdefault("NO_COLOR", "1")  # plain log files
        self._log_file = open(self.log_path, "ab")
        self._log_file.write(f"\n==== start {' '.join(self.args())}\n".encode())
        self._log_file.flush()
        self.proc = subprocess.Popen(
            self.args(), cwd=self.workdir, stdin=subprocess.DEVNULL,
            stdout=self._log_file, stderr=self._log_file, env=env,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
        if wait:
            self.wait_ready()
        return self

    def _http_status(self, path: str) -> int | None:
        try:
            with urllib.request.urlopen(self.admin_url + path, timeout=1) as resp:
                return resp.status
        except urllib.error.HTTPError as e:
            return e.code
        except (urllib.error.URLError, OSError):
            return None

    def healthz(self) -> int | None:
        return self._http_status("/healthz")

    def readyz(self) -> int | None:
        return self._http_status("/readyz")

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode} before ready\n{self.tail()}")
            if self.readyz() == 200:
                return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready within {timeout}s ({self.admin_url}/readyz)\n{self.tail()}")

    def _reap(self, timeout: float) -> int:
        code = self.proc.wait(timeout=timeout)
        self.exit_codes.append(code)
        if self._log_file:
            self._log_file.close()
            self._log_file = None
        return code

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM and wait. Returns the exit code; SIGKILLs and raises if it hangs."""
        if self.proc is None:
            return 0
        if self.proc.poll() is not None:
            return self._reap(1) if self._log_file else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self._reap(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self._reap(10)
            raise RuntimeError(f"{self.name} did not exit within {timeout}s of SIGTERM\n{self.tail()}")

    def kill(self) -> int:
        """SIGKILL and wait."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGKILL)
        return self._reap(10)

    def restart(self, wait: bool = True) -> "ShoalNode":
        """Stop (SIGTERM) if running, then start again on the same data dir and ports."""
        if self.running:
            self.stop()
        return self.start(wait=wait)

    def tail(self, lines: int = LOG_TAIL_LINES) -> str:
        try:
            text = self.log_path.read_bytes().decode(errors="replace")
        except OSError:
            return f"(no log at {self.log_path})"
        return f"---- last {lines} lines of {self.log_path} ----\n" + "\n".join(text.splitlines()[-lines:])

    def close(self) -> None:
        """Teardown: stop, and SIGKILL if it will not stop."""
        try:
            self.stop()
        except Exception:
            self.kill()


class NodeFactory:
    def __init__(self, base: Path):
        self.base = base
        self.nodes: list[ShoalNode] = []

    def __call__(self, overrides: dict | None = None, start: bool = True, **kw) -> ShoalNode:
        node = ShoalNode(self.base / f"node{len(self.nodes)}", overrides, **kw)
        self.nodes.append(node)
        if start:
            node.start()
        return node

    def close(self) -> None:
        for n in self.nodes:
            n.close()


@pytest.fixture(scope="module")
def shoal(request, tmp_path_factory):
    """One node for the whole module; overrides from the module's SHOAL_OVERRIDES."""
    overrides = getattr(request.module, "SHOAL_OVERRIDES", {})
    name = request.module.__name__.rsplit(".", 1)[-1]
    node = ShoalNode(tmp_path_factory.mktemp(name), overrides)
    node.start()
    yield node
    node.close()


@pytest.fixture
def shoal_factory(tmp_path):
    factory = NodeFactory(tmp_path)
    yield factory
    factory.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if not rep.failed:
        return
    nodes = []
    for value in getattr(item, "funcargs", {}).values():
        if isinstance(value, ShoalNode):
            nodes.append(value)
        elif isinstance(value, NodeFactory) or isinstance(getattr(value, "nodes", None), list):
            nodes.extend(n for n in value.nodes if isinstance(n, ShoalNode))
    for n in nodes:
        rep.sections.append((f"shoal log: {n.log_path}", n.tail()))
