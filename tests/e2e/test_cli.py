from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.audio_factory import tone
from support.cli_helpers import cli_env, run_cli, start_server, stop_server
from support.media_factory import noise, solid

from msearch.demo import random_spec


@pytest.fixture
def library(media_dir: Path) -> Path:
    solid(64, 64, (255, 0, 0)).save(media_dir / "red.png")
    for i in range(4):
        noise(64, 64, seed=i).save(media_dir / f"n{i}.jpg")
    (media_dir / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    return media_dir


@pytest.fixture
def env(tmp_path: Path, tiny_clip_dir: Path, media_dir: Path) -> dict[str, str]:
    return cli_env(
        tmp_path / "data", tiny_clip_dir, MSEARCH_API__ALLOWED_ROOTS=json.dumps([str(media_dir)])
    )


def test_index_search_status_reset(env: dict[str, str], library: Path) -> None:
    first = run_cli(env, "index", str(library))
    assert first.returncode == 3, first.stderr  # partial: one file failed
    assert "6 files" in first.stdout and "5 indexed" in first.stdout
    assert "broken.jpg" in first.stdout and "corrupt_media" in first.stdout
    again = run_cli(env, "index", str(library), "--no-progress")
    assert "5 unchanged" in again.stdout

    table = run_cli(env, "search", "a red square", "--limit", "3")
    assert table.returncode == 0 and len(table.stdout.strip().splitlines()) == 4
    as_json = json.loads(run_cli(env, "search", "a dog", "--json").stdout)
    assert len(as_json["results"]) == 5
    by_image = json.loads(
        run_cli(env, "search", "--image", str(library / "red.png"), "--json", "--limit", "1").stdout
    )
    assert Path(by_image["results"][0]["path"]).name == "red.png"

    status = json.loads(run_cli(env, "status", "--json").stdout)
    assert status["files"] == {"indexed": 5, "failed": 1} and status["vectors"] == 5
    assert status["failed"][0]["code"] == "corrupt_media"
    human = run_cli(env, "status")
    assert "5 indexed" in human.stdout

    refused = run_cli(env, "reset", "--type", "database")
    assert refused.returncode == 2 and "--yes" in refused.stderr
    done = run_cli(env, "reset", "--type", "database", "--yes")
    assert done.returncode == 0 and "files=6" in done.stdout
    assert sorted(p.name for p in library.iterdir()) == [
        "broken.jpg",
        "n0.jpg",
        "n1.jpg",
        "n2.jpg",
        "n3.jpg",
        "red.png",
    ]


def test_bad_arguments_and_missing_paths(env: dict[str, str], tmp_path: Path) -> None:
    assert run_cli(env, "search").returncode == 1
    missing = run_cli(env, "index", str(tmp_path / "nope"))
    assert missing.returncode == 1 and "does not exist" in missing.stderr
    bad_config = tmp_path / "c.yaml"
    bad_config.write_text("api:\n  port: -1\n")
    assert run_cli(env, "--config", str(bad_config), "status").returncode == 2


@pytest.mark.parametrize("command", ["status", "serve"])
def test_config_mistakes_stop_start_up_with_one_line(
    env: dict[str, str], tmp_path: Path, command: str
) -> None:
    typo = tmp_path / "typo.yaml"
    typo.write_text("api: {prot: 9000}\n")
    broken = tmp_path / "broken.yaml"
    broken.write_text("api:\n  port: [9000\n")
    for config in (typo, broken):
        result = run_cli(env, "--config", str(config), command, timeout=60)
        assert result.returncode == 2, result.stderr
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert (
        "unknown setting api.prot — did you mean api.port?"
        in run_cli(env, "--config", str(typo), command).stderr
    )
    for bad_env in (
        {"MSEARCH_API__PROT": "1"},
        {"MSEARCH_EMBEDDING__MODEL": "/nope/model"},
        {"MSEARCH_API__PORT": "eighty"},
    ):
        result = run_cli({**env, **bad_env}, command, timeout=60)
        assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
        assert next(iter(bad_env)) in result.stderr


@pytest.fixture
def server(env: dict[str, str]) -> Iterator[str]:
    proc, url = start_server(env)
    try:
        yield url
    finally:
        stop_server(proc)


def test_remote_mode_and_data_dir_lock(env: dict[str, str], library: Path, server: str) -> None:
    locked = run_cli(env, "status")
    assert locked.returncode == 1
    assert f"running msearch server at {server}" in locked.stderr
    assert "--server" in locked.stderr
    second = run_cli(env, "serve", "--port", "1", timeout=60)  # never gets to the port
    assert second.returncode == 1 and second.stderr.count("\n") == 1, second.stderr
    assert f"running msearch server at {server}" in second.stderr
    indexed = run_cli(env, "index", str(library), "--server", server, "--no-progress")
    assert indexed.returncode == 3 and "5 indexed, 0 unchanged, 1 failed" in indexed.stdout
    documents = library / "documents"
    documents.mkdir()
    (documents / "a.txt").write_text("words")
    only_text = run_cli(env, "index", str(documents), "--server", server, "--no-progress")
    assert only_text.returncode == 1 and "1 skipped" in only_text.stdout  # as a local run
    assert "none of these files is media" in only_text.stderr
    hits = json.loads(run_cli(env, "search", "red", "--server", server, "--json").stdout)
    assert len(hits["results"]) == 5
    by_image = run_cli(
        env, "search", "--image", str(library / "red.png"), "--server", server, "--limit", "1"
    )
    assert "red.png" in by_image.stdout
    status = json.loads(run_cli(env, "status", "--server", server, "--json").stdout)
    assert status["vectors"] == 5 and status["files"]["indexed"] == 5
    assert "5 indexed" in run_cli(env, "status", "--server", server).stdout


def test_commands_print_one_view_locally_and_through_a_server(
    env: dict[str, str], library: Path
) -> None:
    """status, search, folders list, index and retry: the same JSON and the same lines
    either way (the remote status first names the server), and the same exit codes."""
    indexed = run_cli(env, "index", str(library), "--no-progress")
    assert indexed.returncode == 3  # one broken file
    assert run_cli(env, "folders", "add", str(library)).returncode == 3  # it indexes too
    commands = [
        ("status", "--json"),
        ("status",),
        ("search", "red", "--limit", "3", "--json"),
        ("search", "red", "--limit", "3"),
        ("folders", "list", "--json"),
        ("index", str(library), "--no-progress", "--json"),
        ("retry", "--all", "--no-progress", "--json"),
        ("index", str(library), "--no-progress"),
    ]
    local = [run_cli(env, *command) for command in commands]
    proc, url = start_server(env)
    try:
        remote = [run_cli(env, *command, "--server", url) for command in commands]
    finally:
        stop_server(proc)
    codes = [0] * 5 + [3, 1, 3]  # the broken file fails again (alone, for retry)
    assert [r.returncode for r in local] == [r.returncode for r in remote] == codes
    # a job: the same view but for its id; the same lines but for the time taken
    for mine, theirs in ((local[5], remote[5]), (local[6], remote[6])):
        job, served_job = json.loads(mine.stdout), json.loads(theirs.stdout)
        assert job.pop("job_id") != served_job.pop("job_id")
        assert job == served_job
    job = json.loads(local[5].stdout)
    assert (job["total"], job["indexed"], job["unchanged"], job["failed"]) == (6, 5, 5, 1)
    assert job["failures"][0]["code"] == "corrupt_media" and job["status"] == "finished"
    untimed = lambda text: re.sub(r"in [0-9.]+s", "in Ts", text)  # noqa: E731
    assert untimed(local[7].stdout) == untimed(remote[7].stdout)
    assert "0 indexed, 5 unchanged, 1 failed" in local[7].stdout
    status, status_text, hits, hits_text, folders = (r.stdout for r in local[:5])
    assert json.loads(remote[0].stdout) == json.loads(status)
    view = json.loads(status)
    assert view["engines"][0]["kind"] == "visual" and view["engines"][0]["vectors"] == 5
    assert view["failed"][0]["code"] == "corrupt_media"
    assert remote[1].stdout.splitlines()[0].startswith(f"server:   {url}")
    assert remote[1].stdout.splitlines()[1:] == status_text.splitlines()
    # the same hits (scores from two processes running one model: equal to 1e-5)
    mine, theirs = json.loads(hits)["results"], json.loads(remote[2].stdout)["results"]
    assert [(h["file_id"], h["kind"]) for h in mine] == [(h["file_id"], h["kind"]) for h in theirs]
    assert all(abs(a["score"] - b["score"]) < 1e-5 for a, b in zip(mine, theirs, strict=True))
    assert [sorted(h) for h in mine] == [sorted(h) for h in theirs]
    assert [line.split()[-1] for line in remote[3].stdout.splitlines()] == [
        line.split()[-1] for line in hits_text.splitlines()
    ]
    # folders: the same view; what is live (is a server watching, when did it scan) differs
    live = ("watching", "last_scan")
    strip = lambda views: [{k: v for k, v in f.items() if k not in live} for f in views]  # noqa: E731
    assert strip(json.loads(remote[4].stdout)["folders"]) == strip(json.loads(folders)["folders"])
    assert set(json.loads(remote[4].stdout)["folders"][0]) == set(json.loads(folders)["folders"][0])


def test_folders_on_the_data_directory(env: dict[str, str], library: Path, tmp_path: Path) -> None:
    added = run_cli(env, "folders", "add", str(library), "--no-progress")
    assert added.returncode == 3, added.stderr  # the broken file failed
    assert "watching" in added.stdout and "corrupt_media" in added.stdout
    listed = json.loads(run_cli(env, "folders", "list", "--json").stdout)["folders"]
    assert [(f["path"], f["counts"]["indexed"], f["counts"]["failed"]) for f in listed] == [
        (str(library), 5, 1)
    ]
    outside = run_cli(env, "folders", "add", str(tmp_path))
    assert outside.returncode == 1 and "outside the allowed roots" in outside.stderr

    (library / "n0.jpg").rename(library / "renamed.jpg")  # while nothing watches
    noise(64, 64, seed=9).save(library / "new.jpg")
    rescan = run_cli(env, "folders", "rescan", str(listed[0]["id"]), "--no-progress")
    assert "1 queued, 1 moved, 0 deleted" in rescan.stdout, rescan.stdout
    status = run_cli(env, "status")
    assert "watched folders:" in status.stdout and str(library) in status.stdout

    removed = run_cli(env, "folders", "remove", str(listed[0]["id"]))
    assert removed.returncode == 0 and "7 files left the index" in removed.stdout
    assert "no watched folders" in run_cli(env, "folders", "list").stdout
    assert json.loads(run_cli(env, "status", "--json").stdout)["files"] == {}


def test_folders_through_a_server_are_watched(
    env: dict[str, str], library: Path, server: str
) -> None:
    added = run_cli(env, "folders", "add", str(library), "--server", server, "--no-progress")
    assert added.returncode == 3 and str(library) in added.stdout, added.stderr
    noise(64, 64, seed=11).save(library / "arrives-later.jpg")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        listed = json.loads(run_cli(env, "folders", "list", "--server", server, "--json").stdout)[
            "folders"
        ]
        if listed[0]["counts"]["indexed"] == 6:
            break
        time.sleep(0.5)
    assert listed[0]["counts"] == {"indexed": 6, "queued": 0, "failed": 1, "skipped": 0, "total": 7}
    assert listed[0]["watching"] == "inotify"


def test_demo_command_builds_and_indexes_a_library(tmp_path: Path, tiny_clip_dir: Path) -> None:
    env = cli_env(tmp_path / "unused", tiny_clip_dir)  # the demo picks its own model and data
    result = run_cli(
        env,
        "demo",
        str(tmp_path / "demo"),
        *("--no-serve", "--count", "48", "--videos", "2", "--sounds", "8", "--pages", "6"),
    )
    assert result.returncode == 0, result.stderr
    assert "59 indexed" in result.stdout
    assert len(list((tmp_path / "demo" / "library").rglob("*.png"))) == 48
    search_env = cli_env(
        tmp_path / "demo" / "data",
        tiny_clip_dir,
        MSEARCH_EMBEDDING__MODEL="demo",
        MSEARCH_AUDIO__MODEL="demo",
    )
    hits = json.loads(run_cli(search_env, "search", "a red star", "--json", "--limit", "1").stdout)
    assert Path(hits["results"][0]["path"]).name.startswith("red-star")
    # the same in Chinese, as a table
    table = run_cli(search_env, "search", "红色的星星", "--type", "image", "--limit", "1").stdout
    assert "red-star" in table.splitlines()[1], table
    # the demo's sounds and the videos' soundtracks, heard by the demo CLAP
    heard = run_cli(search_env, "search", "a siren", "--heard", "--type", "audio", "--json")
    results = json.loads(heard.stdout)["results"]
    assert Path(results[0]["path"]).name.startswith("siren"), [r["path"] for r in results]
    # the demo PDF's pages, by their captions
    rng = random.Random(13)  # write_catalogue's seed
    specs = [random_spec(rng) for _ in range(6)]
    caption = f"{specs[3].size} {specs[3].label} on a {specs[3].background} background"
    read = run_cli(search_env, "search", caption, "--read", "--json")
    page = json.loads(read.stdout)["results"][0]
    assert Path(page["path"]).name == "catalogue.pdf"
    assert specs[page["page"]["number"] - 1] == specs[3], (page, specs)


def test_version_and_help_for_every_option() -> None:
    import argparse

    from msearch import __version__
    from msearch.cli.parser import build_parser

    version = run_cli({}, "--version")
    assert version.returncode == 0 and version.stdout.strip() == f"msearch {__version__}"

    def walk(parser: argparse.ArgumentParser, name: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub_name, sub in action.choices.items():
                    walk(sub, f"{name} {sub_name}")
            elif not isinstance(action, argparse._HelpAction):
                assert action.help, f"'{name}' {action.option_strings or action.dest}: no help"

    walk(build_parser(), "msearch")


def test_common_options_work_after_the_command(env: dict[str, str], tmp_path: Path) -> None:
    """The README's 'msearch serve --config FILE' (and --data-dir after any command)."""
    config = tmp_path / "mine.yaml"
    config.write_text(f"data_dir: {tmp_path / 'from-config'}\n")
    env = {k: v for k, v in env.items() if k != "MSEARCH_DATA_DIR"}
    status = run_cli(env, "status", "--config", str(config), "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["data_dir"] == str(tmp_path / "from-config")
    after = run_cli(
        env, "--config", str(config), "status", "--data-dir", str(tmp_path / "flag"), "--json"
    )
    assert json.loads(after.stdout)["data_dir"] == str(tmp_path / "flag")
    typo = tmp_path / "typo.yaml"
    typo.write_text("api: {prot: 1}\n")
    served = run_cli(env, "serve", "--config", str(typo), timeout=60)
    assert served.returncode == 2 and "api.prot" in served.stderr


def test_ctrl_c_during_index_says_what_was_done_and_what_resumes(
    env: dict[str, str], media_dir: Path, tmp_path: Path
) -> None:
    import signal
    import sqlite3
    import subprocess
    import sys

    # enough files that the run is still going when the first few are indexed, however
    # fast the machine (with 300, a fast CI machine finished before the signal)
    files = 1200
    for i in range(files):
        noise(64, 48, seed=i).save(media_dir / f"{i:04}.png")
    slow = {
        **env,
        "MSEARCH_EMBEDDING__BATCH_SIZE": "2",
        "MSEARCH_PERFORMANCE__MAX_CONCURRENT_FILES": "2",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "msearch", "index", str(media_dir), "--no-progress"],
        env=slow,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # as at a terminal: a test run started in the background (`make test &`) has
        # SIGINT ignored, and its children inherit that (Python then leaves it ignored)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    database = tmp_path / "data" / "msearch.db"

    def indexed() -> int:
        try:
            with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
                return int(
                    db.execute("SELECT count(*) FROM files WHERE status = 'indexed'").fetchone()[0]
                )
        except sqlite3.Error:
            return 0

    # loading the model takes a while on a loaded 2-core machine (44 s seen), so the
    # deadline is generous; whatever stops the wait, the message says what happened
    deadline = time.monotonic() + 300
    while indexed() < 3 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    if proc.poll() is not None:
        out, err = proc.communicate()
        pytest.fail(f"the run ended ({proc.returncode}) before the signal: {out}\n{err}")
    assert indexed() >= 3, "no file was indexed within 300 s"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted after" in err and "resume when 'msearch index'" in err, err
    assert "Traceback" not in err
    done = indexed()
    assert 3 <= done < files
    again = run_cli(env, "index", str(media_dir), "--no-progress", timeout=600)
    assert again.returncode == 0, again.stderr
    assert indexed() == files


def test_skipped_files_are_counted_and_explained(
    env: dict[str, str], media_dir: Path, tmp_path: Path
) -> None:
    only_text = tmp_path / "documents"
    only_text.mkdir()
    for name in ("a.txt", "b.txt", "c.docx"):
        (only_text / name).write_text("words")
    nothing = run_cli(env, "index", str(only_text), "--no-progress")
    assert nothing.returncode == 1
    assert "3 skipped" in nothing.stdout and ".txt ×2, .docx ×1" in nothing.stdout
    assert "none of these files is media msearch indexes" in nothing.stderr
    noise(40, 40).save(media_dir / "photo.png")
    (media_dir / "readme.txt").write_text("hello")
    mixed = run_cli(env, "index", str(media_dir), "--no-progress")
    assert mixed.returncode == 0 and "1 indexed" in mixed.stdout and "1 skipped" in mixed.stdout
    status = run_cli(env, "status")
    assert "skipped:  .txt ×3, .docx ×1 (not media msearch indexes)" in status.stdout
    assert json.loads(run_cli(env, "status", "--json").stdout)["skipped"] == {".txt": 3, ".docx": 1}


def test_serve_without_a_reachable_hub_opens_at_once_and_says_why(
    env: dict[str, str], tmp_path: Path
) -> None:
    """A hub that accepts connections and never answers (a captive network): the port
    opens while the model is looked for, health says 'starting', then 'degraded' with
    what to do; no retries, no pages of warnings."""
    import socket
    import subprocess
    import sys

    import httpx
    from support.cli_helpers import free_port

    hub = socket.socket()
    hub.bind(("127.0.0.1", 0))
    hub.listen(16)
    port = free_port()
    hubless = {k: v for k, v in env.items() if k != "HF_HUB_OFFLINE"}
    hubless.update(
        MSEARCH_EMBEDDING__MODEL="someone/not-here",
        HF_ENDPOINT=f"http://127.0.0.1:{hub.getsockname()[1]}",
    )
    log = (tmp_path / "serve.log").open("w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "msearch", "serve", "--port", str(port)],
        env=hubless,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        states: list[dict[str, Any]] = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                states.append(httpx.get(f"{url}/health", timeout=5).json())
            except httpx.HTTPError:
                time.sleep(0.1)
                continue
            if states[-1]["status"] == "degraded":
                break
            if len(states) == 1:
                search = httpx.post(f"{url}/api/v1/search/text", json={"query": "x"})
                assert search.status_code == 503 and search.headers["retry-after"] == "2"
                assert search.json()["error"]["code"] == "model_loading"
            time.sleep(0.2)
        assert states and states[0]["status"] == "starting", states[:1]
        error = states[-1]["model"]["error"]
        assert states[-1]["status"] == "degraded", states[-1]
        assert "someone/not-here" in error and "MSEARCH_EMBEDDING__MODEL" in error
        assert "msearch demo" in error
        refused = httpx.post(f"{url}/api/v1/search/text", json={"query": "x"})
        assert refused.status_code == 503 and "MSEARCH_EMBEDDING__MODEL" in refused.text
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        hub.close()
        log.seek(0)
        output = log.read()
        log.close()
    assert "Traceback" not in output
    assert len(output.splitlines()) < 25, output


def test_sound_from_the_command_line(
    tmp_path: Path, tiny_clip_dir: Path, tiny_clap_dir: Path, media_dir: Path
) -> None:
    env = cli_env(
        tmp_path / "data",
        tiny_clip_dir,
        MSEARCH_AUDIO__MODEL=str(tiny_clap_dir),
        MSEARCH_API__ALLOWED_ROOTS=json.dumps([str(media_dir)]),
    )
    tone(media_dir / "beep.wav", 12.0, frequency=2000)
    solid(64, 64, (255, 0, 0)).save(media_dir / "red.png")
    indexed = run_cli(env, "index", str(media_dir), "--no-progress")
    assert indexed.returncode == 0, indexed.stderr
    assert "2 indexed" in indexed.stdout
    heard = run_cli(env, "search", "a high beep", "--heard", "--json")
    results = json.loads(heard.stdout)["results"]
    assert results and {r["kind"] for r in results} == {"audio"}
    assert all(r["audio"]["end"] > r["audio"]["start"] for r in results)
    table = run_cli(env, "search", "a beep", "--type", "audio").stdout
    assert "beep.wav  heard @ 0.0-10.0s" in table, table
    clip = tone(tmp_path / "clip.mp3", 2.0, frequency=2000, rate=44_100)
    by_clip = run_cli(env, "search", "--audio", str(clip), "--json")
    assert by_clip.returncode == 0, by_clip.stderr
    assert {r["path"] for r in json.loads(by_clip.stdout)["results"]} == {
        str(media_dir / "beep.wav")
    }


def test_what_is_said_is_searched_and_shown_locally_and_through_a_server(
    env: dict[str, str], media_dir: Path
) -> None:
    """search --said shows the spoken line and its second; transcript prints the lines
    with their times, as JSON or WebVTT: the same either way."""
    from support.speech_factory import spoken

    env = {**env, "MSEARCH_SPEECH__ENGINE": "pocketsphinx"}
    talk = spoken(media_dir / "talk.flac", [(2.0, "welcome to the budget meeting")], 6.0)
    assert run_cli(env, "index", str(talk), "--no-progress").returncode == 0
    found = json.loads(run_cli(env, "search", "budg", "--said", "--json").stdout)["results"]
    [hit] = found
    assert abs(hit["speech"]["start"] - 2.0) <= 1.5
    commands = [
        ("search", "budg", "--said"),
        ("transcript", hit["file_id"]),
        ("transcript", hit["file_id"], "--json"),
        ("transcript", hit["file_id"], "--vtt"),
        ("transcript", "no-such-file"),
    ]
    local = [run_cli(env, *command) for command in commands]
    proc, url = start_server(env)
    try:
        remote = [run_cli(env, *command, "--server", url) for command in commands]
    finally:
        stop_server(proc)
    assert [r.returncode for r in local] == [r.returncode for r in remote] == [0, 0, 0, 0, 1]
    assert [r.stdout for r in local[1:4]] == [r.stdout for r in remote[1:4]]
    table = local[0].stdout
    assert f"said @ {hit['speech']['start']:.1f}s" in table and "[budg]et meeting" in table
    assert re.match(r"00:0[1-3]  welcome to the budget meeting", local[1].stdout)
    assert json.loads(local[2].stdout)["segments"][0]["text"] == "welcome to the budget meeting"
    assert local[3].stdout.startswith("WEBVTT\n\n00:00:0")
    assert "no file with id no-such-file" in local[4].stderr
