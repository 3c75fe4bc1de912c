"""The JMAP account kind (RFC 8620/8621) behind the AccountService contract: service.py (threads,
lock, events), engine.py (sync: mailboxes, first screen, changes, journal replay), opener.py
(bodyStructure + the text part's blob), flags.py (keywords <-> canonical flags), state.py."""
