"""Running the real ``msearch`` command in a subprocess."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx


def cli_env(data_dir: Path, model_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MSEARCH_")}
    env.update(
        {
            "MSEARCH_DATA_DIR": str(data_dir),
            "MSEARCH_EMBEDDING__MODEL": str(model_dir),
            "MSEARCH_EMBEDDING__DEVICE": "cpu",
            "PYTHONUNBUFFERED": "1",
            **extra,
        }
    )
    return env


def run_cli(
    env: dict[str, str], *args: str, timeout: float = 180, stdin: int | None = subprocess.DEVNULL
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "msearch", *args],
        env=env,
        text=True,
        capture_output=True,
        timeout=timeout,
        stdin=stdin,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(env: dict[str, str], *, limit_s: float = 90) -> tuple[subprocess.Popen[str], str]:
    """``msearch serve`` on a free loopback port, once /health answers. Its output goes
    to a file: a pipe nobody reads would stall a talkative server."""
    port = free_port()
    log = tempfile.TemporaryFile("w+")  # noqa: SIM115 (lives as long as the server)
    proc = subprocess.Popen(
        [sys.executable, "-m", "msearch", "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    proc.log = log  # type: ignore[attr-defined]
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + limit_s
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
        if proc.poll() is not None:
            raise AssertionError(
                f"msearch serve exited with {proc.returncode}:\n" + server_output(proc)
            )
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(
                "msearch serve did not answer /health in time:\n" + server_output(proc)
            )


def server_output(proc: subprocess.Popen[str]) -> str:
    log = proc.log  # type: ignore[attr-defined]
    log.seek(0)
    return str(log.read())


def stop_server(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.terminate()
        proc.wait(timeout=30)
    proc.log.close()  # type: ignore[attr-defined]
