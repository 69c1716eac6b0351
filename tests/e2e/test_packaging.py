from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_importing_the_api_stays_light() -> None:
    code = (
        "import sys, msearch.api, msearch.cli, msearch.services; "
        "heavy = [m for m in ('infinity_emb', 'torch', 'transformers') if m in sys.modules];"
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_core_installs_and_imports_without_extras(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    env = {**os.environ, "PIP_CONSTRAINT": str(ROOT / "constraints.txt")}
    env.pop("PYTHONPATH", None)
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", str(ROOT)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    check = (
        "import importlib.util as u, msearch.api, msearch.cli, msearch.store.qdrant_edge,"
        " msearch.store.qdrant_remote;"
        "missing = [m for m in ('infinity_emb', 'torch') if u.find_spec(m) is None];"
        "assert missing == ['infinity_emb', 'torch'], missing"
    )
    result = subprocess.run(
        [str(python), "-c", check], capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    help_text = subprocess.run(
        [str(venv / "bin" / "msearch"), "--help"], capture_output=True, text=True
    )
    assert help_text.returncode == 0 and "index" in help_text.stdout
