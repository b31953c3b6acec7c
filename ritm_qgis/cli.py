"""``ritm-qgis`` (also ``python -m ritm_qgis``): the command line.

Each subcommand lives in its own module of ``ritm_qgis.commands`` and provides ``HELP``,
``add_arguments(parser)`` and ``run(args) -> int``; the list below is the whole registry.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys

# OpenCV's own warnings (e.g. on a truncated TIFF) would print beside the CLI's one-sentence errors
os.environ.setdefault("OPENCV_LOG_LEVEL", "FATAL")

from ritm_qgis import __version__
from ritm_qgis.core.cancel import Cancelled
from ritm_qgis.core.errors import RitmError, file_error_message

# subcommand name -> module in ritm_qgis.commands
COMMANDS = {
    "noc-report": "noc_report",
    "evaluate": "evaluate",
    "demo": "demo",
    "make-scene": "make_scene",
    "predict": "predict",
    "segment": "segment",
    "model-info": "model_info",
    "download-weights": "download_weights",
    "prepare-inria": "prepare_inria",
    "train": "train",
    "adapt": "adapt",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ritm-qgis",
        description="Interactive building segmentation (RITM) for aerial imagery, and the "
        "evaluation protocol of Marchesoni-Acland et al. (IPOL 2024).",
    )
    parser.add_argument("--version", action="version", version=f"ritm-qgis {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(f"ritm_qgis.commands.{module_name}")
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def _value_flags(parser: argparse.ArgumentParser) -> set:
    """The option strings, in every subcommand, that take one value."""
    flags = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                flags |= _value_flags(sub)
        elif action.option_strings and action.nargs is None and action.const is None:
            flags.update(action.option_strings)
    return flags


def join_negative_values(parser: argparse.ArgumentParser, argv: list) -> list:
    """``--click -5,100,+`` as ``--click=-5,100,+``: argparse takes a value that starts with '-' and is
    not a plain number for an option, so a negative coordinate would be refused as a missing value."""
    flags = _value_flags(parser)
    out = []
    i = 0
    while i < len(argv):
        token = argv[i]
        if token in flags and i + 1 < len(argv) and re.match(r"^-(\d|\.\d|nan|inf)", str(argv[i + 1]), re.I):
            out.append(f"{token}={argv[i + 1]}")
            i += 2
        else:
            out.append(token)
            i += 1
    return out


def main(argv=None) -> int:
    """The command line (``argv`` None: this process's arguments, and the process ends after it)."""
    if argv is None:
        try:
            return _run(sys.argv[1:])
        finally:
            _skip_final_collection()
    return _run(argv)


def _skip_final_collection() -> None:
    """The process ends now: freeze the objects it made so that Python's shutdown does not walk
    torch's and OpenVINO's object graphs (about 1 s of every command's wall time under load, 0.3 s
    frozen; docs/benchmarks.md). Exit handlers still run; no output is left to write."""
    import gc

    gc.freeze()


def _run(argv) -> int:
    parser = build_parser()
    args = parser.parse_args(join_negative_values(parser, list(argv)))
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except RitmError as exc:
        print(f"ritm-qgis {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, Cancelled):
        print(f"ritm-qgis {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a file that cannot be read or written is a sentence; a bug stays a traceback
        message = file_error_message(exc)
        if message is None:
            raise
        print(f"ritm-qgis {args.command}: error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
