"""The web page, end to end: Debian's Chromium driven by Playwright (system browser, nothing
downloaded) against a real ``msearch serve`` with the demo model. Screenshots are kept under
build/test-artifacts/web/."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright import sync_api as playwright_sync
from support.audio_factory import tone, video_with_sound
from support.cli_helpers import free_port
from support.paths import ROOT

from msearch.demo import write_library, write_videos

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = ROOT / "build" / "test-artifacts" / "web"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]


@dataclass
class Server:
    url: str
    root: Path
    library: Path
    videos: list[tuple[Path, list[Any]]]
    process: subprocess.Popen[str]


def _serve(root: Path, library: Path, **env_extra: str) -> tuple[str, subprocess.Popen[str]]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MSEARCH_")}
    env.update(
        {
            "MSEARCH_DATA_DIR": str(root / "data"),
            "MSEARCH_EMBEDDING__MODEL": "demo",
            "MSEARCH_EMBEDDING__DEVICE": "cpu",
            "MSEARCH_API__ALLOWED_ROOTS": json.dumps([str(root)]),
            "MSEARCH_FILE_MONITORING__FOLDERS": json.dumps([str(library)]),
            "MSEARCH_FILE_MONITORING__DEBOUNCE_MS": "300",
            "PYTHONUNBUFFERED": "1",
            **env_extra,
        }
    )
    log = (root / "server.log").open("a")
    process = subprocess.Popen(
        [sys.executable, "-m", "msearch", "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, (root / "server.log").read_text()
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return url, process
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    process.kill()
    raise AssertionError("the server did not start: " + (root / "server.log").read_text())


def _wait_indexed(url: str, headers: dict[str, str] | None = None, limit_s: float = 240) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        folders = httpx.get(f"{url}/api/v1/folders", headers=headers, timeout=10).json()
        if all(
            not f["scanning"]
            and not f["pending_changes"]
            and not f["counts"]["queued"]
            and f["counts"]["indexed"]
            for f in folders["folders"]
        ):
            return
        time.sleep(0.5)
    raise AssertionError(f"not indexed in time: {folders}")


@contextmanager
def _own_server(
    browser: Any, root: Path, library: Path, request: pytest.FixtureRequest, **env: str
) -> Iterator[Any]:
    """A server of the test's own on ``library``, once indexed, and a page on it: the
    page's uncaught errors fail the test, its last look is kept."""
    url, process = _serve(root, library, **env)
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        _wait_indexed(url)
        page.goto(url)
        yield page
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}-end.png"), full_page=True)
        context.close()
        process.terminate()
        process.wait(timeout=30)
    assert not errors, errors


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("web").resolve()
    library = root / "library"
    write_library(library, 48)
    videos = write_videos(library / "videos", 2)
    url, process = _serve(root, library)
    try:
        _wait_indexed(url)
        yield Server(url, root, library, videos, process)
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Debian's chromium is missing at {CHROMIUM}: run 'make setup'")
    with playwright_sync.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    yield page
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{request.node.name}-end.png"), full_page=True)
    context.close()
    # Error answers the test provokes show up as "Failed to load resource"; anything
    # else (an exception, a failed module load) is a defect of the page.
    assert not [e for e in errors if "Failed to load resource" not in e], errors


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def _card_names(page: Any) -> list[str]:
    return list(page.locator(".card .name").all_inner_texts())


def test_a_text_query_shows_a_matching_shape_first(server: Server, page: Any) -> None:
    page.goto(server.url)
    page.wait_for_selector("#message:not([hidden])")
    assert "files to search" in page.inner_text("#message")
    page.keyboard.press("/")  # the keyboard shortcut focuses the search box
    page.keyboard.type("a red star")
    page.keyboard.press("Enter")
    page.wait_for_selector(".card")
    shot(page, "text-query")
    assert _card_names(page)[0].startswith("red-star"), _card_names(page)[:5]
    summary = page.inner_text("#summary")
    assert "for “a red star”" in summary and " ms" in summary
    assert "?q=a+red+star" in page.url
    # one red star picture in the library: the model's relevance floor leaves lookalikes
    # out (a video may show a red star too), and offers them
    names = _card_names(page)
    assert all(n.startswith("red-star") or n.endswith(".mp4") for n in names), names
    assert "weaker matches are not shown" in page.inner_text("#weaker")
    page.click("#weaker button.link")
    page.wait_for_function("() => document.querySelectorAll('.card').length > 10")
    assert _card_names(page)[0].startswith("red-star")
    assert page.is_hidden("#weaker")

    # keyboard only: into the grid, open the viewer, read its metadata, close it
    page.focus(".card >> nth=0")
    page.keyboard.press("ArrowRight")
    assert page.evaluate("document.activeElement.dataset.index") == "1"
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("Enter")
    page.wait_for_selector("#viewer[open] .meta dd")
    # predicates are functions: a bare expression is eval'd in the page, which its CSP forbids
    page.wait_for_function(
        "() => document.querySelector('#viewer-meta').innerText.includes('256 × 256')"
    )
    meta = page.inner_text("#viewer-meta")
    assert str(server.library) in meta and "Dimensions" in meta
    shot(page, "viewer-image")
    page.keyboard.press("Escape")
    page.wait_for_selector("#viewer", state="hidden")
    assert page.evaluate("document.activeElement.dataset.index") == "0"


