"""tuimail/codecache.py: the code @dataclass compiles is kept in a file and found there by the
next start; the classes behave the same; a damaged or missing file means compiling as before.
Each case runs in a fresh interpreter (install() patches the dataclasses module of its process)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from tuimail import codecache
    codecache.install(Path(sys.argv[1]))
    import dataclasses

    @dataclasses.dataclass(frozen=True)
    class Point:
        x: int
        y: int = 2
        tags: tuple = dataclasses.field(default_factory=tuple)

    p = Point(1)
    out = {"new": codecache._new, "cached": len(codecache._codes), "used": len(codecache._used),
           "repr": repr(p), "eq": p == Point(1), "ne": p != Point(1, 3), "hash": hash(p) == hash(Point(1)),
           "frozen": False}
    try:
        p.x = 5
    except dataclasses.FrozenInstanceError:
        out["frozen"] = True
    codecache.save()
    print(json.dumps(out))
""")


def run(cache_dir) -> dict:
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(cache_dir)], capture_output=True, text=True,
                          timeout=60, check=True)
    return json.loads(done.stdout)


def test_the_second_start_compiles_nothing_and_the_class_is_the_same(tmp_path):
    first = run(tmp_path)
    assert first["new"] and first["cached"] == 0 and first["used"] > 0
    files = list(tmp_path.iterdir())
    assert len(files) == 1 and files[0].name.startswith("dataclasses-cpython-")
    second = run(tmp_path)
    assert not second["new"] and second["cached"] == first["used"]
    for k in ("repr", "eq", "ne", "hash", "frozen"):
        assert first[k] == second[k], k
    assert second["repr"] == "Point(x=1, y=2, tags=())" and second["frozen"] and second["eq"]


def test_a_damaged_file_is_compiled_over(tmp_path):
    run(tmp_path)
    (f,) = tmp_path.iterdir()
    f.write_bytes(b"\x00garbage" * 10)
    again = run(tmp_path)
    assert again["new"] and again["repr"] == "Point(x=1, y=2, tags=())"
    assert not run(tmp_path)["new"]  # (written again, whole)


def test_an_unwritable_place_is_no_error(tmp_path):
    (tmp_path / "code").write_text("a file where the directory would be")
    out = run(tmp_path / "code")
    assert out["new"] and out["eq"]


def test_the_tuimail_command_fills_the_cache_in_its_cache_dir(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_DATA_HOME": str(tmp_path / "data")}
    for _ in range(2):
        done = subprocess.run([sys.executable, "-m", "tuimail", "--version"], env=env, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0 and "tuimail" in done.stdout, done.stderr
        (f,) = (tmp_path / "cache" / "tuimail" / "code").iterdir()
        if _ == 0:
            first = f.stat().st_mtime_ns
    assert f.stat().st_mtime_ns == first  # (nothing new to write the second time)
