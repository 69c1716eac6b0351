"""The command line's grammar: commands, their options, and the settings they select."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from msearch.config import Settings, load_settings


def _common_options(parser: argparse.ArgumentParser, default: Any) -> None:
    """Accepted before the command and after it (``msearch serve --config FILE``)."""
    parser.add_argument(
        "--config",
        type=Path,
        default=default,
        metavar="FILE",
        help="YAML config file (default: $MSEARCH_CONFIG, else config/msearch.yaml)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=default,
        metavar="DIR",
        help="where the index, database and thumbnails live (overrides data_dir)",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", default=default, help="log debug messages"
    )


def build_parser() -> argparse.ArgumentParser:
    from msearch import __version__

    parser = argparse.ArgumentParser(prog="msearch", description="Self-hosted media search.")
    parser.add_argument("--version", action="version", version=f"msearch {__version__}")
    _common_options(parser, None)
    parser.set_defaults(verbose=False)
    common = argparse.ArgumentParser(add_help=False)
    _common_options(common, argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, description: str, parent: Any = sub) -> argparse.ArgumentParser:
        created: argparse.ArgumentParser = parent.add_parser(
            name, help=description, description=description, parents=[common]
        )
        return created

    def listen(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--host", help="address to listen on (overrides api.host; default 127.0.0.1)"
        )
        p.add_argument(
            "--port", type=int, help="port to listen on (overrides api.port; default 8000)"
        )

    def remote(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--server",
            metavar="URL",
            help="talk to a running server at this URL instead of opening the data directory",
        )
        p.add_argument("--api-key", help="API key for --server (else api.api_key)")

    def progress(p: argparse.ArgumentParser) -> None:
        p.add_argument("--no-progress", action="store_true", help="no progress bar")

    def as_json(p: argparse.ArgumentParser) -> None:
        p.add_argument("--json", action="store_true", help="print JSON")

    listen(command("serve", "run the HTTP API and the web page, watching folders"))

    demo = command(
        "demo",
        "offline demo: generate a library, index it with the built-in demo model and serve it",
    )
    demo.add_argument(
        "dir",
        nargs="?",
        type=Path,
        default=Path("msearch-demo"),
        help="where the demo library and its data go (default msearch-demo)",
    )
    demo.add_argument("--count", type=int, default=240, help="images to generate")
    demo.add_argument("--videos", type=int, default=6, help="short videos to generate")
    demo.add_argument("--sounds", type=int, default=24, help="sound files to generate")
    demo.add_argument(
        "--pages", type=int, default=12, help="pages of the demo PDF (0: no document)"
    )
    listen(demo)
    demo.add_argument("--no-serve", action="store_true", help="index, then exit")

    index = command("index", "index files and folders (unchanged files are skipped)")
    index.add_argument(
        "paths",
        nargs="+",
        type=Path,
        metavar="PATH",
        help="a media file or a folder (searched recursively)",
    )
    progress(index)
    as_json(index)
    remote(index)

    retry = command("retry", "process failed files again (after fixing the cause)")
    which = retry.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "file_ids",
        nargs="*",
        default=[],
        metavar="FILE_ID",
        help="files to retry (ids from 'status --json' or the API)",
    )
    which.add_argument("--all", action="store_true", help="every failed file")
    progress(retry)
    as_json(retry)
    remote(retry)

    search = command("search", "search by text or by example image")
    search.add_argument("query", nargs="?", help="what to look for, in words")
    example = search.add_mutually_exclusive_group()
    example.add_argument("--image", type=Path, help="search by this example image")
    example.add_argument("--audio", type=Path, help="search by this sound clip")
    search.add_argument("--limit", type=int, default=10, help="results to show (default 10)")
    search.add_argument("--offset", type=int, default=0, help="results to skip (paging)")
    search.add_argument(
        "--type",
        dest="media_types",
        action="append",
        choices=["image", "video", "audio", "document"],
        help="only this media type (repeat for several)",
    )
    search.add_argument(
        "--heard",
        dest="modalities",
        action="append_const",
        const="audio",
        help="only what is heard (the sound engine)",
    )
    search.add_argument(
        "--seen",
        dest="modalities",
        action="append_const",
        const="visual",
        help="only what is seen (the visual engine)",
    )
    search.add_argument(
        "--said",
        dest="modalities",
        action="append_const",
        const="speech",
        help="only what is said (transcripts)",
    )
    search.add_argument(
        "--read",
        dest="modalities",
        action="append_const",
        const="text",
        help="only what is written (the text of documents' pages)",
    )
    search.add_argument(
        "--pages",
        dest="modalities",
        action="append_const",
        const="document",
        help="only the page model's matches (documents.model: ColQwen2)",
    )
    search.add_argument("--folder", help="only files under this folder")
    search.add_argument("--min-score", type=float, help="only results at least this similar")
    as_json(search)
    remote(search)

    transcript = command("transcript", "what is said in a file, with the times")
    transcript.add_argument("file_id", help="the file's id (search --json shows it)")
    transcript.add_argument("--vtt", action="store_true", help="as WebVTT subtitles")
    as_json(transcript)
    remote(transcript)

    status = command("status", "model, counts, skipped and failed files")
    as_json(status)
    remote(status)

    folders = command("folders", "watched folders: kept indexed while the server runs")
    folder_sub = folders.add_subparsers(dest="folders_command", required=True, metavar="ACTION")
    add = command("add", "watch a folder and index it now", folder_sub)
    add.add_argument("path", type=Path, help="the folder to watch")
    add.add_argument("--no-recursive", action="store_true", help="only its own files")
    progress(add)
    remote(add)
    listing = command("list", "watched folders with their counts", folder_sub)
    as_json(listing)
    remote(listing)
    remove = command("remove", "stop watching; its files leave the index", folder_sub)
    remove.add_argument("folder_id", type=int, help="the folder's id (see 'folders list')")
    remove.add_argument("--keep-files", action="store_true", help="keep its files indexed")
    remote(remove)
    rescan = command("rescan", "compare a folder with the disk now", folder_sub)
    rescan.add_argument("folder_id", type=int, help="the folder's id (see 'folders list')")
    progress(rescan)
    remote(rescan)

    reset = command("reset", "clear the index and/or database (originals are never touched)")
    reset.add_argument(
        "--type",
        dest="reset_type",
        default="index",
        choices=["all", "database", "index"],
        help="index: vectors only, files re-indexed; database: the file "
        "records; all: both, and thumbnails (default index)",
    )
    reset.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    remote(reset)
    return parser


def settings_from_args(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    if args.data_dir:
        overrides["data_dir"] = args.data_dir
    if args.command in ("serve", "demo"):
        api = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
        if api:
            overrides["api"] = api
    return load_settings(args.config, **overrides)
