"""A real federation for the tests: `fsc federation init`, a real nats-server, `fsc federation
provision`, API clients added with `fsc client add`, and one real `fsc node` process per party.

No fixed ports: nats-server picks its own (`-p -1`, reported in its ports file), and every
node's API socket is bound here on port 0 and inherited by the node (`FSC_LISTEN_FD`). Readiness
is polled (`/readyz`), never slept for. `stop()` ends every process it started.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

import httpx

REPO = Path(__file__).resolve().parents[3]
START_TIMEOUT = 30.0


def fsc_bin() -> str:
    """`$FSC_BIN`, else the workspace's debug build (`cargo build -p fsc`)."""
    explicit = os.environ.get("FSC_BIN")
    if explicit:
        return explicit
    for profile in ("debug", "release"):
        candidate = REPO / "target" / profile / "fsc"
        if candidate.is_file():
            return str(candidate)
    raise RuntimeError("no fsc binary: run `cargo build -p fsc` (or set FSC_BIN)")


def nats_server_bin() -> str:
    """`$NATS_SERVER_BIN`, `.tools/bin/nats-server` (scripts/setup), or the PATH's."""
    for candidate in (os.environ.get("NATS_SERVER_BIN"), str(REPO / ".tools/bin/nats-server")):
        if candidate and os.path.isfile(candidate):
            return candidate
    found = shutil.which("nats-server")
    if found:
        return found
    raise RuntimeError("no nats-server: run scripts/setup (or set NATS_SERVER_BIN)")


def until(what: str, condition, timeout: float = START_TIMEOUT):
    """Polls `condition` every 20 ms until it returns something true; raises after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"not within {timeout} s: {what}")
        time.sleep(0.02)


class LocalFederation:
    """A broker and one node per party, on loopback, in a temporary directory.

    Args:
        parties: the party ids.
        tls: serve the APIs over https with a private CA (`federation init --tls`).
        tokens: give each node an API client (`fsc client add`) and keep its token.
        env: extra environment of every node (e.g. `FSC_MAX_ACTIVE_COMPUTATIONS`).
    """

    def __init__(
        self,
        parties: List[str],
        tls: bool = False,
        tokens: bool = False,
        env: Optional[Dict[str, str]] = None,
    ) -> None:
        self.parties = parties
        self.dir = Path(tempfile.mkdtemp(prefix="fsc-pytest-"))
        self.ca_file: Optional[str] = str(self.dir / "ca.crt") if tls else None
        self.tokens: Dict[str, Optional[str]] = {p: None for p in parties}
        self._procs: List[subprocess.Popen] = []
        self._sockets: List[socket.socket] = []
        self.urls: Dict[str, str] = {}
        try:
            self._start(tls, tokens, env or {})
        except BaseException:
            self.stop()
            raise

    def _fsc(self, *args: str) -> str:
        done = subprocess.run([fsc_bin(), *args], capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"fsc {' '.join(args)} failed: {done.stdout}{done.stderr}")
        return done.stdout

    def _start(self, tls: bool, tokens: bool, env: Dict[str, str]) -> None:
        scheme = "https" if tls else "http"
        for party in self.parties:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sock.listen(128)
            self._sockets.append(sock)
            self.urls[party] = f"{scheme}://127.0.0.1:{sock.getsockname()[1]}"
        init = ["federation", "init", "--out", str(self.dir), "--parties", ",".join(self.parties)]
        init += ["--api-urls", ",".join(self.urls.values())] + (["--tls"] if tls else [])
        self._fsc(*init)
        # A declared store: by default nats-server caps it at 75 % of the disk's free space and
        # refuses the streams' reservation (3 GiB) when the shared machine's disk runs low.
        conf = self.dir / "nats-server.conf"
        conf.write_text(conf.read_text().replace("jetstream {\n", "jetstream {\n    max_file_store: 1TB\n", 1))

        ports = self.dir / "ports"
        ports.mkdir()
        broker = subprocess.Popen(
            [nats_server_bin(), "-c", str(self.dir / "nats-server.conf"), "-p", "-1"]
            + ["--ports_file_dir", str(ports)],
            cwd=self.dir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=open(self.dir / "nats-server.log", "ab"),
        )
        self._procs.append(broker)
        ports_file = ports / f"nats-server_{broker.pid}.ports"

        def broker_port() -> Optional[int]:
            if broker.poll() is not None:
                raise RuntimeError(f"nats-server exited; see {self.dir}/nats-server.log")
            try:
                url = json.loads(ports_file.read_text())["nats"][0]
            except (OSError, ValueError, KeyError, IndexError):
                return None
            return int(url.rsplit(":", 1)[1])

        self.nats_url = f"nats://127.0.0.1:{until('nats-server reports its port', broker_port)}"
        self._fsc("federation", "provision", str(self.dir), "--nats-url", self.nats_url)

        for party in self.parties:
            if tokens:
                config = str(self.dir / party / "node.toml")
                self.tokens[party] = self._fsc("client", "add", "--config", config, "--name", "notebook").strip()
        for party, sock in zip(self.parties, self._sockets):
            node_env = dict(os.environ, FSC_LISTEN_FD=str(sock.fileno()), FSC_NATS_URL=self.nats_url)
            node_env.update(FSC_LOG="info", **env)
            self._procs.append(
                subprocess.Popen(
                    [fsc_bin(), "node", "--config", str(self.dir / party / "node.toml")],
                    env=node_env,
                    pass_fds=(sock.fileno(),),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=open(self.dir / f"{party}.log", "ab"),
                )
            )
        verify = ssl.create_default_context(cafile=self.ca_file) if self.ca_file else True
        for party, url in self.urls.items():

            def ready() -> bool:
                for proc in self._procs:
                    if proc.poll() is not None:
                        raise RuntimeError(f"a process exited at start: {self.logs()}")
                try:
                    return httpx.get(f"{url}/readyz", verify=verify, timeout=5).is_success
                except httpx.HTTPError:
                    return False

            until(f"{party} ready", ready)

    def logs(self) -> str:
        return "".join(
            f"--- {p} ---\n{(self.dir / f'{p}.log').read_text(errors='replace')}" for p in self.parties
        )

    def stop(self) -> None:
        """SIGTERM every node (SIGKILL after 15 s), kill the broker, remove the directory."""
        for proc in reversed(self._procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in reversed(self._procs):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for sock in self._sockets:
            sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)
