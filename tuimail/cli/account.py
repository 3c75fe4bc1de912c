"""Adding an account: `tuimail setup`, and the first run without a config (the setup screen)."""

from __future__ import annotations

from tuimail import paths


def _first_run(config: str | None):
    """The config path when no config file exists there (bare `tuimail` opens the setup screen)."""
    from pathlib import Path
    path = Path(config).expanduser() if config else paths.default_config_path()
    return None if path.exists() or path.is_symlink() else path


def cmd_setup(args) -> int:
    from pathlib import Path

    from tuimail.config.setup_flow import Options, run_setup
    opts = Options(email=args.email, name=args.name, username=args.username, kind=args.kind, host=args.host,
                   port=args.port, security=args.security, smtp_host=args.smtp_host, smtp_port=args.smtp_port,
                   smtp_security=args.smtp_security, password_command=args.password_command, yes=args.yes,
                   config=Path(args.config) if args.config else None)
    run_setup(opts)
    return 0
