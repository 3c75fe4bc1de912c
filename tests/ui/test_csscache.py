"""ui/csscache.py: a start that finds its CSS parsed by the start before draws the same screen
without parsing it again; a damaged cache file changes nothing but the speed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = r'''
import asyncio, json, sys
from pathlib import Path
from tuimail.ui import csscache
csscache.install(Path(sys.argv[1]))
import textual.css.stylesheet as S
from textual.app import App
from textual.widgets import Button, Static
parses = 0
real = S.parse
def counting(*a, **k):
    global parses
    parses += 1
    return real(*a, **k)
S.parse = counting

class Demo(App):
    CSS = "Screen { background: $primary 20%; } Static { color: $accent; border: round $secondary; }"
    def compose(self):
        yield Static("hello")
        yield Button("ok")

async def main():
    app = Demo()
    async with app.run_test(size=(40, 10)) as pilot:
        await pilot.pause()
        return app.export_screenshot(), str(app.query_one(Static).styles.color)

svg, color = asyncio.run(main())
csscache.save()
print(json.dumps({"parses": parses, "svg": svg, "color": color}))
'''


def _start(cache: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(cache)], capture_output=True, text=True, timeout=120,
                         cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "TERM": "xterm-256color"})
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_second_start_uses_the_parsed_css_and_draws_the_same(tmp_path):
    first = _start(tmp_path)
    assert first["parses"] > 0
    files = list(tmp_path.glob("css-textual-*.pickle"))
    assert len(files) == 1
    second = _start(tmp_path)
    assert second["parses"] == 0  # every parse came from the file
    assert second["svg"] == first["svg"] and second["color"] == first["color"]


def test_a_damaged_cache_is_parsed_again_and_rewritten(tmp_path):
    first = _start(tmp_path)
    (path,) = tmp_path.glob("css-textual-*.pickle")
    path.write_bytes(b"\x80\x05garbage")
    again = _start(tmp_path)
    assert again["parses"] == first["parses"] and again["svg"] == first["svg"]
    assert _start(tmp_path)["parses"] == 0  # (written again by the start that parsed)


def test_a_cache_made_by_another_textual_is_not_read(tmp_path):
    import pickle

    first = _start(tmp_path)
    (path,) = tmp_path.glob("css-textual-*.pickle")
    data = pickle.loads(path.read_bytes())
    data["textual"] = ("/elsewhere/textual", ((1, 2),))
    path.write_bytes(pickle.dumps(data))
    assert _start(tmp_path)["parses"] == first["parses"]
