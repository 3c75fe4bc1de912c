"""tuimail.mail is the bottom layer: standard library and html2text only (DESIGN.md §1)."""

import subprocess
import sys

CHECK = """
import sys
import tuimail.mail.headers, tuimail.mail.parse, tuimail.mail.render, tuimail.mail.thread
import tuimail.mail.sanitize, tuimail.mail.parse, tuimail.mail.part, tuimail.mail.charset
bad = sorted(m for m in sys.modules if m.split(".")[0] in ("textual", "rich", "imapclient")
             or m.startswith(("tuimail.store", "tuimail.protocol", "tuimail.backends", "tuimail.ui")))
print(",".join(bad))
"""


def test_mail_imports_nothing_above_it():
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