def test_an_image_dropped_on_the_page_searches_by_example(server: Server, page: Any) -> None:
    example = sorted(server.library.rglob("blue-circle-*.png"))[0]
    page.goto(server.url)
    page.wait_for_selector("#message:not([hidden])")
    data = list(example.read_bytes())
    transfer = page.evaluate_handle(
        """([bytes, name]) => {
             const dt = new DataTransfer();
             dt.items.add(new File([new Uint8Array(bytes)], name, {type: 'image/png'}));
             return dt;
           }""",
        [data, example.name],
    )
    page.dispatch_event("body", "dragenter", {"dataTransfer": transfer})
    assert page.is_visible("#drop-overlay")
    page.dispatch_event("body", "drop", {"dataTransfer": transfer})
    page.wait_for_selector(".card")
    shot(page, "dropped-image")
    assert page.is_hidden("#drop-overlay")
    assert _card_names(page)[0] == example.name
    assert f"like {example.name}" in page.inner_text("#summary")

    # "more like this" from the viewer searches by that indexed file
    page.click(".card >> nth=1")
    page.wait_for_selector("#viewer[open]")
    second = page.inner_text("#viewer-title")
    page.click("#viewer-similar")
    page.wait_for_function(
        f"() => document.querySelector('#summary').innerText.includes('like {second}')"
    )
    assert second not in _card_names(page), "the query file is left out of its results"


def test_a_video_result_plays_from_its_scene(server: Server, page: Any) -> None:
    path, specs = server.videos[0]
    spec = specs[1]  # a later shot: its scene starts after 0
    page.goto(server.url)
    page.select_option("#f-type", "video")
    page.fill("#q", f"a {spec.colour} {spec.shape}")
    page.keyboard.press("Enter")
    page.wait_for_selector(".card .tag")
    card = page.locator(".card", has_text=path.name).first
    assert "▶" in card.inner_text()
    card.click()
    video = page.wait_for_selector("#viewer[open] video")
    start = float(video.get_attribute("data-scene-start") or "nan")
    page.wait_for_function(
        "() => { const v = document.querySelector('#viewer video');"
        " return v && !v.paused && v.currentTime > Number(v.dataset.sceneStart); }",
        timeout=20_000,
    )
    current = page.evaluate("document.querySelector('#viewer video').currentTime")
    assert start > 0 and start <= current < start + 3, (start, current)
    shot(page, "video-playing")
    chips = page.locator("#viewer-scenes .chip")
    assert chips.count() >= 1
    chips.last.click()
    page.wait_for_function("() => !document.querySelector('#viewer video').seeking")
    assert "Duration" in page.inner_text("#viewer-meta")


def test_adding_a_folder_shows_progress_until_indexed(server: Server, page: Any) -> None:
    extra = server.root / "more-shapes"
    write_library(extra, 24, seed=99)
    page.goto(server.url)
    page.click("#library-toggle")
    page.wait_for_selector("#folders .folder")
    page.fill("#folder-path", str(extra))
    page.click("#folder-form button[type=submit]")
    folder = page.locator(".folder", has_text=str(extra))
    folder.wait_for()
    shot(page, "folder-added")
    page.wait_for_function(
        "path => [...document.querySelectorAll('.folder')].some(f =>"
        " f.innerText.includes(path) && f.querySelector('.count-indexed').innerText"
        " === '24 indexed' && f.querySelector('.folder-state').innerText.startsWith('watching'))",
        arg=str(extra),
        timeout=120_000,
    )
    shot(page, "folder-indexed")
    assert folder.locator("progress").get_attribute("value") == "24"
    page.fill("#folder-path", "/etc")
    page.click("#folder-form button[type=submit]")
    page.wait_for_selector("#folder-error:not([hidden])")
    assert "outside the allowed roots" in page.inner_text("#folder-error")

    page.on("dialog", lambda dialog: dialog.accept())
    folder.locator("button.danger").click()
    folder.wait_for(state="detached")


