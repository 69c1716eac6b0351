"""The commands on the data directory itself (no server running)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from msearch.app.jobs import JobView, job_view
from msearch.app.transcripts import transcript_view
from msearch.cli.output import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_USAGE,
    confirmed,
    echo,
    echo_err,
    format_folders,
    print_job,
    print_reset,
    print_results,
    print_status,
    print_transcript,
)
from msearch.config import Settings
from msearch.datadir import DataDirLock
from msearch.errors import InvalidRequest
from msearch.store.records import FileStatus

if TYPE_CHECKING:  # imported on use at run time: `msearch --help` stays fast
    from msearch.search import SearchOptions
    from msearch.services import Services
    from msearch.store.adapter import StoredHit, UnifiedDatabaseAdapter

log = logging.getLogger("msearch.cli")


def serve(settings: Settings) -> int:
    import uvicorn

    from msearch.api import create_app
    from msearch.config import is_loopback

    host, port = settings.api.host, settings.api.port
    # Found here, a held data directory is one line; in the app's start-up it would be a
    # traceback from uvicorn.
    probe = DataDirLock(settings.data_dir)
    probe.acquire(owner={})
    probe.release()
    if not is_loopback(host) and not settings.api.api_key:
        log.warning(
            "listening on %s without api.api_key: searches are open to the network "
            "and every change (processing, reset) is refused",
            host,
        )
    app = create_app(
        settings, owner={"url": f"http://{host}:{port}"}, background_start=True, freeze_heap=True
    )
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=settings.api.access_log)
    fatal = getattr(app.state, "fatal", None)
    if fatal is not None:
        echo_err(f"error: {fatal}")
        return EXIT_FAILED
    return EXIT_OK


def demo(args: argparse.Namespace, settings: Settings) -> int:
    """Everything a newcomer needs to see search work, offline: a generated library of
    coloured shapes, indexed with the built-in demo model, served."""
    from msearch.demo import write_catalogue, write_library, write_videos
    from msearch.demo_sounds import write_sounds

    root = args.dir.expanduser().resolve()
    library = root / "library"
    if not library.is_dir() or not any(library.rglob("*.png")):
        echo(
            f"writing {args.count} demo images, {args.videos} videos with sound, "
            f"{args.sounds} sounds and a PDF of {args.pages} pages to {library}"
        )
        write_library(library, args.count)
        write_videos(library / "videos", args.videos)
        write_sounds(library / "sounds", args.sounds)
        if args.pages:
            write_catalogue(library / "documents" / "catalogue.pdf", args.pages)
    settings = settings.model_copy(deep=True)
    settings.data_dir = root / "data"
    settings.embedding.model = "demo"
    settings.audio.model = "demo"
    settings.speech.engine = "pocketsphinx"  # its model ships in its package: offline
    settings.api.allowed_roots = [library, *settings.api.allowed_roots]
    code = asyncio.run(_demo_index(settings, library))
    if code != EXIT_OK or args.no_serve:
        return code
    url = f"http://{settings.api.host}:{settings.api.port}"
    echo(
        f"\nserving the demo at {url} (OpenAPI docs at {url}/docs). Try:\n"
        f"  curl -s -X POST {url}/api/v1/search/text -H 'content-type: application/json' "
        '-d \'{"query": "a red star", "limit": 5}\'\n'
        f"  msearch search 'a small blue ring' --server {url}\n"
        f"  msearch search '红色的星星' --server {url}\n"
        f"  msearch search 'a siren' --heard --server {url}\n"
        f"  msearch search 'blue ring' --type document --server {url}\n"
    )
    return serve(settings)


async def _demo_index(settings: Settings, library: Path) -> int:
    from msearch.media.scan import iter_media_files
    from msearch.services import build_services

    services = await build_services(settings, owner={"command": "demo"})
    try:
        monitoring = settings.file_monitoring
        paths = list(iter_media_files(library, monitoring.file_extensions, monitoring.ignore))
        started = time.perf_counter()
        job, records = await services.orchestrator.submit_batch(paths)
        await services.orchestrator.wait_for_files([r.id for r in records])
        view = await job_view(services.adapter, job.id)
        return print_job(view, time.perf_counter() - started, as_json=False)
    finally:
        await services.aclose()


def _search_options(args: argparse.Namespace) -> SearchOptions:
    from msearch.search import SearchOptions

    folder = str(Path(args.folder).expanduser().resolve()) if args.folder else None
    return SearchOptions(
        limit=args.limit,
        offset=args.offset,
        media_types=tuple(args.media_types or ()),
        modalities=tuple(args.modalities or ()),
        folder=folder,
        min_score=args.min_score,
    )


def _hits_json(hits: list[StoredHit]) -> list[dict[str, Any]]:
    from msearch.api.views import search_hit

    return [search_hit(h) for h in hits]


async def run(args: argparse.Namespace, settings: Settings) -> int:
    from msearch.services import build_services, open_adapter

    if args.command in ("status", "reset", "transcript") or (
        args.command == "folders" and args.folders_command == "list"
    ):
        adapter, lock = await open_adapter(settings)
        try:
            if args.command == "status":
                return await _status(adapter, settings, args.json)
            if args.command == "folders":
                return await _folders_list(adapter, args.json)
            if args.command == "transcript":
                view = await transcript_view(adapter, args.file_id)
                return print_transcript(view, as_json=args.json, vtt=args.vtt)
            return await _reset(adapter, args)
        finally:
            await adapter.close()
            lock.release()
    if args.command == "search" and not (args.query or args.image or args.audio):
        raise InvalidRequest("give a text query, --image FILE or --audio FILE")
    services = await build_services(settings, owner={"command": args.command})
    try:
        if args.command == "index":
            return await _index(services, args)
        if args.command == "retry":
            return await _retry(services, args)
        if args.command == "folders":
            return await _folders(services, args)
        return await _search(services, args)
    finally:
        await services.aclose()


async def _folders_list(adapter: UnifiedDatabaseAdapter, as_json: bool) -> int:
    from msearch.watch.monitor import folder_summaries

    # the server's view of a folder, as it is with no server watching it
    folders = [
        {**view, "watching": None, "scanning": False, "pending_changes": 0, "last_scan": None}
        for view in await folder_summaries(adapter)
    ]
    echo(json.dumps({"folders": folders}, indent=2) if as_json else format_folders(folders))
    return EXIT_OK


async def _folders(services: Services, args: argparse.Namespace) -> int:
    """add/remove/rescan on the data directory: the change is made and, for add and
    rescan, the folder is indexed now; a running server would keep it up to date."""
    monitor = services.monitor
    if args.folders_command == "remove":
        removed = await monitor.remove(args.folder_id, keep_files=args.keep_files)
        echo(f"stopped watching {removed['path']}; {removed['files_removed']} files left the index")
        return EXIT_OK
    if args.folders_command == "add":
        path = args.path.expanduser().resolve()
        if services.settings.api.allowed_roots:
            from msearch.api.security import confine_path

            path = confine_path(str(path), services.settings)
        folder, created = await monitor.add(path, not args.no_recursive)
        echo(f"{'watching' if created else 'already watching'} {folder.path} (folder {folder.id})")
        folder_id = folder.id
    else:
        folder_id = args.folder_id
    await services.orchestrator.wait_idle()  # files re-queued at start-up go first
    report = await monitor.rescan(folder_id)
    bar = tqdm(total=report.queued, unit="file", disable=args.no_progress or None, file=sys.stderr)
    while services.orchestrator.queued:
        bar.update(report.queued - services.orchestrator.queued - bar.n)
        await asyncio.sleep(0.2)
    bar.update(report.queued - bar.n)
    bar.close()
    scan = report.as_dict()
    echo(
        f"scan: {scan['queued']} queued, {scan['moved']} moved, {scan['deleted']} deleted, "
        f"{scan['unchanged']} unchanged, {scan['still_failed']} still failed"
    )
    return await _folder_outcome(services.adapter, folder_id)


async def _folder_outcome(adapter: UnifiedDatabaseAdapter, folder_id: int) -> int:
    from msearch.watch.monitor import folder_summaries

    view = next(v for v in await folder_summaries(adapter) if v["id"] == folder_id)
    echo(format_folders([view]))
    folder = await adapter.get_folder(folder_id)
    records = await adapter.files_in(folder) if folder is not None else []
    failed = [r for r in records if r.status == FileStatus.FAILED]
    for record in failed[:20]:
        echo(f"  failed  {record.path}: [{record.error_code}] {record.error}")
    if failed:
        return EXIT_PARTIAL if view["counts"]["indexed"] else EXIT_FAILED
    return EXIT_OK


async def _index(services: Services, args: argparse.Namespace) -> int:
    from msearch.media.scan import expand_paths

    monitoring = services.settings.file_monitoring
    missing = [p for p in args.paths if not p.exists()]
    for path in missing:
        echo_err(f"warning: {path} does not exist")
    paths = await asyncio.to_thread(
        expand_paths, [p for p in args.paths if p.exists()], monitoring.ignore
    )
    if not paths:
        echo_err("no files found (hidden and ignored names are left out: file_monitoring.ignore)")
        return EXIT_FAILED
    await services.orchestrator.wait_idle()  # files re-queued at start-up go first
    started = time.perf_counter()
    job, records = await services.orchestrator.submit_batch(paths)
    return await _follow_job(services, job.id, [r.id for r in records], args, started)


async def _retry(services: Services, args: argparse.Namespace) -> int:
    await services.orchestrator.wait_idle()  # files re-queued at start-up go first
    started = time.perf_counter()
    job, records = await services.orchestrator.retry(args.file_ids or None)
    if job is None:
        echo("no failed files to retry")
        return EXIT_OK
    return await _follow_job(services, job.id, [r.id for r in records], args, started)


async def _follow_job(
    services: Services,
    job_id: str,
    file_ids: list[str],
    args: argparse.Namespace,
    started: float,
) -> int:
    """Shows the job's progress until its files are done, then what it came to."""
    bar = tqdm(total=len(file_ids), unit="file", disable=args.no_progress or None, file=sys.stderr)
    finishing = asyncio.ensure_future(services.orchestrator.wait_for_files(file_ids))
    view = await job_view(services.adapter, job_id)
    try:
        while not finishing.done():
            await asyncio.wait([finishing], timeout=0.2)
            view = await job_view(services.adapter, job_id)
            bar.update(view.done - bar.n)
    except asyncio.CancelledError:  # Ctrl-C
        finishing.cancel()
        bar.close()
        _say_interrupted(view, time.perf_counter() - started)
        raise
    bar.close()
    await services.orchestrator.wait_idle()
    view = await job_view(services.adapter, job_id)
    return print_job(view, time.perf_counter() - started, args.json)


