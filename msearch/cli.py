"""The ``msearch`` command line. The only place that prints or chooses exit codes."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from msearch.config import Settings, load_settings
from msearch.errors import ConfigError, MSearchError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_PARTIAL = 0, 1, 2, 3


def echo(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def echo_err(text: str) -> None:
    sys.stderr.write(text + "\n")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="msearch", description="Self-hosted media search.")
    parser.add_argument("--config", type=Path, help="YAML config file")
    parser.add_argument("--data-dir", type=Path, help="override data_dir")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the HTTP API")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)

    demo = sub.add_parser("demo", help="offline demo: generate a library, index it with the "
                                       "built-in demo model and serve it")
    demo.add_argument("dir", nargs="?", type=Path, default=Path("msearch-demo"))
    demo.add_argument("--count", type=int, default=240, help="images to generate")
    demo.add_argument("--videos", type=int, default=6, help="short videos to generate")
    demo.add_argument("--host")
    demo.add_argument("--port", type=int)
    demo.add_argument("--no-serve", action="store_true", help="index, then exit")

    def remote(p: argparse.ArgumentParser) -> None:
        p.add_argument("--server", help="talk to a running server at this URL")
        p.add_argument("--api-key", help="API key for --server (else api.api_key)")

    index = sub.add_parser("index", help="index files and folders")
    index.add_argument("paths", nargs="+", type=Path)
    index.add_argument("--no-progress", action="store_true")
    remote(index)

    search = sub.add_parser("search", help="search by text or by example image")
    search.add_argument("query", nargs="?")
    search.add_argument("--image", type=Path, help="search by this example image")
    search.add_argument("--limit", type=int, default=10)
    search.add_argument("--offset", type=int, default=0)
    search.add_argument("--type", dest="media_types", action="append",
                        choices=["image", "video"])
    search.add_argument("--folder")
    search.add_argument("--min-score", type=float)
    search.add_argument("--json", action="store_true", help="print JSON")
    remote(search)

    status = sub.add_parser("status", help="model, counts and failures")
    status.add_argument("--json", action="store_true")
    remote(status)

    folders = sub.add_parser("folders", help="watched folders: kept indexed while the "
                                             "server runs")
    folder_sub = folders.add_subparsers(dest="folders_command", required=True)
    add = folder_sub.add_parser("add", help="watch a folder and index it now")
    add.add_argument("path", type=Path)
    add.add_argument("--no-recursive", action="store_true", help="only its own files")
    add.add_argument("--no-progress", action="store_true")
    remote(add)
    listing = folder_sub.add_parser("list", help="watched folders with their counts")
    listing.add_argument("--json", action="store_true")
    remote(listing)
    remove = folder_sub.add_parser("remove", help="stop watching; its files leave the index")
    remove.add_argument("folder_id", type=int)
    remove.add_argument("--keep-files", action="store_true", help="keep its files indexed")
    remote(remove)
    rescan = folder_sub.add_parser("rescan", help="compare a folder with the disk now")
    rescan.add_argument("folder_id", type=int)
    rescan.add_argument("--no-progress", action="store_true")
    remote(rescan)

    reset = sub.add_parser("reset", help="clear the index and/or database")
    reset.add_argument("--type", dest="reset_type", default="index",
                       choices=["all", "database", "index"])
    reset.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    remote(reset)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    if args.data_dir:
        overrides["data_dir"] = args.data_dir
    if args.command in ("serve", "demo"):
        api = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
        if api:
            overrides["api"] = api
    return load_settings(args.config, **overrides)


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    try:
        settings = _settings(args)
        code = _dispatch(args, settings)
    except ConfigError as exc:
        echo_err(f"error: {exc.message}")
        code = EXIT_USAGE
    except MSearchError as exc:
        echo_err(f"error: {exc.message}")
        code = EXIT_FAILED
    except (ValueError, FileNotFoundError) as exc:
        echo_err(f"error: {exc}")
        code = EXIT_USAGE
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    from msearch import cli_commands as commands

    if args.command == "serve":
        return commands.serve(settings)
    if args.command == "demo":
        return commands.demo(args, settings)
    if getattr(args, "server", None):
        return commands.remote(args, settings)
    return asyncio.run(commands.local(args, settings))


def format_results(results: list[dict[str, Any]]) -> str:
    if not results:
        return "no results"
    lines = [f"{'#':>3}  {'score':>6}  {'type':<5}  path"]
    for rank, hit in enumerate(results, start=1):
        scene = hit.get("scene")
        where = f"  @ {scene['start']:.1f}-{scene['end']:.1f}s" if scene else ""
        lines.append(f"{rank:>3}  {hit['score']:>6.3f}  {hit['media_type'] or '?':<5}  "
                     f"{hit['path']}{where}")
    return "\n".join(lines)


def format_folders(folders: list[dict[str, Any]]) -> str:
    if not folders:
        return "no watched folders (add one with 'msearch folders add DIR')"
    lines = [f"{'id':>3}  {'indexed':>7}  {'queued':>6}  {'failed':>6}  {'watching':<8}  path"]
    for folder in folders:
        counts = folder["counts"]
        notes = [] if folder["recursive"] else ["not recursive"]
        if not folder.get("present", True):
            notes.append("NOT THERE")
        lines.append(f"{folder['id']:>3}  {counts['indexed']:>7}  {counts['queued']:>6}  "
                     f"{counts['failed']:>6}  {folder.get('watching') or '-':<8}  "
                     f"{folder['path']}" + (f"  ({', '.join(notes)})" if notes else ""))
    return "\n".join(lines)