def test_phone_width_and_empty_results(server: Server, browser: Any) -> None:
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    page = context.new_page()
    try:
        page.goto(server.url)
        page.fill("#q", "a green triangle")
        page.keyboard.press("Enter")
        page.wait_for_selector(".card")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the page scrolls sideways at phone width ({width}px)"
        columns = page.evaluate(
            "getComputedStyle(document.querySelector('#grid'))"
            ".gridTemplateColumns.split(' ').length"
        )
        assert columns == 2
        shot(page, "phone")
        page.select_option("#f-type", "video")
        page.fill("#f-after", "2001-01-01")
        page.fill("#f-before", "2001-01-02")
        page.dispatch_event("#f-before", "change")
        # Choosing "video" searches at once and may show its own answer (weaker
        # video matches) before the dates' search replaces it: wait for the last.
        page.wait_for_function(
            "() => document.querySelector('#message').innerText.includes('Nothing matched')"
        )
        assert page.is_visible("#message")
        shot(page, "phone-empty")
    finally:
        context.close()


def test_the_api_key_is_asked_once_per_browser_session(
    tmp_path: Path, browser: Any, server: Server
) -> None:
    root = tmp_path.resolve()
    library = root / "library"
    write_library(library, 12, seed=5)
    url, process = _serve(root, library, MSEARCH_API__API_KEY="open-sesame")
    try:
        _wait_indexed(url, {"Authorization": "Bearer open-sesame"})
        context = browser.new_context()
        page = context.new_page()
        page.goto(url)
        page.wait_for_selector("#key-dialog[open]")
        shot(page, "key-prompt")
        page.fill("#key-input", "wrong")
        page.keyboard.press("Enter")
        page.wait_for_selector("#key-error:not([hidden])")
        page.fill("#key-input", "open-sesame")
        page.keyboard.press("Enter")
        page.wait_for_selector("#key-dialog", state="hidden")
        page.fill("#q", "a green square")  # the library: red and green shapes
        page.keyboard.press("Enter")
        page.wait_for_selector(".card img")
        # thumbnails load through the session cookie (an <img> sends no Authorization)
        page.wait_for_function(
            "() => { const img = document.querySelector('.card img');"
            " return img.complete && img.naturalWidth > 0; }"
        )
        page.reload()  # same browser session: no prompt again
        page.wait_for_selector(".card")
        assert page.is_hidden("#key-dialog")
        assert "open-sesame" not in json.dumps(context.cookies())
        context.close()
        fresh = browser.new_context()  # a new browser session is asked again
        other = fresh.new_page()
        other.goto(url)
        other.wait_for_selector("#key-dialog[open]")
        fresh.close()
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_failed_files_can_be_retried_from_the_library(server: Server, page: Any) -> None:
    """A file fixed in place (same size and mtime, so no scan can tell) is retried with
    the Retry button beside it and leaves the failures."""
    import io

    from PIL import Image

    folder = server.root / "fixable"
    folder.mkdir()
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 30, 30)).save(buffer, "PNG")
    good = buffer.getvalue()
    target = folder / "restored.png"
    target.write_bytes(good[: len(good) // 2] + bytes(len(good) - len(good) // 2))
    added = httpx.post(f"{server.url}/api/v1/folders", json={"path": str(folder)}, timeout=30)
    assert added.status_code == 201, added.text
    page.goto(server.url)
    page.click("#library-toggle")
    failure = page.locator("#failed li", has_text="restored.png")
    failure.wait_for(timeout=60_000)
    assert "corrupt_media" in failure.inner_text()
    stat = target.stat()
    target.write_bytes(good)
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    shot(page, "failed-file")
    failure.locator("button.retry").click()
    page.wait_for_selector("#retry-state:has-text('Retrying 1 file')")
    failure.wait_for(state="detached", timeout=60_000)  # it left the failures: queued

    def statuses() -> list[str]:
        files = httpx.get(f"{server.url}/api/v1/files", params={"folder": str(folder)}).json()
        return [f["status"] for f in files["files"]]

    deadline = time.monotonic() + 60
    while statuses() != ["indexed"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert statuses() == ["indexed"]
    httpx.delete(f"{server.url}/api/v1/folders/{added.json()['id']}", timeout=30)


@pytest.mark.parametrize(
    ("path", "operation"),
    [
        ("/docs", ".opblock-summary-path[data-path='/api/v1/search/text']"),
        ("/redoc", ':text("/api/v1/search/text")'),
    ],
)
def test_api_docs_work_offline(server: Server, page: Any, path: str, operation: str) -> None:
    """Everything /docs and /redoc load comes from msearch; with every other host cut
    off, the operations are still listed."""
    outside: list[str] = []

    def only_here(route: Any) -> None:
        url = route.request.url
        if url.startswith((server.url, "data:", "blob:")):
            route.continue_()
        else:
            outside.append(url)
            route.abort()

    page.route("**/*", only_here)
    page.goto(server.url + path)
    page.wait_for_selector(operation, timeout=30_000)
    shot(page, f"docs-{path.strip('/')}")
    assert outside == []


def test_sounds_play_from_where_they_are_heard(
    tmp_path: Path, browser: Any, tiny_clap_dir: Path, request: pytest.FixtureRequest
) -> None:
    """With a sound model: the filter offers sounds, a sound's card marks where it is heard,
    the viewer plays it from there, and a video says what was heard where."""
    root = tmp_path.resolve()
    library = root / "library"
    write_library(library, 6)
    tone(library / "beep.wav", 14.0, frequency=2000)
    tone(library / "hum.flac", 6.0, frequency=90)
    video_with_sound(library / "clip.mp4", 6.0)
    with _own_server(
        browser, root, library, request, MSEARCH_AUDIO__MODEL=str(tiny_clap_dir)
    ) as page:
        page.select_option("#f-type", "audio")
        page.fill("#q", "a high beep")
        page.keyboard.press("Enter")
        page.wait_for_selector(".card .sound-tile")
        shot(page, "sound-results")
        names = _card_names(page)
        assert set(names) <= {"beep.wav", "hum.flac"} and names, names
        card = page.locator(".card", has_text="beep.wav").first
        assert "♪" in card.inner_text()
        card.click()
        page.wait_for_selector("#viewer[open] audio")
        page.wait_for_function(
            "() => { const a = document.querySelector('#viewer audio');"
            " return a && a.readyState >= 1 && !a.seeking; }",
            timeout=20_000,
        )
        chips = page.locator("#viewer-scenes .chip.heard")
        assert chips.count() >= 1
        start = page.evaluate("document.querySelector('#viewer audio').currentTime")
        best = page.inner_text("#viewer-scenes .chip.best")
        assert best.startswith("♪") and start >= 0, (best, start)
        page.wait_for_function(
            "() => document.querySelector('#viewer-meta').innerText.includes('Hz')"
        )
        page.keyboard.press("Escape")

        page.select_option("#f-type", "video")
        page.fill("#q", "a beep")
        page.keyboard.press("Enter")
        page.wait_for_selector(".card .tag")
        tag = page.locator(".card", has_text="clip.mp4").first.inner_text()
        assert "▶" in tag, tag
        shot(page, "video-heard")


def test_words_said_are_shown_and_played_from_where_they_are_said(
    tmp_path: Path, browser: Any, request: pytest.FixtureRequest
) -> None:
    """A spoken phrase finds the video it is said in: the card shows the line with the
    match marked, the viewer plays from that second, lists the transcript and subtitles."""
    from support.speech_factory import spoken

    root = tmp_path.resolve()
    library = root / "library"
    write_library(library, 4)
    spoken(library / "meeting.mp4", [(3.0, "welcome to the budget meeting")], 8.0, video=True)
    with _own_server(
        browser, root, library, request, MSEARCH_SPEECH__ENGINE="pocketsphinx"
    ) as page:
        page.fill("#q", "budget meeting")
        page.keyboard.press("Enter")
        page.wait_for_selector(".card .said mark")
        card = page.locator(".card", has_text="meeting.mp4").first
        assert "budget" in card.locator(".said mark").first.inner_text()
        shot(page, "speech-results")
        card.click()
        page.wait_for_selector("#viewer[open] video track[kind=subtitles]", state="attached")
        page.wait_for_function(
            "() => { const v = document.querySelector('#viewer video');"
            " return v && v.readyState >= 1 && !v.seeking; }",
            timeout=20_000,
        )
        start = page.evaluate("document.querySelector('#viewer video').currentTime")
        assert 1.5 <= start <= 4.5, start
        best = page.inner_text("#viewer-scenes .line.said.best")
        assert "budget" in best and best.startswith("0:0"), best
        page.wait_for_selector("#viewer-scenes details.transcript .line", state="attached")
        shot(page, "speech-viewer")


def test_a_document_page_is_shown_with_its_words(
    tmp_path: Path, browser: Any, request: pytest.FixtureRequest
) -> None:
    """A phrase finds the page of a PDF it is written on: the card shows the page number
    and the words with the match marked; the viewer shows that page and opens the PDF
    there."""
    from support.pdf_factory import text_page, write_pdf

    root = tmp_path.resolve()
    library = root / "library"
    write_library(library, 4)
    pages = [text_page(f"Chapter {i}", f"nothing to see on page {i}") for i in range(1, 6)]
    pages[3] = text_page("Chapter 4", "the lighthouse keeper counted seagulls")
    write_pdf(library / "logbook.pdf", pages, title="Logbook")
    with _own_server(browser, root, library, request) as page:
        page.fill("#q", "lighthouse keeper")
        page.keyboard.press("Enter")
        page.wait_for_selector(".card .said mark")
        card = page.locator(".card", has_text="logbook.pdf").first
        assert card.locator(".tag").inner_text().startswith("p. 4")
        assert "lighthouse" in card.locator(".said mark").first.inner_text()
        shot(page, "document-results")
        card.click()
        page.wait_for_selector("#viewer[open] .viewer-media img")
        assert page.get_attribute("#viewer .viewer-media img", "src").endswith("preview?page=4")
        page.wait_for_function(
            "() => { const i = document.querySelector('#viewer .viewer-media img');"
            " return i && i.complete && i.naturalWidth > 0; }",
            timeout=20_000,
        )
        assert page.get_attribute("#viewer .open-pdf", "href").endswith("/content#page=4")
        assert "lighthouse" in page.inner_text("#viewer-scenes .line.said.best")
        shot(page, "document-viewer")
        page.click("#viewer-similar")  # more like the page shown
        page.wait_for_selector("#example:not([hidden])")
        assert page.inner_text("#example-label") == "Like logbook.pdf, page 4"
        page.wait_for_selector(".card")
        tags = page.locator(".card .tag").all_inner_texts()
        assert tags and not any(t.startswith("p. 4") for t in tags), tags


def test_a_chinese_query_and_no_close_matches(
    tmp_path: Path, browser: Any, request: pytest.FixtureRequest
) -> None:
    """A query in Chinese finds red stars first, in a CJK font; a query for what the
    library does not hold says there are no close matches, and shows the weaker ones
    when asked."""
    root = tmp_path.resolve()
    library = root / "library"
    write_library(library, 8)  # red and green shapes, one of each: no blue at all
    with _own_server(browser, root, library, request) as page:
        page.fill("#q", "红色的星星")
        page.keyboard.press("Enter")
        page.wait_for_selector(".card")
        assert _card_names(page)[0].startswith("red-star"), _card_names(page)[:5]
        assert "for “红色的星星”" in page.inner_text("#summary")
        fonts = page.evaluate("getComputedStyle(document.body).fontFamily")
        assert "Noto Sans CJK SC" in fonts, fonts
        # the face that draws the characters is a CJK one (Debian's fonts-noto-cjk)
        assert page.evaluate("document.fonts.check('16px \"Noto Sans CJK SC\"', '红色的星星')")
        shot(page, "chinese-query")

        page.fill("#q", "一个蓝色的圆环")
        page.keyboard.press("Enter")
        page.wait_for_selector("#message:not([hidden])")
        assert "No close matches" in page.inner_text("#message")
        assert page.locator(".card").count() == 0
        shot(page, "no-close-matches")
        page.click("#message button.link")
        page.wait_for_selector(".card")
        assert page.locator(".card").count() == 8  # every file, however weak
        assert page.is_hidden("#weaker")
