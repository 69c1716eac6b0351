"""Embedding on a real Infinity server (``infinity_emb v2``, from the virtualenv
``make test`` builds): the same vectors as in-process, the same product on top, and clear
errors with a recovery, never a hang, when the server is away, dies or stalls."""

from __future__ import annotations

import math
import os
import signal
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from support.app import api_client, wait_for
from support.cli_helpers import free_port
from support.media_factory import noise
from support.paths import ROOT

from msearch.config import EmbeddingSettings, Settings
from msearch.embedding.infinity import InfinityEngine
from msearch.embedding.remote import RemoteInfinityEngine
from msearch.errors import EmbeddingError, EmbeddingTimeout, ModelUnavailable

SERVER = ROOT / "build" / "infinity-server" / "bin" / "infinity_emb"


def _start_server(model_dir: Path, port: int) -> subprocess.Popen[bytes]:
    if not SERVER.is_file():
        pytest.fail(f"no Infinity server at {SERVER}: 'make test' builds it")
    env = {**os.environ, "INFINITY_HOME": str(ROOT / "build" / "infinity")}
    proc = subprocess.Popen(
        [
            str(SERVER),
            "v2",
            *("--model-id", str(model_dir), "--served-model-name", "tiny"),
            *("--port", str(port), "--host", "127.0.0.1"),
            *("--engine", "torch", "--device", "cpu", "--no-bettertransformer"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    for _ in range(600):
        if proc.poll() is not None:
            raise AssertionError(f"the Infinity server exited ({proc.returncode})")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/models", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        threading.Event().wait(0.2)
    _kill(proc)
    raise AssertionError("the Infinity server did not come up in 120 s")


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def server(tiny_clip_dir: Path) -> Iterator[str]:
    port = free_port()
    proc = _start_server(tiny_clip_dir, port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        _kill(proc)


def _cos(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / (
        math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    )


async def test_vectors_equal_the_in_process_engine(
    server: str, tiny_clip_dir: Path, tiny_engine: InfinityEngine
) -> None:
    remote = RemoteInfinityEngine(EmbeddingSettings(model=str(tiny_clip_dir), url=server))
    await remote.start()
    try:
        assert (remote.model_id, remote.dim) == (tiny_engine.model_id, tiny_engine.dim)
        texts = ["a dog", "a red car in the snow", "两只猫"]
        for mine, theirs in zip(
            await remote.embed_texts(texts), await tiny_engine.embed_texts(texts), strict=True
        ):
            assert _cos(mine, theirs) >= 0.999
        images = [noise(64, 48, seed=s) for s in range(3)]
        for mine, theirs in zip(
            await remote.embed_images(images), await tiny_engine.embed_images(images), strict=True
        ):
            assert _cos(mine, theirs) >= 0.999
        # the query twin: its own pool, the same vectors
        [query] = await remote.for_queries().embed_texts(["a dog"])
        assert _cos(query, (await tiny_engine.embed_texts(["a dog"]))[0]) >= 0.999
    finally:
        await remote.stop()


async def test_msearch_indexes_and_searches_through_the_server(
    server: str,
    make_settings: Callable[..., Settings],
    tiny_engine: InfinityEngine,
    media_dir: Path,
) -> None:
    for i in range(4):
        noise(64, 64, seed=80 + i).save(media_dir / f"{i}.png")
    settings = make_settings(embedding={"url": server})
    async with api_client(settings, None) as client:
        job = (
            await client.post("/api/v1/files/batch-process", json={"paths": [str(media_dir)]})
        ).json()

        async def finished() -> bool:
            return bool((await client.get(job["status_url"])).json()["status"] == "finished")

        await wait_for(finished)
        health = (await client.get("/health")).json()
        assert health["status"] == "ok" and health["engines"][0]["vectors"] == 4
        results = (
            await client.post("/api/v1/search/text", json={"query": "a dog", "limit": 4})
        ).json()["results"]
        services = client.app.state.services  # type: ignore[attr-defined]
        [query] = await tiny_engine.embed_texts(["a dog"])
        own = await services.adapter.search(query, limit=4)
        assert [r["file_id"] for r in results] == [h.file.id for h in own]


async def test_an_unreachable_server_is_named_and_leaves_the_service_degraded(
    make_settings: Callable[..., Settings], tiny_clip_dir: Path
) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(ModelUnavailable, match=f"cannot reach the Infinity server at {url}"):
        await RemoteInfinityEngine(EmbeddingSettings(model=str(tiny_clip_dir), url=url)).start()
    async with api_client(make_settings(embedding={"url": url}), None) as client:
        health = await client.get("/health")
        assert health.status_code == 503
        assert "cannot reach the Infinity server" in health.json()["model"]["error"]


async def test_a_dying_server_fails_calls_at_once_and_they_work_again_when_it_is_back(
    tiny_clip_dir: Path,
) -> None:
    port = free_port()
    proc = _start_server(tiny_clip_dir, port)
    remote = RemoteInfinityEngine(
        EmbeddingSettings(model=str(tiny_clip_dir), url=f"http://127.0.0.1:{port}", timeout_s=30)
    )
    try:
        await remote.start()
        [before] = await remote.embed_texts(["a dog"])
        _kill(proc)
        with pytest.raises(EmbeddingError, match="cannot reach the Infinity server"):
            await remote.embed_texts(["a dog"])
        proc = _start_server(tiny_clip_dir, port)
        [after] = await remote.embed_texts(["a dog"])  # the same engine, no restart
        assert _cos(before, after) >= 0.9999
    finally:
        await remote.stop()
        _kill(proc)


async def test_a_stalled_server_times_out_and_works_again_when_it_resumes(
    tiny_clip_dir: Path,
) -> None:
    """The real server frozen (SIGSTOP) mid-use: calls fail within ``timeout_s`` instead of
    hanging, and work again once it runs (SIGCONT)."""
    port = free_port()
    proc = _start_server(tiny_clip_dir, port)
    remote = RemoteInfinityEngine(
        EmbeddingSettings(model=str(tiny_clip_dir), url=f"http://127.0.0.1:{port}", timeout_s=2)
    )
    try:
        await remote.start()
        os.killpg(proc.pid, signal.SIGSTOP)
        with pytest.raises(EmbeddingTimeout, match="did not answer in time"):
            await remote.embed_texts(["a dog"])
        os.killpg(proc.pid, signal.SIGCONT)
        assert len((await remote.embed_texts(["a dog"]))[0]) == remote.dim
    finally:
        await remote.stop()
        os.killpg(proc.pid, signal.SIGCONT)
        _kill(proc)


async def test_a_server_that_never_answers_fails_the_start_in_time(tiny_clip_dir: Path) -> None:
    """Something listens but never answers (not even HTTP): the start fails within
    ``timeout_s`` with what happened, instead of hanging."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])  # read nothing, answer nothing
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    try:
        with pytest.raises(ModelUnavailable, match="did not answer in time"):
            await RemoteInfinityEngine(
                EmbeddingSettings(model=str(tiny_clip_dir), url=url, timeout_s=1.5)
            ).start()
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        listener.close()
