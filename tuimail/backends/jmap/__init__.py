"""The JMAP account kind (RFC 8620/8621) behind the AccountService contract: service.py (threads,
lock, events), engine.py (one sync, and what its parts share) with folders.py (mailboxes as
folders), fill.py (first screen, then windows), changes.py (Email/changes, resync), replay.py
(the journal as Email/set), rows.py (an Email as a header row); opener.py (bodyStructure + the
text part's blob), submit.py (sending), flags.py (keywords <-> canonical flags), state.py."""
