"""Sending from a JMAP account: the outbox's transport (backends/send.py) over HTTP.

    submitter = JmapSubmitter(account, store_path)
    result = submitter.send(message, mail_from, rcpts)   # SendResult, as protocol/smtp.send gives
    submitter.close()

One message is one upload (the blob without its Bcc header) and one API request: Email/import into
Drafts ($draft, $seen) and EmailSubmission/set with the envelope (mailFrom, every recipient in
rcptTo, Bcc ones included) and onSuccessUpdateEmail, which moves it from Drafts to Sent and clears
$draft (protocol/jmap/mail.py submit). The server files the Sent copy itself: the outbox does not.

Failures are SendErrors, classified as the outbox expects from SMTP:
- the server refused the message (forbiddenFrom, invalidRecipients, forbiddenToSend, tooLarge,
  ...): permanent, one line quoting its type and description; the draft it imported is destroyed
  again, so nothing is left behind in Drafts and the outbox keeps the message;
- a refused login: kind "auth" (waits for the user, the message is not failed);
- the network before the request: temporary (retried with backoff);
- the connection broken while the import + submission request was on the wire: maybe_sent (never
  sent again by itself: the server may have acted on it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tuimail.backends.jmap.state import FolderState
from tuimail.config.load import Account, resolve_oauth2_token, resolve_password
from tuimail.errors import AuthError, ConfigError, NetworkError, ProtocolError, UsageError
from tuimail.protocol.jmap.errors import MethodError, RequestError, server_text
from tuimail.protocol.smtp import SendError, SendResult
from tuimail.store.store import Store

__all__ = ["JmapSubmitter", "role_mailboxes"]

# SetError / method error types after which trying again later may help
_TEMPORARY = frozenset({"serverFail", "serverUnavailable", "serverPartialFail", "rateLimit", "overQuota"})


def role_mailboxes(client: Any, store: Store | None = None, roles: dict[str, str] | None = None
                   ) -> dict[str, str]:
    """role -> Mailbox id for drafts and sent: the store's folders first (they carry the config's
    roles overrides and the mailbox id of their last sync), else the server's Mailbox/get roles."""
    from tuimail.protocol.jmap.mail import mailboxes
    out: dict[str, str] = {}
    if store is not None:
        for role in ("drafts", "sent"):
            name = (roles or {}).get(role)
            info = store.folder(name) if name else store.folder_by_role(role)
            if info is not None and not info.gone:
                mid = FolderState.load(info.state).mailbox
                if mid:
                    out[role] = mid
    if len(out) < 2:
        _state, boxes = mailboxes(client)
        for b in boxes:
            kind, box = (b.get("role"), b.get("id")) if isinstance(b, dict) else (None, None)
            if isinstance(kind, str) and kind in ("drafts", "sent") and kind not in out and isinstance(box, str):
                out[kind] = box
    return out


def _refused(exc: MethodError, rcpts: list[str]) -> SendError:
    """One line quoting the server's error type and description."""
    if exc.type == "accountNotSupportedByMethod":
        # Cyrus 3.6 drops the submission capability while its SMTP relay does not answer
        return SendError("the JMAP server offers no submission for this account now (accountNotSupportedByMethod;"
                         " on Cyrus: its SMTP relay is down); will retry", temporary=True, kind="reply")
    text = f"the JMAP server refused the message: {server_text(exc.type, 80)}"
    if exc.description:
        text += f": {server_text(exc.description, 200)}"
    accepted = exc.arguments.get("maxRecipients")
    if exc.type == "tooManyRecipients" and isinstance(accepted, int) and 0 <= accepted < len(rcpts):
        # Cyrus 3.6's answer when its relay refuses a recipient: maxRecipients = how many it took
        text += (f" (its relay took {accepted} of the {len(rcpts)} recipients and refused the others:"
                 f" check {', '.join(server_text(r, 80) for r in rcpts[:5])}); nothing was sent")
    elif exc.type in ("invalidRecipients", "forbiddenToSend", "forbiddenFrom", "forbiddenMailFrom"):
        bad = exc.arguments.get("invalidRecipients")
        if isinstance(bad, list) and bad:
            text += f" ({', '.join(server_text(r, 80) for r in bad[:5])})"
        text += "; nothing was sent"
    return SendError(text, temporary=exc.type in _TEMPORARY, kind="reply")


