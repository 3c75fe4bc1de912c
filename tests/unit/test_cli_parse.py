"""The bare reader's command line is parsed without building every command's parser (cli/main.py
parse_args): the same result as the whole parser, and the whole parser's errors."""

from __future__ import annotations

import contextlib
import io

import pytest

from tuimail.cli.main import _bare, build_parser, parse_args


def _run(parse, argv):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            return vars(parse(argv)), None, err.getvalue()
        except SystemExit as exc:
            return None, exc.code, err.getvalue()


@pytest.mark.parametrize("argv", [
    [], ["--config", "x.toml"], ["--config=x.toml"], ["--account", "work", "--offline"], ["-f", "INBOX"],
    ["-fINBOX"], ["--demo"], ["--offline", "--config", "c", "-f", "Sent"], ["--account=a"],
    ["--config"], ["--bogus"], ["--offline", "--offline=1"], ["-f"], ["--acc", "x"],
    ["list", "INBOX"], ["--config", "c", "sync"], ["--", "list"], ["-h"], ["--version"], ["bogus"],
])
def test_the_same_as_the_whole_parser(argv):
    assert _run(parse_args, argv) == _run(build_parser().parse_args, argv)


def test_only_options_are_bare():
    assert _bare([]) and _bare(["--config", "list"]) and _bare(["-f", "sync", "--offline"])
    assert not _bare(["list"]) and not _bare(["--offline", "sync"]) and not _bare(["--help"])
    assert not _bare(["--", "x"])
