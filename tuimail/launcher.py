"""The `tuimail` command (pyproject's console script, and `python -m tuimail`): the compiled-code
cache (codecache.py) first, so that the modules the CLI and the app import make their
dataclasses from it, then the CLI; the cache is written when the command ends."""

from __future__ import annotations


def main() -> int:
    from tuimail import codecache, paths

    codecache.install(paths.cache_dir() / "code")
    try:
        from tuimail.cli.main import main as cli_main

        return cli_main()
    finally:
        codecache.save()