class JmapSubmitter:
    """The outbox transport of one JMAP account (one connection, opened on the first send)."""

    def __init__(self, account: Account, store_path: Path | None = None, *,
                 connect: Callable[[], Any] | None = None):
        self.account = account
        self.store_path = store_path
        self._connect = connect
        self._client: Any = None
        self._boxes: dict[str, str] | None = None
        self._value: str | None = None

    def resolve(self) -> JmapSubmitter:
        """The password (or token) now, before the outbox claims a message: a bad password command
        is a ConfigError that leaves the outbox as it was (as for SMTP settings)."""
        if self._connect is None and self._value is None:
            if self.account.oauth2_token_command:
                self._value = resolve_oauth2_token(self.account)
            else:
                self._value = resolve_password(self.account)
        return self

    def _secret(self) -> str:
        if self._value is None:
            self.resolve()
        assert self._value is not None
        return self._value

    def client(self) -> Any:
        if self._client is None:
            if self._connect is not None:
                self._client = self._connect()
            else:
                from tuimail.backends.jmap.service import connect
                self._client = connect(self.account, self._secret)
        return self._client

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def _mailboxes(self, client: Any) -> dict[str, str]:
        if self._boxes is None:
            store = None
            if self.store_path is not None and self.store_path.exists():
                store = Store(self.store_path)
            try:
                self._boxes = role_mailboxes(client, store, self.account.roles)
            finally:
                if store is not None:
                    store.close()
        return self._boxes

    def send(self, data: bytes, mail_from: str, rcpts: Sequence[str]) -> SendResult:
        from tuimail.protocol.jmap.mail import MaybeSubmitted, submit
        host = self.account.url or self.account.host or "the JMAP server"
        try:
            client = self.client()
            boxes = self._mailboxes(client)
            drafts = boxes.get("drafts")
            if drafts is None:
                raise SendError(f"{server_text(host, 80)} has no Drafts mailbox to submit from (set accounts."
                                f"{self.account.name}.roles.drafts)", temporary=False, kind="config")
            done = submit(client, data, mail_from=mail_from, rcpt_to=list(rcpts), drafts_id=drafts,
                          sent_id=boxes.get("sent"))
        except SendError:
            raise
        except MaybeSubmitted as exc:
            self.close()
            raise SendError(str(exc), temporary=False, kind="network", maybe_sent=True) from None
        except MethodError as exc:
            raise _refused(exc, list(rcpts)) from None
        except AuthError as exc:
            self.close()
            raise SendError(str(exc), temporary=False, kind="auth") from None
        except RequestError as exc:
            raise SendError(str(exc), temporary=exc.status in (408, 429), kind="reply") from None
        except (ConfigError, UsageError) as exc:
            raise SendError(str(exc), temporary=False, kind="config") from None
        except (NetworkError, ProtocolError) as exc:
            self.close()
            raise SendError(str(exc), temporary=True, kind="network") from None
        reply = (f"EmailSubmission {server_text(done.submission_id, 80)}" if done.submission_id else
                 "already submitted: the message was found in Sent")
        return SendResult(code=250, reply=reply, accepted=tuple(rcpts))

    def destroy_draft(self, email_id: str) -> None:
        """The draft a sent message was resumed from goes (Email/set destroy); one already gone
        is fine. NetworkError and the like propagate (the caller keeps the draft)."""
        from tuimail.protocol.jmap.mail import set_emails
        result = set_emails(self.client(), destroy=[email_id])
        refused = result.not_destroyed.get(email_id)
        if refused and refused.get("type") != "notFound":
            raise ProtocolError(f"the draft was not removed: {server_text(refused.get('type'), 80)}")
