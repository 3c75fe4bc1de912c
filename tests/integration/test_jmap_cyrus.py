"""tuimail/protocol/jmap against a real Cyrus IMAP 3.6 (tests/support/cyrus.py, `make cyrus`): the
session and its discovery, the first screen in one request, changes made by an IMAP client,
ifInState conflicts, a stale state, blob download, and sending with Bcc through EmailSubmission."""

from __future__ import annotations

import email
import email.policy
import time
from datetime import datetime, UTC
from email.message import EmailMessage

import pytest

from tests.support.cyrus import CyrusUser
from tuimail.errors import AuthError, ProtocolError
from tuimail.protocol.jmap import (AccountNotFound, JmapClient, MethodError, RequestError, StateInvalid,
                                   StateMismatch)
from tuimail.protocol.jmap.push import EventSource, PushUnavailable
from tuimail.protocol.jmap.mail import changes, changes_many, first_page, get_emails, mailboxes, set_emails, submit


def message(n: int, subject: str | None = None, body: str | None = None) -> bytes:
    return (f"From: Sender {n} <s{n}@example.org>\r\nTo: someone@localhost\r\n"
            f"Subject: {subject or f'message {n}'}\r\nMessage-ID: <m{n}.{time.monotonic_ns()}@example.org>\r\n"
            f"Date: Mon, 1 Jan 2024 10:{n % 60:02d}:00 +0000\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            f"{body or f'body of message {n}'}\r\n").encode()


@pytest.fixture
def client(cyrususer: CyrusUser):
    c = JmapClient.connect(cyrususer.session_url, username=cyrususer.name, password=cyrususer.password)
    yield c
    c.close()


def roles(client: JmapClient) -> dict[str, str]:
    _state, boxes = mailboxes(client)
    return {b["role"]: b["id"] for b in boxes if b.get("role")}


def test_cyrus_starts_and_answers_session_and_mailbox_get(cyrus, cyrususer, client):
    assert cyrus.running and cyrus.start_seconds < 10
    session = client.session
    assert session is not None and session.username == cyrususer.name
    assert session.api_url == f"http://127.0.0.1:{cyrususer.http_port}/jmap/"  # made absolute
    assert "{blobId}" in session.download_url
    assert client.account_id == cyrususer.name
    state, boxes = mailboxes(client)
    assert state
    by_role = {b.get("role"): b["name"] for b in boxes}
    for role in ("inbox", "drafts", "sent", "trash", "archive", "junk"):
        assert role in by_role, by_role


def test_well_known_discovery_follows_the_redirect(cyrususer):
    with JmapClient.connect(f"http://127.0.0.1:{cyrususer.http_port}/.well-known/jmap",
                            username=cyrususer.name, password=cyrususer.password) as c:
        assert c.session is not None
        assert c.exchanges[0].path == "/.well-known/jmap" and c.exchanges[0].status in (301, 302, 307, 308)
        assert c.session.url.rstrip("/").endswith("/jmap")  # Cyrus redirects to /jmap
        assert c.account_id == cyrususer.name


def test_the_account_exists_only_after_one_imap_login(cyrus):
    user = cyrus.add_user(login=False)
    with JmapClient.connect(user.session_url, username=user.name, password=user.password) as c:
        with pytest.raises(AccountNotFound) as e:
            mailboxes(c)
        assert "\n" not in str(e.value)
        user.login()
        c.fetch_session()
        assert mailboxes(c)[1]


def test_wrong_password_is_an_auth_error(cyrususer):
    with pytest.raises(AuthError, match="refused the login"):
        JmapClient.connect(cyrususer.session_url, username=cyrususer.name, password="wrong")


def test_method_and_request_errors_are_typed_one_liners(client):
    with pytest.raises(AccountNotFound) as e:
        client.call("Email/get", {"accountId": "nobody-here", "ids": []})
    assert "\n" not in str(e.value) and "accountNotFound" in str(e.value)
    with pytest.raises(MethodError) as e2:
        client.call("Email/frobnicate", {"accountId": client.account_id})
    assert e2.value.type == "unknownMethod" and "Email/frobnicate" in str(e2.value)
    batch = client.batch()
    batch.using.add("urn:example:nope")
    batch.call("Mailbox/get", {"accountId": client.account_id, "ids": []})
    with pytest.raises(RequestError) as e3:
        client.send(batch)
    assert e3.value.status == 400 and "unknownCapability" in str(e3.value)
    assert "\n" not in str(e3.value)


def test_first_page_newest_first_with_get_in_one_request(cyrususer, client):
    base = 1_700_000_000
    for n in range(6):
        cyrususer.append("INBOX", message(n), msg_time=datetime.fromtimestamp(base + n * 3600, UTC))
    inbox = roles(client)["inbox"]
    mark = client.mark()
    page = first_page(client, inbox, limit=4)
    assert len(client.since(mark)) == 1  # Email/query + Email/get by back-reference: one HTTP request
    assert page.total == 6 and len(page.ids) == 4
    assert [e["id"] for e in page.emails] == page.ids
    assert [e["subject"] for e in page.emails] == ["message 5", "message 4", "message 3", "message 2"]
    assert page.emails[0]["from"][0]["email"] == "s5@example.org"
    assert page.email_state and page.query_state


def test_changes_after_an_imap_client_adds_flags_and_expunges(cyrususer, client):
    cyrususer.append("INBOX", message(1))
    page = first_page(client, roles(client)["inbox"])
    state = page.email_state
    (first_id,) = page.ids

    # nothing changed: the resync is one HTTP request under 2 KB
    mark = client.mark()
    none = changes(client, "Email", state)
    exchanges = client.since(mark)
    assert none.empty and none.new_state == state and none.requests == 1
    assert len(exchanges) == 1 and exchanges[0].sent + exchanges[0].received < 2048, exchanges

    uid2 = cyrususer.append("INBOX", message(2))
    with cyrususer.client(select="INBOX") as imap:
        imap.add_flags([uid2], [b"\\Flagged"])
        imap.add_flags(imap.search(["SUBJECT", "message 1"]), [b"\\Seen"])
    got = changes(client, "Email", state)
    assert len(got.created) == 1 and got.created[0] != first_id
    assert first_id in got.updated and not got.destroyed
    _s, emails, _nf = get_emails(client, [first_id, got.created[0]], ["keywords"])
    kw = {e["id"]: e["keywords"] for e in emails}
    assert kw[first_id].get("$seen") is True and kw[got.created[0]].get("$flagged") is True

    state2 = got.new_state
    with cyrususer.client(select="INBOX") as imap:
        imap.add_flags(imap.search(["SUBJECT", "message 1"]), [b"\\Deleted"])
        imap.expunge()
    gone = changes(client, "Email", state2)
    assert gone.destroyed == [first_id] and not gone.created


def test_has_more_changes_is_followed_and_merged(cyrususer, client):
    state = first_page(client, roles(client)["inbox"]).email_state
    for n in range(5):
        cyrususer.append("INBOX", message(n))
    got = changes(client, "Email", state, max_changes=2)
    assert got.requests >= 3
    assert len(got.created) == 5 and len(set(got.created)) == 5


def test_mailbox_changes(cyrususer, client):
    state, _ = mailboxes(client)
    with cyrususer.client() as imap:
        imap.create_folder("Projects")
    got = changes(client, "Mailbox", state)
    _s, boxes = mailboxes(client)
    projects = [b["id"] for b in boxes if b["name"] == "Projects"]
    assert projects and projects[0] in got.created


@pytest.mark.parametrize("kind", ["Email", "Mailbox"])
def test_stale_or_garbage_state_is_state_invalid(client, kind):
    with pytest.raises(StateInvalid) as e:
        changes(client, kind, "not-a-state-9999")
    assert e.value.type in ("cannotCalculateChanges", "invalidArguments")
    assert "\n" not in str(e.value)


def test_if_in_state_conflict_then_reapply(cyrususer, client):
    uid = cyrususer.append("INBOX", message(1))
    page = first_page(client, roles(client)["inbox"])
    (eid,) = page.ids
    stale = page.email_state
    with cyrususer.client(select="INBOX") as imap:  # someone else changes the account
        imap.add_flags([uid], [b"\\Flagged"])
    with pytest.raises(StateMismatch) as e:
        set_emails(client, update={eid: {"keywords/$seen": True}}, if_in_state=stale)
    assert e.value.type == "stateMismatch"
    with cyrususer.client(select="INBOX") as imap:
        assert b"\\Seen" not in imap.get_flags([uid])[uid]  # nothing was applied
    # refetch the state and re-apply the user's intent
    current = changes(client, "Email", stale).new_state
    res = set_emails(client, update={eid: {"keywords/$seen": True}}, if_in_state=current)
    assert res.updated == [eid] and res.old_state == current and res.new_state != current
    with cyrususer.client(select="INBOX") as imap:
        assert set(imap.get_flags([uid])[uid]) >= {b"\\Seen", b"\\Flagged"}


def test_blob_download_of_the_text_part_with_a_size_bound(cyrususer, client):
    text = "Grüße aus der Testsuite\r\n" * 20
    raw = EmailMessage(policy=email.policy.SMTP)
    raw["From"], raw["To"], raw["Subject"] = "a@example.org", "b@localhost", "with attachment"
    raw.set_content(text)
    raw.add_attachment(b"\x00" * 5000, maintype="application", subtype="octet-stream", filename="zeros.bin")
    cyrususer.append("INBOX", raw.as_bytes())
    page = first_page(client, roles(client)["inbox"])
    _s, (em,), _nf = get_emails(client, page.ids, ["id", "textBody", "attachments", "hasAttachment"],
                                bodyProperties=["partId", "blobId", "type", "charset", "size", "name"])
    (part,) = em["textBody"]
    assert part["type"] == "text/plain" and em["hasAttachment"] is True
    data = client.download(part["blobId"], name="body.txt", type_="text/plain")
    assert data.decode(part.get("charset") or "utf-8").replace("\r\n", "\n") == text.replace("\r\n", "\n")
    assert client.last.received > len(data)  # counted with the headers
    (att,) = em["attachments"]
    with pytest.raises(ProtocolError, match="more than"):
        client.download(att["blobId"], max_bytes=1000)
    assert client.download(att["blobId"]) == b"\x00" * 5000  # the connection is still usable


def test_send_with_bcc_reaches_the_envelope_only(cyrususer, cyrus_sink, client):
    r = roles(client)
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = cyrususer.address
    msg["To"] = "to@example.org"
    msg["Bcc"] = "hidden@example.org"
    msg["Subject"] = "over JMAP"
    msg["Message-ID"] = f"<jmap-send-{time.monotonic_ns()}@localhost>"
    msg.set_content("sent by EmailSubmission\n")
    raw = msg.as_bytes()
    assert b"\r\nBcc: hidden@example.org\r\n" in raw
    before = len(cyrus_sink.messages)
    sent = submit(client, raw, mail_from=cyrususer.address, rcpt_to=["to@example.org", "hidden@example.org"],
                  drafts_id=r["drafts"], sent_id=r["sent"])
    assert sent.email_id and sent.submission_id
    relayed = cyrus_sink.wait(before + 1)[before]
    assert relayed.mail_from == cyrususer.address
    assert sorted(relayed.rcpts) == ["hidden@example.org", "to@example.org"]
    assert b"hidden@example.org" not in relayed.data and b"\nbcc:" not in relayed.data.lower()
    assert b"sent by EmailSubmission" in relayed.data
    parsed = email.message_from_bytes(relayed.data, policy=email.policy.default)
    assert parsed["Subject"] == "over JMAP" and parsed["Bcc"] is None
    # onSuccessUpdateEmail: out of Drafts, into Sent, no $draft
    _s, (em,), _nf = get_emails(client, [sent.email_id], ["mailboxIds", "keywords"])
    assert em["mailboxIds"] == {r["sent"]: True}
    assert "$draft" not in em["keywords"]
    with cyrususer.client() as imap:
        imap.select_folder("Sent")
        assert len(imap.search(["ALL"])) == 1
        imap.select_folder("Drafts")
        assert imap.search(["ALL"]) == []


def test_text_search_after_squatter(cyrususer, client):
    cyrususer.append("INBOX", message(1, subject="plain"))
    cyrususer.append("INBOX", message(2, subject="the needle", body="a haystack with a needle"))
    cyrususer.squat()  # Cyrus answers serverFail to text filters until the account is indexed
    res = client.call("Email/query", {"accountId": client.account_id, "filter": {"text": "needle"}})
    _s, found, _nf = get_emails(client, res["ids"], ["subject"])
    assert [e["subject"] for e in found] == ["the needle"]


def test_resync_of_mailboxes_and_emails_is_one_small_request(cyrus):
    cyrususer = cyrus.add_user(telemetry=True)
    client = JmapClient.connect(cyrususer.session_url, username=cyrususer.name, password=cyrususer.password)
    uid = cyrususer.append("INBOX", message(1))
    mbox_state, _boxes = mailboxes(client)
    page = first_page(client, roles(client)["inbox"])
    states = {"Mailbox": mbox_state, "Email": page.email_state}
    mark = client.mark()
    got = changes_many(client, states)
    (ex,) = client.since(mark)
    assert got["Mailbox"].empty and got["Email"].empty
    assert ex.sent + ex.received < 2048, ex
    # the server saw the same request: Cyrus's telemetry holds it (its Authorization masked)
    last = cyrususer.telemetry("http").rsplit(b"POST /jmap/ HTTP/1.1", 1)[1]
    assert b'["Mailbox/changes"' in last and b'["Email/changes"' in last and len(last) < 2048
    with cyrususer.client(select="INBOX") as imap:
        imap.add_flags([uid], [b"\\Seen"])
    got = changes_many(client, states)
    assert got["Email"].updated == page.ids
    assert got["Mailbox"].updated == [roles(client)["inbox"]] and got["Mailbox"].counts_only


def test_event_source_on_debian_cyrus_is_unavailable(client):
    # Debian's Cyrus 3.6.1 httpd has no WebSockets, and its EventSource is enabled only with them:
    # 204 whatever jmap_pushpoll says. The client reports that as PushUnavailable: poll instead.
    with pytest.raises(PushUnavailable, match="204"):
        list(EventSource(client, ping=1))


def test_move_and_destroy_by_email_set(cyrususer, client):
    # receivedAt is the INTERNALDATE: two appends in one second would tie, and the order with them
    cyrususer.append("INBOX", message(1), msg_time=datetime(2024, 1, 1, 10, 0, tzinfo=UTC))
    cyrususer.append("INBOX", message(2), msg_time=datetime(2024, 1, 1, 11, 0, tzinfo=UTC))
    r = roles(client)
    page = first_page(client, r["inbox"])
    newest, oldest = page.ids
    res = set_emails(client, update={newest: {f"mailboxIds/{r['inbox']}": None, f"mailboxIds/{r['archive']}": True}},
                     destroy=[oldest], if_in_state=page.email_state)
    assert res.updated == [newest] and res.destroyed == [oldest]
    with cyrususer.client() as imap:
        imap.select_folder("INBOX")
        assert imap.search(["ALL"]) == []
        imap.select_folder("Archive")
        (uid,) = imap.search(["ALL"])
        assert b"message 2" in imap.fetch([uid], ["BODY.PEEK[HEADER.FIELDS (SUBJECT)]"])[uid][
            b"BODY[HEADER.FIELDS (SUBJECT)]"]
    got = changes(client, "Email", page.email_state)
    assert got.updated == [newest] and got.destroyed == [oldest]
    # a refusal for one email is returned per id, not raised
    res = set_emails(client, update={"no-such-id": {"keywords/$seen": True}})
    assert res.not_updated["no-such-id"]["type"] == "notFound"
