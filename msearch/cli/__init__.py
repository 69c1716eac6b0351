"""The ``msearch`` command line: a local backend working on the data directory and a remote
backend talking to a server (``--server``), which print the same views the same way. The only
place that prints or chooses exit codes."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from msearch.cli.output import EXIT_FAILED, EXIT_USAGE, echo_err
from msearch.cli.parser import build_parser, settings_from_args
from msearch.config import Settings
from msearch.errors import ConfigError, MSearchError


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        settings = settings_from_args(args)
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
    # imported on use: `msearch --help` stays fast
    from msearch.cli import local, remote

    if args.command == "serve":
        return local.serve(settings)
    if args.command == "demo":
        return local.demo(args, settings)
    if getattr(args, "server", None):
        return remote.run(args, settings)
    return asyncio.run(local.run(args, settings))
