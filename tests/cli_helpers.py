"""Running the real ``msearch`` command in a subprocess."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path


def cli_env(data_dir: Path, model_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MSEARCH_")}
    env.update({"MSEARCH_DATA_DIR": str(data_dir), "MSEARCH_EMBEDDING__MODEL": str(model_dir),
                "MSEARCH_EMBEDDING__DEVICE": "cpu", "PYTHONUNBUFFERED": "1", **extra})
    return env


def run_cli(env: dict[str, str], *args: str, timeout: float = 180,
            stdin: int | None = subprocess.DEVNULL) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "msearch", *args], env=env, text=True,
                          capture_output=True, timeout=timeout, stdin=stdin)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
