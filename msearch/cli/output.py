"""What the command line prints and the exit codes it chooses: shared by the local and
the remote backend, so both say the same thing the same way."""

from __future__ import annotations

import argparse
import html
import json
import sys
from typing import Any

from msearch.app.jobs import JobView
from msearch.app.status import StatusView
from msearch.app.transcripts import TranscriptView

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_PARTIAL = 0, 1, 2, 3


def echo(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def echo_err(text: str) -> None:
    sys.stderr.write(text + "\n")


def format_results(results: list[dict[str, Any]], *, weaker: int = 0) -> str:
    """The results as a table; ``weaker``: how many the model's relevance floor left out."""
    hidden = (
        f"{weaker} weaker result{'s' if weaker != 1 else ''} left out (--min-score -1 shows them)"
        if weaker
        else ""
    )
    if not results:
        return f"no close matches: {hidden}" if weaker else "no results"
    lines = [f"{'#':>3}  {'score':>6}  {'type':<5}  path"]
    for rank, hit in enumerate(results, start=1):
        scene, heard = hit.get("scene"), hit.get("audio")
        where = f"  @ {scene['start']:.1f}-{scene['end']:.1f}s" if scene else ""
        if heard:
            where = f"  heard @ {heard['start']:.1f}-{heard['end']:.1f}s"
        said, page = hit.get("speech"), hit.get("page")
        if said:
            where = f"  said @ {said['start']:.1f}s"
        if page:
            where = f"  page {page['number']}"
        kind = {"document": "doc"}.get(hit["media_type"], hit["media_type"] or "?")
        lines.append(f"{rank:>3}  {hit['score']:>6.3f}  {kind:<5}  {hit['path']}{where}")
        words = (said or page or {}).get("text")
        if words:
            lines.append(f"{'':>23}\u201c{marked_for_terminal(words)}\u201d")
    if hidden:
        lines.append(hidden)
    return "\n".join(lines)


def print_results(results: list[dict[str, Any]], *, weaker: int, as_json: bool) -> None:
    """A search's results, the same locally and through a server (``--json``: the results
    and how many weaker ones were left out)."""
    if as_json:
        echo(json.dumps({"results": results, "weaker": weaker}, indent=2))
    else:
        echo(format_results(results, weaker=weaker))


def marked_for_terminal(marked: str) -> str:
    """A matched line as the API marks it (HTML-escaped, <mark> tags) for a terminal:
    the matches between [ and ]."""
    return html.unescape(marked.replace("<mark>", "[").replace("</mark>", "]"))


def print_transcript(view: TranscriptView, *, as_json: bool, vtt: bool) -> int:
    """A file's transcript, the same locally and through a server."""
    if vtt:
        sys.stdout.write(view.to_vtt())
    elif as_json:
        echo(json.dumps(view.to_json(), indent=2))
    elif view.error:
        echo(f"no transcript: [{view.error['code']}] {view.error['message']}")
    elif not view.segments:
        echo("nothing is said in this file")
    else:
        echo("\n".join(f"{_clock(p.start)}  {p.text}" for p in view.segments))
    return EXIT_OK


def _clock(seconds: float) -> str:
    minutes, rest = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02}:{rest:02}" if hours else f"{minutes:02}:{rest:02}"


def format_folders(folders: list[dict[str, Any]]) -> str:
    if not folders:
        return "no watched folders (add one with 'msearch folders add DIR')"
    lines = [
        f"{'id':>3}  {'indexed':>7}  {'queued':>6}  {'failed':>6}  {'skipped':>7}  "
        f"{'watching':<8}  path"
    ]
    for folder in folders:
        counts = folder["counts"]
        notes = [] if folder["recursive"] else ["not recursive"]
        if not folder.get("present", True):
            notes.append("NOT THERE")
        lines.append(
            f"{folder['id']:>3}  {counts['indexed']:>7}  {counts['queued']:>6}  "
            f"{counts['failed']:>6}  {counts.get('skipped', 0):>7}  "
            f"{folder.get('watching') or '-':<8}  "
            f"{folder['path']}" + (f"  ({', '.join(notes)})" if notes else "")
        )
    return "\n".join(lines)


def format_reasons(reasons: dict[str, int]) -> str:
    ordered = sorted(reasons.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{reason} ×{count}" for reason, count in ordered)


def print_job(view: JobView, took: float, as_json: bool) -> int:
    """What an index or retry job came to, and its exit code: the same for a local run
    and one through a server."""
    if as_json:
        echo(json.dumps(view.to_json(), indent=2))
    else:
        echo(
            f"{view.total} files in {took:.1f}s: {view.indexed - view.unchanged} indexed, "
            f"{view.unchanged} unchanged, {view.failed} failed, {view.skipped} skipped"
        )
        if view.skipped_reasons:
            reasons = format_reasons(view.skipped_reasons)
            echo(f"  skipped (not media msearch indexes): {reasons}")
        for failed in view.failures:
            echo(f"  failed  {failed.path}: [{failed.code}] {failed.message}")
        if view.failed > len(view.failures):
            echo(f"  ... {view.failed - len(view.failures)} more failed: see 'msearch status'")
    if view.nothing_indexable:
        echo_err(
            "none of these files is media msearch indexes (file_monitoring."
            "file_extensions lists the types)"
        )
        return EXIT_FAILED
    if view.failed:
        return EXIT_PARTIAL if view.indexed else EXIT_FAILED
    return EXIT_OK


def print_status(view: StatusView, as_json: bool) -> None:
    """One rendering of the status, whether it came from the stores or a server."""
    if as_json:
        echo(json.dumps(view.to_json(), indent=2))
        return
    echo(f"data dir: {view.data_dir}")
    model = view.index_model
    echo(f"model:    {model['id']} ({model['dim']}-d)" if model else "model:    (no index yet)")
    for engine in view.engines:
        if engine.kind != "visual":
            echo(f"  {engine.kind}: {engine.model} ({engine.dim}-d), {engine.vectors} vectors")
    echo("files:    " + (", ".join(f"{n} {s}" for s, n in sorted(view.files.items())) or "none"))
    echo(f"vectors:  {view.vectors}")
    if view.skipped:
        echo(f"skipped:  {format_reasons(view.skipped)} (not media msearch indexes)")
    if view.folders:
        echo("watched folders:")
        echo(format_folders(view.folders))
    for failed in view.failed:
        echo(f"  failed  {failed.path}: [{failed.code}] {failed.message}")


def confirmed(args: argparse.Namespace) -> bool:
    if args.yes:
        return True
    if not sys.stdin.isatty():
        echo_err("refusing to reset without --yes (no terminal to ask)")
        return False
    answer = input(f"reset '{args.reset_type}'? originals are not touched [y/N] ")
    return answer.strip().lower() in ("y", "yes")


def print_reset(reset_type: str, removed: dict[str, int], *, served: bool) -> None:
    echo(f"reset {reset_type}: " + ", ".join(f"{k}={v}" for k, v in removed.items()))
    if reset_type == "index":
        echo(
            "files are queued and the server re-indexes them now"
            if served
            else "files are queued and are re-indexed when 'msearch serve' or 'msearch index' "
            "runs next"
        )
