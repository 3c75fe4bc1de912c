"""What the main screen tells the user without being asked (a mixin of MainScreen):

- a sync problem (refused login, unreachable host, TLS, no password) in a panel where the list
  would be, when there is no list to show, and in the status bar always; the password prompt when
  the login was refused or no password is configured (the sync does not retry a refused login on
  its own: servers lock accounts);
- changes another process (a `tuimail sync` from cron) wrote to the store: `PRAGMA data_version`
  is polled every STORE_POLL seconds on the UI's connection (a few microseconds) and a change
  reloads the list, the folder counts and the pending count;
- new mail in other folders ("new mail in Work" in the status bar; the bell and the terminal title
  when configured).
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Checkbox, Input, Static

from tuimail.mail.sanitize import sanitize_line, sanitize_strict
from tuimail.core.events import NewMail, SyncState
from tuimail.ui.widgets.status import AccountState

STORE_POLL = 1.0  # seconds between PRAGMA data_version checks
MAX_NOTED = 3  # folders named in the status bar's "new mail in ..." note


class ProblemPanel(Static):
    """Shown in place of an empty list when an account cannot sync: what failed and how to fix it."""

    DEFAULT_CSS = """
    ProblemPanel {
        display: none; width: 1fr; height: 1fr; background: $surface; color: $foreground; padding: 1 2;
        content-align: center middle; text-align: center;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id, markup=False)


class PasswordScreen(ModalScreen[tuple[str, bool] | None]):
    """Masked password input -> (password, save). The password is kept in memory
    (SyncService.set_password); written to the config only when the user ticks "save" (offered
    when the account has no password configured at all)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = """
    PasswordScreen { align: center middle; background: $background 60%; }
    PasswordScreen > Vertical {
        width: 90%; max-width: 90; height: auto; border: round $primary; background: $panel; padding: 0 1;
    }
    PasswordScreen .title { text-style: bold; color: $text-primary; }
    PasswordScreen .why { color: $text-warning; }
    PasswordScreen .hint { color: $text-muted; }
    PasswordScreen Checkbox { border: none; background: $panel; padding: 0; }
    """

    def __init__(self, account: str, who: str, why: str, save_to: str | None = None) -> None:
        super().__init__()
        self.account, self.who, self.why, self.save_to = account, who, why, save_to

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Content(f"Password for {self.who} (account {self.account})"), classes="title")
            yield Static(Content(self.why), classes="why")
            yield Input(password=True, placeholder="password")
            if self.save_to:
                yield Checkbox(Content(f"save in {self.save_to} (made 0600)"), False)
            yield Static(Content("Enter: log in (kept in memory until tuimail exits" +
                                 (" unless saved; Tab: the save box)" if self.save_to else ")") + "    Esc: cancel"),
                         classes="hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        boxes = self.query(Checkbox)
        save = bool(boxes) and boxes.first().value
        self.dismiss((event.value, save) if event.value else None)

    def action_cancel(self) -> None:
        self.dismiss(None)


def fix_hint(st: AccountState, config_path: str) -> str:
    """How to fix the account's problem, one or two sentences."""
    if st.needs == "password":
        return (f"Press $ to type the password (kept in memory until tuimail exits), or set password or "
                f"password_command in {config_path}.")
    if st.needs == "login":
        return ("The login is not retried on its own (servers lock accounts after failed logins): fix "
                f"{config_path} or press $ to try again and type the password when asked.")
    return "Retried on its own, less and less often; $ retries now, ctrl+o works offline."


