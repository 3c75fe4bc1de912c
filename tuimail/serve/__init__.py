"""`tuimail serve`: the same app in a browser (textual-serve), behind a login.

    run_serve(options) -> exit status        (tuimail/serve/run.py; the CLI's `serve` subcommand)

An entry point like cli/ and demo/: it imports tuimail.config and textual_serve (aiohttp), never
tuimail.ui — each browser session runs `python -m tuimail` as a subprocess, so the server itself
holds no store, no account and no Textual. auth.py is the login without the web (hashes, sessions,
the throttle), web.py the routes, assets/ the page's icon, style and script.
"""
