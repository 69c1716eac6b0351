"""Schemathesis against the served OpenAPI schema: generated and mutated requests to every
operation, with the key, get no server error and answers that the schema describes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support.cli_helpers import cli_env, run_cli, start_server, stop_server
from support.media_factory import noise

pytestmark = pytest.mark.slow
KEY = "fuzz-key"


def test_the_api_holds_against_schemathesis(tmp_path: Path, tiny_clip_dir: Path) -> None:
    st = shutil.which("st") or str(Path(sys.executable).with_name("st"))
    media = tmp_path / "media"
    media.mkdir()
    for i in range(6):
        noise(40, 40, seed=i).save(media / f"{i}.png")
    # schemathesis also sends wrong keys: the back-off would answer 429 to all that follows
    env = cli_env(
        tmp_path / "data",
        tiny_clip_dir,
        MSEARCH_API__API_KEY=KEY,
        MSEARCH_API__FAILED_KEY_BACKOFF="false",
        MSEARCH_API__ALLOWED_ROOTS=json.dumps([str(media)]),
    )
    assert run_cli(env, "index", str(media), "--no-progress").returncode == 0
    proc, url = start_server(env)
    try:
        result = subprocess.run(
            [
                st,
                "run",
                f"{url}/openapi.json",
                "--header",
                f"Authorization: Bearer {KEY}",
                "--checks",
                "not_a_server_error,status_code_conformance,"
                "content_type_conformance,response_schema_conformance",
                "--max-examples",
                "15",
                "--seed",
                "1",
                "--no-color",
                "--request-timeout",
                "30",
            ],
            capture_output=True,
            text=True,
            timeout=900,
            env={**env, "NO_COLOR": "1"},
        )
    finally:
        stop_server(proc)
    report = result.stdout + result.stderr
    assert result.returncode == 0, report[-6000:]
    assert "Rate limited" not in report and " passed" in report, report[-3000:]
