"""The project's own thin JMAP client (RFC 8620 core, RFC 8621 mail, EmailSubmission): client.py is
the transport (session, batched calls with back-references, blobs, byte counting), mail.py the
calls a backend makes, errors.py the typed errors, push.py EventSource (polling is the default).
See DESIGN §3b for what Cyrus does."""

from tuimail.protocol.jmap.client import CORE, MAIL, SUBMISSION, Batch, CallRef, Exchange, JmapClient, Response, Session
from tuimail.protocol.jmap.errors import (AccountNotFound, MethodError, RequestError, StateInvalid,
                                          StateMismatch)

__all__ = ["CORE", "MAIL", "SUBMISSION", "Batch", "CallRef", "Exchange", "JmapClient", "Response", "Session",
           "AccountNotFound", "MethodError", "RequestError", "StateInvalid", "StateMismatch"]
