"""`tuimail serve` in a real browser: headless Chromium (the system's, from apt) driven by Selenium logs
in, opens a message, flags it, and a separate IMAP connection sees \\Seen and then \\Flagged on Dovecot.

What the page shows is read from the websocket frames the browser received (Chrome's performance
log): xterm.js draws on a canvas, so the text is not in the DOM.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.integration.helpers import msg
from tuimail.serve.auth import hash_password

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
PASSWORD = "correct horse battery"

pytestmark = pytest.mark.skipif(CHROMIUM is None or CHROMEDRIVER is None,
                                reason="Chromium and chromedriver are not installed (`make browser` installs them)")


def _start_serve(config: Path, log: Path) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "tuimail", "--config", str(config), "serve", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=log.open("w"), stdin=subprocess.DEVNULL, text=True,
                            env=env, cwd=ROOT)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(20)
    if not lines or not lines[0].startswith("tuimail serve: http"):
        proc.kill()
        pytest.fail(f"tuimail serve did not start: {lines} {log.read_text()}")
    return proc, re.search(r"http://\S+", lines[0]).group()


def _browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1200,800",
                "--disable-gpu", "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


class Screen:
    """The terminal output the page received so far (escape sequences dropped)."""

    def __init__(self, driver):
        self.driver = driver
        self.text = ""

    def poll(self) -> str:
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message.get("method") != "Network.webSocketFrameReceived":
                continue
            response = message["params"]["response"]
            data = response.get("payloadData", "")
            raw = base64.b64decode(data) if response.get("opcode") == 2 else data.encode()
            self.text += re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07", "", raw.decode("utf-8", "replace"))
        return self.text

    def wait_for(self, needle: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.poll():
                return
            time.sleep(0.2)
        raise AssertionError(f"{needle!r} never appeared on the page; the end of it: {self.text[-600:]!r}")


def _wait_flags(user, uid: int, flag: bytes, timeout: float) -> set[bytes]:
    deadline = time.monotonic() + timeout
    flags: set[bytes] = set()
    while time.monotonic() < deadline:
        with user.client(select="INBOX") as c:
            flags = set(c.get_flags([uid]).get(uid, ()))
        if flag in flags:
            return flags
        time.sleep(0.3)
    raise AssertionError(f"{flag!r} not on message {uid} on the server; its flags: {flags}")


@pytest.fixture(params=["dovecot-imap", "cyrus-jmap"])
def account(request):
    """(the server's user, its account's config): the same browser walk on an IMAP account on
    Dovecot and on a JMAP account on Cyrus (issue #15: "open tuimail serve and do the same")."""
    if request.param == "dovecot-imap":
        user = request.getfixturevalue("mailuser")
        return user, user.config_toml()
    from tests.integration.test_jmap_backend import jmap_toml

    user = request.getfixturevalue("cyrususer")
    return user, jmap_toml(user)


def test_log_in_open_flag_in_a_browser(account, tuimail_env, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    mailuser, account_toml = account
    for i, subject in ((1, "Older browser note"), (2, "Browser test message")):
        mailuser.append("INBOX", msg(i * 3600, subject))
    with mailuser.client(select="INBOX") as c:
        newest = max(c.search("ALL"))
    config = tuimail_env.write_config(
        account_toml + '\n[ui]\nmark_read_delay = 0\n\n[serve]\n'
        f'password_hash = "{hash_password(PASSWORD, n=2 ** 14)}"\n')
    proc, base = _start_serve(config, tmp_path / "serve.log")
    driver = None
    try:
        driver = _browser()
        # the login answers with a redirect: an element found just before the new page replaced the
        # old one is stale, which is a reason to look again, not a failure
        wait = WebDriverWait(driver, 20, ignored_exceptions=(StaleElementReferenceException,))
        driver.get(base)
        wait.until(ec.url_contains("/login"))  # no session: the login form
        assert "tuimail" in driver.title
        driver.find_element(By.ID, "secret").send_keys("not the password")
        driver.find_element(By.ID, "login").click()
        wait.until(ec.text_to_be_present_in_element((By.ID, "message"), "Wrong password"))
        driver.find_element(By.ID, "secret").send_keys(PASSWORD)
        driver.find_element(By.ID, "login").click()
        wait.until(lambda d: "-first-byte" in (d.find_element(By.TAG_NAME, "body").get_attribute("class") or ""))
        assert driver.title == "tuimail"
        icon = driver.find_element(By.CSS_SELECTOR, "link[rel=icon]").get_attribute("href")
        assert icon.endswith("/favicon.svg")
        assert driver.get_cookie("tuimail_session")["httpOnly"] is True
        assert driver.get_cookie("tuimail_session")["sameSite"] == "Strict"

        screen = Screen(driver)
        screen.wait_for("Browser test message", 30)  # the first sync's rows, painted
        keys = driver.find_element(By.CSS_SELECTOR, ".xterm-helper-textarea")
        keys.send_keys(Keys.ENTER)  # open the newest message (the cursor's)
        _wait_flags(mailuser, newest, b"\\Seen", 15)
        keys.send_keys("F")  # flag it
        flags = _wait_flags(mailuser, newest, b"\\Flagged", 15)
        assert b"\\Seen" in flags
        with mailuser.client(select="INBOX") as c:
            others = c.get_flags([u for u in c.search("ALL") if u != newest])
        assert all(b"\\Flagged" not in f for f in others.values())
    finally:
        if driver is not None:
            driver.quit()
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, (tmp_path / "serve.log").read_text()
