"""Progress bars of long management commands: tqdm on the command's stderr, for people only."""

from __future__ import annotations

from argparse import ArgumentParser

from django.core.management.base import BaseCommand, OutputWrapper
from tqdm import tqdm  # type: ignore[import-untyped]


def _plain(text: str) -> str:
    return text


class _BarStream:
    """The command's stderr as tqdm's file: tqdm's own line endings, no error colouring."""

    def __init__(self, wrapper: OutputWrapper) -> None:
        self._wrapper = wrapper

    def write(self, text: str) -> None:
        self._wrapper.write(text, style_func=_plain, ending="")

    def flush(self) -> None:
        self._wrapper.flush()

    def isatty(self) -> bool:
        return self._wrapper.isatty()

    @property
    def encoding(self) -> str | None:
        # tqdm draws its Unicode bar only on a stream that says it is UTF-8.
        return getattr(self._wrapper, "encoding", None)


def progress_argument_add(parser: ArgumentParser) -> None:
    """The `--no-progress` switch every command with a progress bar offers."""
    parser.add_argument(
        "--no-progress",
        action="store_true",
        help="Show no progress bar (there is none anyway when stderr is not a terminal).",
    )


def progress_bar(
    command: BaseCommand, *, total: int, description: str, unit: str, hidden: bool = False
) -> tqdm:
    """A bar on the command's stderr, shown only when stderr is a terminal and not `hidden`.

    Standard output stays free for the command's results and for `--json`, and logs or
    pipes never fill with redraws.
    """
    stream = _BarStream(command.stderr)
    return tqdm(
        total=total,
        desc=description,
        unit=unit,
        file=stream,
        disable=hidden or not stream.isatty(),
        dynamic_ncols=True,
    )
