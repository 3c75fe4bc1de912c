"""`tuimail serve` as a process: HTTPS with a certificate on every address (0.0.0.0 here), the login by
password, the Secure cookie, Ctrl+C; a bad certificate is one line; the demo with a token for the run."""

from __future__ import annotations

import http.client
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urlencode

import pytest

from tuimail.serve.auth import hash_password

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = '[accounts.a]\nkind = "imap"\nhost = "127.0.0.1"\nport = 1\nsecurity = "none"\nusername = "me"\n'


@pytest.fixture
def cert(tmp_path) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("needs the openssl binary to make a certificate")
    c, k = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(k), "-out", str(c)],
                   check=True, capture_output=True, timeout=60)
    return c, k


def _serve(args: list[str], tmp_path: Path) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "tuimail", *args], stdout=subprocess.PIPE,
                            stderr=(tmp_path / "serve.log").open("w"), stdin=subprocess.DEVNULL, text=True, env=env)
    lines: list[str] = []
    t = threading.Thread(target=lambda: lines.append(proc.stdout.readline()), daemon=True)
    t.start()
    t.join(20)
    return proc, lines[0] if lines else ""


def test_https_on_every_address_with_a_password(tuimail_env, cert, tmp_path):
    c, k = cert
    config = tuimail_env.write_config(ACCOUNT + f'[serve]\npassword_hash = "{hash_password("hunter22!", n=2 ** 14)}"\n')
    proc, line = _serve(["--config", str(config), "serve", "--host", "0.0.0.0", "--port", "0", "--cert", str(c),
                         "--key", str(k)], tmp_path)
    try:
        m = re.match(r"tuimail serve: https://0\.0\.0\.0:(\d+)/ \(log in with the password of \[serve\]\)", line)
        assert m, line + (tmp_path / "serve.log").read_text()
        port = int(m.group(1))
        ctx = ssl.create_default_context(cafile=str(c))
        conn = http.client.HTTPSConnection("localhost", port, context=ctx, timeout=10)
        conn.request("POST", "/login", body=urlencode({"secret": "hunter22!"}),
                     headers={"Content-Type": "application/x-www-form-urlencoded",
                              "Origin": f"https://localhost:{port}"})
        r = conn.getresponse()
        r.read()
        assert r.status == 303, r.status
        cookie = r.getheader("Set-Cookie")
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
        session = cookie.split(";", 1)[0]
        conn.request("GET", "/", headers={"Cookie": session})
        r = conn.getresponse()
        page = r.read().decode()
        assert r.status == 200 and f"wss://localhost:{port}/ws" in page
        plain = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):  # no plain HTTP on it
            plain.request("GET", "/login")
            plain.getresponse()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
    assert proc.returncode == 0
    assert "tuimail serve: stopped" in (tmp_path / "serve.log").read_text()


def test_a_key_that_is_not_the_certificates_is_one_line(tuimail_env, cert, tmp_path):
    c, _k = cert
    config = tuimail_env.write_config(ACCOUNT)
    proc, line = _serve(["--config", str(config), "serve", "--port", "0", "--cert", str(c), "--key", str(c)], tmp_path)
    proc.wait(30)
    err = (tmp_path / "serve.log").read_text()
    assert proc.returncode == 2 and line == ""
    assert err.startswith("tuimail: serve: cannot use the certificate") and err.count("\n") == 1, err


def test_the_demo_is_served_with_a_token_for_the_run(tuimail_env, tmp_path):
    """No config: the demo's server runs in the serve process; the printed URL logs in."""
    proc, line = _serve(["serve", "--demo", "--port", "0"], tmp_path)
    try:
        m = re.match(r"tuimail serve: http://127\.0\.0\.1:(\d+)/login\?token=([\w-]{24,})$", line.strip())
        assert m, line + (tmp_path / "serve.log").read_text()
        conn = http.client.HTTPConnection("127.0.0.1", int(m.group(1)), timeout=10)
        conn.request("GET", "/login?token=wrong")
        r = conn.getresponse()
        assert r.status == 401 and b"Wrong token." in r.read()
        conn.request("GET", f"/login?token={m.group(2)}")
        r = conn.getresponse()
        r.read()
        assert r.status == 303 and "HttpOnly" in r.getheader("Set-Cookie")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
    assert proc.returncode == 0
