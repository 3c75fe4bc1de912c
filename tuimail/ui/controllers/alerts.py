"""What the main screen tells the user without being asked (Alerts, held by MainScreen):

- a sync problem (refused login, unreachable host, TLS, no password) in a panel where the list
  would be, when there is no list to show, and in the status bar always; the password prompt when
  the login was refused or no password is configured (the sync does not retry a refused login on
  its own: servers lock accounts);
- new mail in other folders ("new mail in Work" in the status bar; the bell and the terminal title
  when configured).

(Changes another process wrote to the store are found by store_poll.py.)
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
from tuimail.ui.controllers.view import MainView
from tuimail.ui.widgets.status import AccountState

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
    (ImapService.set_password); written to the config only when the user ticks "save" (offered
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
    def __init__(self, view: MainView) -> None:
        self.view = view
        self._prompting: set[str] = set()
        self._new_mail: dict[tuple[str, str], int] = {}

    # ------------------------------------------------------------------ sync problems

    def sync_state_changed(self, ev: SyncState, st: AccountState) -> None:
        st.needs = ev.needs
        if ev.error and ev.state in ("error", "offline"):
            st.problem = sanitize_line(ev.error)
        elif ev.state in ("idle", "syncing"):
            st.problem = None
        if ev.needs:
            self.ask_password(ev.account)

    def problem(self) -> tuple[str, AccountState] | None:
        """The account whose problem to show: the open one first."""
        view = self.view
        accounts = view.status.info.accounts
        order = ([view.account] if view.account in accounts else []) + [a for a in accounts if a != view.account]
        for name in order:
            st = accounts[name]
            if st.problem and st.state in ("error", "offline", "connecting") and not view.tapp.offline:
                return name, st
        return None

    def problem_text(self) -> Text | None:
        """What the problem panel says, when it is to be shown (no list to show instead)."""
        view = self.view
        found = self.problem()
        if found is None or not ((view.folder is None and view.hlist.source is None) or not len(view.hlist.uids)):
            return None
        name, st = found
        path = sanitize_line(str(view.tapp.config.path or "the config file"))
        text = Text()
        text.append(f"⚠ account {sanitize_line(name)} cannot sync\n\n", style="bold")
        text.append((st.problem or "") + "\n\n")
        text.append(fix_hint(st, path), style="italic")
        return text

    def ask_password(self, account: str) -> None:
        """The modal prompt, once per failure (the sync waits until the user answers or presses $)."""
        view = self.view
        app = view.tapp
        svc = app.services.get(account)
        acc = app.config.accounts.get(account)
        if svc is None or acc is None or account in self._prompting or acc.oauth2_token_command:
            return
        set_password = getattr(svc, "set_password", None)
        if set_password is None:
            return
        st = view.status.info.accounts.get(account) or AccountState()
        self._prompting.add(account)

        path = app.config.path
        save_to = sanitize_line(str(path)) if path is not None and st.needs == "password" else None

        def answered(answer: tuple[str, bool] | None) -> None:
            self._prompting.discard(account)
            if not answer:
                return
            password, save = answer
            set_password(password)
            if save and path is not None:
                from tuimail.config.write import save_password
                from tuimail.errors import ConfigError
                try:
                    save_password(path, account, password)
                except ConfigError as exc:
                    view.notify(sanitize_line(str(exc)), severity="error", markup=False, timeout=10)
                else:
                    view.notify(f"password saved in {save_to}", markup=False)

        who = sanitize_strict(f"{acc.username}@{acc.host}")
        app.push_screen(PasswordScreen(sanitize_line(account), who, sanitize_line(st.error or ""), save_to),
                        answered)

    # ------------------------------------------------------------------ new mail

    def new_mail(self, ev: NewMail) -> None:
        view = self.view
        if ev.account == view.account and view.folder is not None and ev.folder == view.folder.name:
            pass  # the list shows it
        else:
            key = (ev.account, ev.folder)
            self._new_mail[key] = self._new_mail.get(key, 0) + ev.count
        if view.tapp.config.ui.bell_on_new_mail:
            view.tapp.bell()
        self.show_new_mail()

    def folder_opened(self, account: str, name: str) -> None:
        if self._new_mail.pop((account, name), None) is not None:
            self.show_new_mail()

    def show_new_mail(self) -> None:
        view = self.view
        app = view.tapp
        many = len(app.stores) > 1
        names = [(f"{a}/" if many else "") + sanitize_strict(f) for (a, f) in self._new_mail]
        note = ""
        if names:
            more = f" +{len(names) - MAX_NOTED}" if len(names) > MAX_NOTED else ""
            note = "new mail in " + ", ".join(names[-MAX_NOTED:]) + more
        view.status.info.note = note
        view.update_status()
        if app.config.ui.title:
            app.set_terminal_title(f"tuimail: {note}" if note else "tuimail")
