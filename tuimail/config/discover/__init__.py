"""Finding an account's servers from an e-mail address (issue 16), for `tuimail setup` and the
first-run wizard: autoconfig, SRV, .well-known/jmap, then probing; a login check; the config
block. Nothing here imports textual: the UI and the CLI show the reported `Step`s."""

from tuimail.config.discover.dns import DnsFailed, Resolver, Srv, SystemResolver
from tuimail.config.discover.engine import check_server, describe, discover, features, guesses, jmap_server
from tuimail.config.discover.net import Connector, FetchFailed, Fetcher, HttpFetcher, Response, tcp_connect
from tuimail.config.discover.render import Password, account_name, keyring, render_account, write_account
from tuimail.config.discover.results import Address, Candidate, Discovery, Jmap, Probe, Step, parse_address
from tuimail.config.discover.verify import LoginCheck, verify, verify_imap, verify_jmap, verify_pop3, verify_smtp

__all__ = [
    "Address", "Candidate", "Connector", "Discovery", "DnsFailed", "FetchFailed", "Fetcher", "HttpFetcher",
    "Jmap", "LoginCheck", "Password", "Probe", "Resolver", "Response", "Srv", "Step", "SystemResolver",
    "account_name", "check_server", "describe", "discover", "features", "guesses", "keyring", "parse_address",
    "jmap_server", "render_account", "tcp_connect", "verify", "verify_imap", "verify_jmap", "verify_pop3",
    "verify_smtp", "write_account",
]
