"""The commands through a running server (``--server URL``): the same views, printed the
same way, with the same exit codes as the local backend."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from tqdm import tqdm

from msearch.cli.output import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_USAGE,
    confirmed,
    echo,
    format_folders,
    print_job,
    print_reset,
    print_results,
    print_status,
    print_transcript,
)
from msearch.config import Settings
from msearch.errors import InvalidRequest

if TYPE_CHECKING:
    from msearch.client import ServerClient


def run(args: argparse.Namespace, settings: Settings) -> int:
    from msearch.client import ServerClient

    client = ServerClient(args.server, args.api_key or settings.api.api_key)
    try:
        if args.command == "index":
            return _remote_index(client, args)
        if args.command == "retry":
            body = {"file_ids": args.file_ids} if args.file_ids else None
            job = client.request("POST", "/api/v1/files/retry", json=body)
            if job["job_id"] is None:
                echo("no failed files to retry")
                return EXIT_OK
            return _follow_job(client, job, args)
        if args.command == "search":
            return _remote_search(client, args)
        if args.command == "folders":
            return _remote_folders(client, args)
        if args.command == "transcript":
            from msearch.app.transcripts import TranscriptView

            path = f"/api/v1/files/{quote(args.file_id, safe='')}/transcript"
            transcript = TranscriptView.from_json(client.request("GET", path))
            return print_transcript(transcript, as_json=args.json, vtt=args.vtt)
        if args.command == "status":
            from msearch.app.status import StatusView

            if not args.json:
                health = client.request("GET", "/health")
                echo(f"server:   {args.server} ({health['status']})")
            view = StatusView.from_json(client.request("GET", "/api/v1/system/status"))
            print_status(view, args.json)
            return EXIT_OK
        if not confirmed(args):
            return EXIT_USAGE
        reply = client.request("POST", "/api/v1/system/reset", json={"reset_type": args.reset_type})
        print_reset(args.reset_type, reply["removed"], served=True)
        return EXIT_OK
    finally:
        client.close()


def _remote_index(client: ServerClient, args: argparse.Namespace) -> int:
    paths = [str(p.expanduser().resolve()) for p in args.paths]
    job = client.request("POST", "/api/v1/files/batch-process", json={"paths": paths})
    return _follow_job(client, job, args)


def _follow_job(client: ServerClient, job: dict[str, Any], args: argparse.Namespace) -> int:
    from msearch.app.jobs import JobView

    started = time.perf_counter()
    bar = tqdm(
        total=len(job["files"]), unit="file", disable=args.no_progress or None, file=sys.stderr
    )
    while True:
        view = JobView.from_json(client.request("GET", job["status_url"]))
        bar.update(view.done - bar.n)
        if view.finished:
            break
        time.sleep(0.5)
    bar.close()
    return print_job(view, time.perf_counter() - started, args.json)


def _remote_folders(client: ServerClient, args: argparse.Namespace) -> int:
    command = args.folders_command
    if command == "list":
        folders = client.request("GET", "/api/v1/folders")["folders"]
        echo(json.dumps({"folders": folders}, indent=2) if args.json else format_folders(folders))
        return EXIT_OK
    if command == "remove":
        removed = client.request(
            "DELETE",
            f"/api/v1/folders/{args.folder_id}",
            params={"keep_files": str(args.keep_files).lower()},
        )
        echo(f"stopped watching {removed['path']}; {removed['files_removed']} files left the index")
        return EXIT_OK
    if command == "add":
        view = client.request(
            "POST",
            "/api/v1/folders",
            json={
                "path": str(args.path.expanduser().resolve()),
                "recursive": not args.no_recursive,
            },
        )
    else:
        view = client.request("POST", f"/api/v1/folders/{args.folder_id}/rescan")
    bar = tqdm(
        total=view["counts"]["total"],
        unit="file",
        disable=args.no_progress or None,
        file=sys.stderr,
    )
    while view["scanning"] or view["pending_changes"] or view["counts"]["queued"]:
        time.sleep(0.5)
        view = next(
            v for v in client.request("GET", "/api/v1/folders")["folders"] if v["id"] == view["id"]
        )
        counts = view["counts"]
        bar.total = counts["total"]
        bar.update(counts["indexed"] + counts["failed"] - bar.n)
    bar.close()
    echo(format_folders([view]))
    if view["counts"]["failed"]:
        return EXIT_PARTIAL if view["counts"]["indexed"] else EXIT_FAILED
    return EXIT_OK


def _remote_search(client: ServerClient, args: argparse.Namespace) -> int:
    options: dict[str, Any] = {"limit": args.limit, "offset": args.offset}
    if args.media_types:
        options["media_types"] = args.media_types
    if args.modalities:
        options["modalities"] = args.modalities
    if args.folder:
        options["folder"] = args.folder
    if args.min_score is not None:
        options["min_score"] = args.min_score
    if args.image or args.audio:
        example, endpoint = (args.image, "image") if args.image else (args.audio, "audio")
        form = {k: ",".join(v) if isinstance(v, list) else str(v) for k, v in options.items()}
        with example.open("rb") as fh:
            body = client.request(
                "POST", f"/api/v1/search/{endpoint}", data=form, files={"file": (example.name, fh)}
            )
    elif args.query:
        body = client.request("POST", "/api/v1/search/text", json={"query": args.query, **options})
    else:
        raise InvalidRequest("give a text query, --image FILE or --audio FILE")
    print_results(body["results"], weaker=body.get("weaker", 0), as_json=args.json)
    return EXIT_OK