class Alerts:
    """Mixin of MainScreen (needs tapp, status, hlist, folder, account, open_folder...)."""

    def init_alerts(self) -> None:
        self._versions: dict[str, int] = {}
        self._prompting: set[str] = set()
        self._new_mail: dict[tuple[str, str], int] = {}

    def start_store_poll(self) -> None:
        for name, store in self.tapp.stores.items():
            version = getattr(store, "data_version", None)
            try:
                if version is not None:
                    self._versions[name] = version()
            except Exception:  # a damaged store is reported elsewhere; the poll tries again
                pass
        self.set_interval(STORE_POLL, self.poll_stores)

    # ------------------------------------------------------------------ other processes

    def poll_stores(self) -> None:
        """Reload what another connection committed since the last poll (our sync thread's commits
        come with events too; both paths are coalesced by the list's and the tree's timers)."""
        accounts = self.status.info.accounts
        for name, store in self.tapp.stores.items():
            version = getattr(store, "data_version", None)
            if version is None or (name in accounts and accounts[name].state == "syncing"):
                continue  # our own sync reports its commits; what others wrote meanwhile is seen after it
            try:
                now = version()
            except Exception:  # a damaged or vanished store is reported elsewhere
                continue
            if self._versions.get(name) == now:
                continue
            self._versions[name] = now
            self.store_changed(name)

    def store_changed(self, account: str) -> None:
        self._folders_dirty.add(account)
        if self._folders_timer is None:
            self._flush_folders()
        if account == self.account and self.folder is not None:
            self.hlist.rows_changed(reset=True)
            self.counts_changed(account, self.folder.id)

    # ------------------------------------------------------------------ sync problems

    def sync_state_changed(self, ev: SyncState, st: AccountState) -> None:
        st.needs = ev.needs
        if ev.error and ev.state in ("error", "offline"):
            st.problem = sanitize_line(ev.error)
        elif ev.state in ("idle", "syncing"):
            st.problem = None
        if ev.needs:
            self.ask_password(ev.account)
        self.show_problem()

    def problem(self) -> tuple[str, AccountState] | None:
        """The account whose problem to show: the open one first."""
        accounts = self.status.info.accounts
        order = ([self.account] if self.account in accounts else []) + [a for a in accounts if a != self.account]
        for name in order:
            st = accounts[name]
            if st.problem and st.state in ("error", "offline", "connecting") and not self.tapp.offline:
                return name, st
        return None

    def show_problem(self) -> None:
        panel = self.query_one("#problem", ProblemPanel)
        hl = self.hlist
        found = self.problem()
        show = found is not None and (self.folder is None or not len(hl.uids))
        if show:
            name, st = found
            path = sanitize_line(str(self.tapp.config.path or "the config file"))
            text = Text()
            text.append(f"⚠ account {sanitize_line(name)} cannot sync\n\n", style="bold")
            text.append(st.problem + "\n\n")
            text.append(fix_hint(st, path), style="italic")
            panel.update(text)
        if self.has_class("problem") != show:
            # (the list and the reader make way: nothing to read, the panel takes the whole pane)
            self.set_class(show, "problem")
            if not show and self.focused is None:
                hl.focus()

    def ask_password(self, account: str) -> None:
        """The modal prompt, once per failure (the sync waits until the user answers or presses $)."""
        svc = self.tapp.services.get(account)
        acc = self.tapp.config.accounts.get(account)
        if svc is None or acc is None or account in self._prompting or getattr(acc, "oauth2_token_command", None):
            return
        if not hasattr(svc, "set_password"):
            return
        st = self.status.info.accounts.get(account) or AccountState()
        self._prompting.add(account)

        path = self.tapp.config.path
        save_to = sanitize_line(str(path)) if path is not None and st.needs == "password" else None

        def answered(answer: tuple[str, bool] | None) -> None:
            self._prompting.discard(account)
            if not answer:
                return
            password, save = answer
            svc.set_password(password)
            if save and path is not None:
                from tuimail.config.write import save_password
                from tuimail.errors import ConfigError
                try:
                    save_password(path, account, password)
                except ConfigError as exc:
                    self.notify(sanitize_line(str(exc)), severity="error", markup=False, timeout=10)
                else:
                    self.notify(f"password saved in {save_to}", markup=False)

        who = sanitize_strict(f"{acc.username}@{acc.host}")
        self.app.push_screen(PasswordScreen(sanitize_line(account), who, sanitize_line(st.error or ""), save_to),
                             answered)

    # ------------------------------------------------------------------ new mail

    def new_mail(self, ev: NewMail) -> None:
        if ev.account == self.account and self.folder is not None and ev.folder == self.folder.name:
            pass  # the list shows it
        else:
            key = (ev.account, ev.folder)
            self._new_mail[key] = self._new_mail.get(key, 0) + ev.count
        if self.tapp.config.ui.bell_on_new_mail:
            self.app.bell()
        self.show_new_mail()

    def folder_opened(self, account: str, name: str) -> None:
        if self._new_mail.pop((account, name), None) is not None:
            self.show_new_mail()

    def show_new_mail(self) -> None:
        many = len(self.tapp.stores) > 1
        names = [(f"{a}/" if many else "") + sanitize_strict(f) for (a, f) in self._new_mail]
        note = ""
        if names:
            more = f" +{len(names) - MAX_NOTED}" if len(names) > MAX_NOTED else ""
            note = "new mail in " + ", ".join(names[-MAX_NOTED:]) + more
        self.status.info.note = note
        self.update_status()
        if self.tapp.config.ui.title:
            set_title = getattr(self.app, "set_terminal_title", None)
            if set_title is not None:
                set_title(f"tuimail: {note}" if note else "tuimail")
