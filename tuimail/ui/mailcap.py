"""A small mailcap (RFC 1524) reader; commands run as argument lists, never through a shell.

The stdlib `mailcap` module is deprecated (gone in 3.13) and hands entries to a shell. Here an
entry's command is split with `shlex.split`; `%s` is replaced by the path of a private temp copy,
`%t` by the content type, `%{name}` by nothing; a command that needs a shell (pipes, redirections,
`;`, `&&`, command substitution) is refused. `test=` commands run the same way (environment
variables in their arguments are expanded, as a shell would) with a short timeout.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_FILES = ("~/.mailcap", "/etc/mailcap")
_SHELL_META = re.compile(r"[|&;<>`]|\$\(")
TEST_TIMEOUT = 3


@dataclass(frozen=True)
class Entry:
    mimetype: str  # lower case, "type/subtype" or "type/*"
    command: str
    flags: frozenset[str] = frozenset()
    params: dict[str, str] = field(default_factory=dict)

    @property
    def needsterminal(self) -> bool:
        return "needsterminal" in self.flags

    @property
    def copiousoutput(self) -> bool:
        return "copiousoutput" in self.flags

    def matches(self, mimetype: str) -> bool:
        mimetype = mimetype.lower()
        if self.mimetype == mimetype:
            return True
        major, _, minor = self.mimetype.partition("/")
        return minor in ("*", "") and mimetype.split("/", 1)[0] == major


def _fields(line: str) -> list[str]:
    out, buf, i = [], [], 0
    while i < len(line):
        c = line[i]
        if c == "\\" and i + 1 < len(line):
            nxt = line[i + 1]
            buf.append(nxt if nxt == ";" else c + nxt)
            i += 2
            continue
        if c == ";":
            out.append("".join(buf).strip())
            buf = []
        else:
            buf.append(c)
        i += 1
    out.append("".join(buf).strip())
    return out


def parse(text: str) -> list[Entry]:
    entries: list[Entry] = []
    logical: list[str] = []
    lines = text.splitlines()
    acc = ""
    for raw in lines:
        if raw.endswith("\\") and not raw.endswith("\\\\"):
            acc += raw[:-1]
            continue
        logical.append(acc + raw)
        acc = ""
    if acc:
        logical.append(acc)
    for line in logical:
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        parts = _fields(s)
        if len(parts) < 2 or "/" not in parts[0] and parts[0] != "*":
            continue
        mt = parts[0].lower()
        if "/" not in mt:
            mt += "/*"
        flags, params = set(), {}
        for p in parts[2:]:
            if "=" in p:
                k, v = p.split("=", 1)
                params[k.strip().lower()] = v.strip()
            elif p:
                flags.add(p.lower())
        entries.append(Entry(mt, parts[1], frozenset(flags), params))
    return entries


def load(paths: list[str | Path] | None = None) -> list[Entry]:
    """Entries from the files in order (the user's first); unreadable files are skipped."""
    out: list[Entry] = []
    for p in paths if paths is not None else list(DEFAULT_FILES):
        try:
            text = Path(os.path.expanduser(str(p))).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        out += parse(text)
    return out


def needs_shell(command: str) -> bool:
    return bool(_SHELL_META.search(command))


def argv_for(command: str, path: str | None, mimetype: str) -> list[str]:
    """The argument list for an entry's command; ValueError if it needs a shell."""
    if needs_shell(command):
        raise ValueError("this mailcap command needs a shell; tuimail runs commands without one")
    try:
        args = shlex.split(command)
    except ValueError as e:
        raise ValueError(f"cannot split the mailcap command: {e}") from None
    if not args:
        raise ValueError("empty mailcap command")

    def expand(m: re.Match) -> str:
        code = m.group(1)
        if code == "%":
            return "%"
        if code == "t":
            return mimetype
        if code == "s":
            return path if path is not None else "%s"
        return ""  # %{parameter}: not supported, dropped

    # One pass over the template: what %s and %t put in is never read for % codes again (a file
    # named '%%' stays '%%', a type with '%s' in it stays as it is).
    return [_CODE.sub(expand, a) for a in args]


_CODE = re.compile(r"%(\{[^}]*\}|[st%])")


_VAR = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


def _expand(arg: str) -> str:
    """$VAR / ${VAR} as a shell would expand them (unset = empty), nothing else."""
    return _VAR.sub(lambda m: os.environ.get(m.group(1) or m.group(2), ""), arg)


def _test_passes(entry: Entry, mimetype: str) -> bool:
    test = entry.params.get("test")
    if not test:
        return True
    try:
        argv = [_expand(a) for a in argv_for(test, None, mimetype)]
        return subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=TEST_TIMEOUT, shell=False).returncode == 0
    except (ValueError, OSError, subprocess.TimeoutExpired):
        return False


def find(entries: list[Entry], mimetype: str, *, run_tests: bool = True,
         prefer_terminal: bool | None = None) -> Entry | None:
    """The first entry for the type whose test passes (exact types before wildcards)."""
    mimetype = mimetype.lower()
    cands = [e for e in entries if e.matches(mimetype) and not e.params.get("print")]
    cands.sort(key=lambda e: 0 if e.mimetype == mimetype else 1)
    if prefer_terminal is not None:
        cands.sort(key=lambda e: 0 if e.needsterminal == prefer_terminal else 1)
    for e in cands:
        if run_tests and not _test_passes(e, mimetype):
            continue
        return e
    return None


def wants_stdin(command: str) -> bool:
    """RFC 1524: without %s the data goes to the command's standard input."""
    return "%s" not in command
