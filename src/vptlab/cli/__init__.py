"""``vptlab`` command line: parses arguments and calls library functions, nothing more.

Each command group lives in its own module with a ``register(subparsers)`` function; a user mistake anywhere
(:class:`vptlab.errors.UserError`) ends with one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import sys

from vptlab.errors import UserError

# The file system refusing a path the user gave (an --out that is a file, a read-only or full disk): their fix.
_PATH_ERRNOS = {errno.EEXIST, errno.ENOTDIR, errno.EISDIR, errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EROFS,
                errno.EDQUOT, errno.ENAMETOOLONG}  # fmt: skip
_PATH_HINT = {
    errno.EEXIST: " (a file is where a folder is needed)",
    errno.ENOTDIR: " (a file is in the path)",
}
# One module per command group; each defines register(subparsers) and sets `func` on its parsers.
COMMAND_MODULES = ("train", "methods", "backbones", "data", "analysis", "pretrain", "study", "demo", "deploy")


class _DefaultsFormatter(argparse.HelpFormatter):
    """``--help`` shows every option's default, unless its help already says it or there is none to show."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (
            "default" in text
            or action.default in (None, False, argparse.SUPPRESS)
            or not action.option_strings
        ):
            return text
        return f"{text} (default: %(default)s)"


class _Parser(argparse.ArgumentParser):
    """argparse, but argument errors are one line and exit 2 (argparse's usage dump is noise in logs)."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", _DefaultsFormatter)
        super().__init__(*args, **kwargs)

    def add_argument(self, *args, **kwargs) -> argparse.Action:
        # argparse shows nothing for an option without help; one with a default still says what it is
        if kwargs.get("help") is None and kwargs.get("default") not in (None, False, argparse.SUPPRESS):
            kwargs["help"] = "(default: %(default)s)"
        return super().add_argument(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message}\n")  # "vptlab: error", "vptlab study run: error"
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="vptlab", description="Visual prompt tuning or full fine-tuning? Run the study.")
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_MODULES:
        importlib.import_module(f"vptlab.cli.{name}").register(sub)
    return parser


def _version() -> str:
    from vptlab import __version__

    return f"vptlab {__version__}"


def main(argv: list[str] | None = None) -> int:
    from vptlab.data.notices import reset

    reset()  # each command names the files it leaves out, even when an earlier one in this process did
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UserError as err:
        sys.stderr.write(f"vptlab: error: {err}\n")
        return 2
    except OSError as err:
        if err.filename is None or err.errno not in _PATH_ERRNOS:
            raise
        sys.stderr.write(f"vptlab: error: {err.filename}: {err.strerror}{_PATH_HINT.get(err.errno, '')}\n")
        return 2
    except KeyboardInterrupt as err:
        from vptlab.train.interrupt import exit_message

        message, status = exit_message(err)
        sys.stderr.write(message)
        return status


if __name__ == "__main__":
    sys.exit(main())
