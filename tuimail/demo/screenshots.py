"""`make screenshots`: regenerate the README's SVGs from the embedded demo.

    python -m tuimail.demo.screenshots OUTDIR

Starts the demo server in a throwaway environment, syncs it, caches the messages it shows, then
drives the real app headless (Textual's pilot) with a fixed clock and size and saves SVGs:
main view, threaded view, an HTML message, the offline state and the light theme, and at 80x24
the reader alone on a German newsletter (word wrapping) and on a forwarded message (inline).
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC
from pathlib import Path

SIZE = (140, 40)


def _prepare(config, account):
    """Sync the demo account and cache a plain and an HTML message for the reader shots."""
    from tuimail.cli.main import main
    from tuimail.store import Store
    from tuimail.backends.registry import create_service
    from tuimail import paths

    main(["--config", str(config.path), "sync"])
    store = Store(paths.account_store_path(account.name))
    service = create_service(config, account)
    picks = {}
    try:
        inbox = store.folder("INBOX")
        assert inbox is not None, "the demo sync made no INBOX"
        for uid in store.id_list(inbox.id)[:60]:
            content = service.open_message("INBOX", uid)
            row = store.row(inbox.id, uid)
            assert row is not None, uid
            if content.links and "html" not in picks and "[" not in row.subject:
                picks["html"] = uid
            elif not content.links and "plain" not in picks and "Re:" in row.subject:
                picks["plain"] = uid
            subject = row.subject or ""
            if subject.startswith("Newsletter März"):
                picks["newsletter"] = uid
            elif subject.startswith("Fwd: Angebot"):
                picks["forward"] = uid
            if len(picks) == 4:
                break
        for uid in store.id_list(inbox.id, "thread")[:40]:
            service.open_message("INBOX", uid)
    finally:
        service.stop()
    return store, picks


async def _shoot(app, out: Path, name: str, before, size: tuple[int, int] = SIZE) -> None:
    async with app.run_test(size=size) as pilot:
        await pilot.pause(0.5)
        await before(pilot, app)
        await pilot.pause(0.8)
        app.save_screenshot(str(out / f"{name}.svg"))
        print(f"wrote {out / name}.svg")


def _list(app):
    from tuimail.ui.widgets.header_list import HeaderList
    return app.main.query_one(HeaderList)


def _index_of(app, uid: int) -> int:
    hl = _list(app)
    return hl.uids.index(uid) if uid in hl.uids else 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    out = Path(argv[0] if argv else "screenshots")
    out.mkdir(parents=True, exist_ok=True)
    from tuimail.config.load import load_config
    from tuimail.backends.registry import create_service
    from tuimail.ui.app import TuimailApp
    from tuimail.demo import DemoEnvironment

    with DemoEnvironment() as env:
        config = load_config(env.config_path)
        account = config.account("demo")
        store, picks = _prepare(config, account)
        # the newest demo message is dated 2024-02-07: a clock a day later keeps relative dates stable
        clock = lambda: 1707390000.0  # noqa: E731

        def app_with(theme: str | None = None, offline: bool = True):
            from dataclasses import replace
            cfg = replace(config, ui=replace(config.ui, theme=theme)) if theme else config
            svc = create_service(cfg, account, offline=True)
            return TuimailApp(cfg, {account.name: store}, {account.name: svc}, offline=offline,
                              clock=clock, tz=UTC)

        async def move_to(pilot, app, uid):
            hl = _list(app)
            for _ in range(50):
                if hl.uids:
                    break
                await pilot.pause(0.1)
            for _ in range(_index_of(app, uid)):
                await pilot.press("j")

        async def main_view(pilot, app):
            await move_to(pilot, app, picks.get("plain", 0))
            await pilot.press("enter")

        async def threaded(pilot, app):
            await move_to(pilot, app, 0)
            await pilot.press("t")
            await pilot.pause(0.3)
            await pilot.press("j", "j", "enter")

        async def html(pilot, app):
            await move_to(pilot, app, picks.get("html", 0))
            await pilot.press("enter")

        def reader_alone(key: str):
            async def before(pilot, app):
                await move_to(pilot, app, picks.get(key, 0))
                await pilot.press("enter")
                await pilot.pause(0.3)
                await pilot.press("z")  # the reader alone on screen
            return before

        async def nothing(pilot, app):
            await move_to(pilot, app, 0)
            await pilot.press("j", "enter")

        async def run_all():
            await _shoot(app_with(), out, "main", main_view)
            await _shoot(app_with(), out, "threaded", threaded)
            await _shoot(app_with(), out, "html-message", html)
            await _shoot(app_with(offline=True), out, "offline", nothing)
            await _shoot(app_with(theme="light"), out, "light-theme", main_view)
            await _shoot(app_with(), out, "reader-newsletter-80x24", reader_alone("newsletter"), (80, 24))
            await _shoot(app_with(), out, "reader-forward-80x24", reader_alone("forward"), (80, 24))

        asyncio.run(run_all())
        store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
