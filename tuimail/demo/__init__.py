"""`tuimail --demo`: an embedded IMAP server with generated mail, a throwaway config and store.

Nothing of the user's is read or written: XDG_* point at a temporary directory for the run.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tuimail.demo.server import DemoServer


def demo_config_text(host: str, port: int, user: str, password: str, smtp_port: int = 0) -> str:
    """The demo's config; with smtp_port, an smtp table for the demo's SMTP server (it delivers
    whatever it is given into the demo INBOX; no AUTH, loopback)."""
    smtp = (f'\n[accounts.demo.smtp]\nhost = "{host}"\nport = {smtp_port}\nsecurity = "none"\nusername = ""\n'
            if smtp_port else "")
    return (f'[accounts.demo]\nkind = "imap"\nhost = "{host}"\nport = {port}\nsecurity = "none"\n'
            f'username = "{user}"\npassword = "{password}"\nfrom = "Demo User <demo@example.org>"\n'
            f'idle = true\n{smtp}\n[ui]\ntheme = "dark"\n')


class DemoEnvironment:
    """Start the server, point XDG dirs at a temp dir, write the config. Context manager."""

    def __init__(self, keep: bool = False):
        self.keep = keep
        self.tmp: Path | None = None
        self.server: DemoServer | None = None
        self._saved_env: dict[str, str | None] = {}

    def __enter__(self) -> DemoEnvironment:
        try:
            from tuimail.demo.server import DemoServer
        except ImportError as exc:  # pymap is an optional extra
            from tuimail.errors import UsageError
            raise UsageError(f"the demo needs pymap: pip install 'tuimail[demo]' ({exc})") from None
        self.tmp = Path(tempfile.mkdtemp(prefix="tuimail-demo-"))
        for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
            self._saved_env[var] = os.environ.get(var)
            os.environ[var] = str(self.tmp / var.split("_")[1].lower())
        self.server = DemoServer()
        self.server.start()
        from tuimail import paths
        cfg = paths.default_config_path()
        paths.ensure_private_dir(cfg.parent)
        cfg.write_text(demo_config_text(self.server.host, self.server.port, self.server.username,
                                        self.server.password, self.server.smtp_port))
        self.config_path = cfg
        return self

    def __exit__(self, *exc) -> None:
        if self.server is not None:
            self.server.stop()
        for var, val in self._saved_env.items():
            if val is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = val
        if self.tmp is not None and not self.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)


def run_demo(args) -> int:
    from tuimail.config.load import load_config
    with DemoEnvironment() as env:
        config = load_config(env.config_path)
        if getattr(args, "cmd", None):
            from tuimail.cli.main import COMMANDS
            args.account = "demo"
            if args.cmd != "sync":
                # every demo run starts with an empty store: fill it first, quietly, so that
                # `tuimail --demo list INBOX` shows the demo's mail (issue 11.7)
                import argparse
                import contextlib
                import io
                with contextlib.redirect_stdout(io.StringIO()):
                    COMMANDS["sync"](config, argparse.Namespace(account="demo", folder=None, offline=False))
            return COMMANDS[args.cmd](config, args)
        run_app: Callable[..., int] | None
        try:
            from tuimail.ui.launch import run_app
        except ImportError:
            run_app = None
        if run_app is None or not sys.stdout.isatty():
            # headless fallback: sync, then show the newest messages
            from tuimail.cli.main import main
            main(["--config", str(env.config_path), "sync"])
            return main(["--config", str(env.config_path), "list", "INBOX", "--limit", "30"])
        return run_app(config, ["demo"], offline=args.offline, start_folder=getattr(args, "start_folder", None))