def _say_interrupted(view: JobView, took: float) -> None:
    echo_err(
        f"\ninterrupted after {took:.1f}s: {view.done - view.failed} done, {view.failed} failed; "
        f"the other {view.total - view.done} of {view.total} files stay queued and resume "
        "when 'msearch index' or 'msearch serve' next runs"
    )


async def _search(services: Services, args: argparse.Namespace) -> int:
    options = _search_options(args)
    weaker = 0
    if args.image:
        hits = await services.searcher.by_image(args.image.read_bytes(), options)
    elif args.audio:
        hits = await services.searcher.by_audio(args.audio.read_bytes(), options)
    else:
        found = await services.searcher.by_text(args.query, options)
        hits, weaker = found.hits, found.weaker
    results = _hits_json(hits)
    print_results(results, weaker=weaker, as_json=args.json)
    return EXIT_OK


async def _status(adapter: UnifiedDatabaseAdapter, settings: Settings, as_json: bool) -> int:
    from msearch.app.status import library_status

    print_status(await library_status(adapter, settings), as_json)
    return EXIT_OK


async def _reset(adapter: UnifiedDatabaseAdapter, args: argparse.Namespace) -> int:
    if not confirmed(args):
        return EXIT_USAGE
    print_reset(args.reset_type, await adapter.reset(args.reset_type), served=False)
    return EXIT_OK
