"""Redis on 127.0.0.1 for the worker tests: one private `redis-server` per session (random free
port, a password, its own folder, no persistence), and `deployer worker` processes started
by the tests, each in its own process session and stopped by PID.

A missing redis-server fails the tests, in CI and everywhere else: never a skip.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pytest

import leakcheck

from .samba import free_port

READY_WITHIN = 15.0


@dataclass
class RedisServer:
    dir: Path
    port: int
    password: str
    proc: subprocess.Popen | None = None
    log: Path | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def env(self) -> dict[str, str]:
        return {"DEPLOYER_BROKER": self.url, "DEPLOYER_BROKER_PASSWORD": self.password}

    def start(self) -> None:
        # the configuration goes in on stdin (`redis-server -`): the password is never on disk or in `ps`
        conf = "\n".join([
            "bind 127.0.0.1", f"port {self.port}", f"dir {self.dir}", 'save ""',
            # the queue survives a restart of Redis (tasks acknowledged late live in it)
            "appendonly yes", "appendfsync always",
            f"requirepass {self.password}", "protected-mode yes", "daemonize no", f"logfile {self.log}",
        ]) + "\n"
        exe = shutil.which("redis-server") or "/usr/bin/redis-server"
        if not Path(exe).exists():
            pytest.fail("redis-server is not installed (scripts/test.sh installs Debian's redis-server)")
        self.proc = subprocess.Popen([exe, "-"], start_new_session=True, stdin=subprocess.PIPE,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.proc.stdin.write(conf.encode())
        self.proc.stdin.close()
        deadline = time.monotonic() + READY_WITHIN
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"redis-server exited at start: {self.log.read_text()[-2000:] if self.log else ''}")
            if self.ping():
                return
            time.sleep(0.05)
        pytest.fail(f"redis-server did not answer on 127.0.0.1:{self.port} within {READY_WITHIN} s")

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(f"AUTH {self.password}\r\nPING\r\n".encode())
                got = b""
                while b"PONG" not in got:
                    block = s.recv(100)
                    if not block:
                        return False
                    got += block
                return True
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


@dataclass
class Worker:
    region: str
    proc: subprocess.Popen
    log: Path

    def kill(self) -> None:
        """SIGKILL to the worker and every process it forked (its session): a jump host that died."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
            except ProcessLookupError:
                pass


@dataclass
class Workers:
    redis: RedisServer
    dir: Path
    started: list[Worker] = field(default_factory=list)

    def start(self, region: str, *, concurrency: int = 2, env: dict[str, str] | None = None) -> Worker:
        n = len(self.started)
        log = self.dir / f"worker-{region}-{n}.log"
        cache = self.dir / f"cache-{n}"
        full_env = {**os.environ, **self.redis.env(), "XDG_CACHE_HOME": str(cache),
                    "DEPLOYER_BROKER_VISIBILITY_TIMEOUT": "6", **(env or {})}
        fh = open(log, "w")
        proc = subprocess.Popen([sys.executable, "-m", "deployer", "--no-log", "worker", "--region", region,
                                 "--concurrency", str(concurrency)], env=full_env, stdout=fh,
                                stderr=subprocess.STDOUT, start_new_session=True, cwd=self.dir)
        fh.close()
        w = Worker(region, proc, log)
        self.started.append(w)
        deadline = time.monotonic() + 60
        while "ready." not in log.read_text(errors="replace"):
            if proc.poll() is not None:
                pytest.fail(f"deployer worker exited at start:\n{log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"deployer worker not ready within 60 s:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)
        return w

    def stop_all(self) -> None:
        for w in self.started:
            w.stop()
        for w in self.started:
            leakcheck.record(f"worker {w.region} log", w.log.read_text(errors="replace"))
        self.started.clear()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    d = tmp_path_factory.mktemp("redis")
    server = RedisServer(d, free_port(), leakcheck.register("Redis-" + uuid.uuid4().hex), log=d / "redis.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def workers(redis_server: RedisServer, tmp_path: Path) -> Iterator[Workers]:
    ws = Workers(redis_server, tmp_path)
    yield ws
    ws.stop_all()
