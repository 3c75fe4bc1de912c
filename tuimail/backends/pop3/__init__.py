"""The POP3 backend (issue 14): download-and-keep and download-and-delete into the store.

plan.py decides a sync (pure logic); the service that talks to tuimail.protocol.pop3 and writes the
store comes with the store's local message ids.
"""
