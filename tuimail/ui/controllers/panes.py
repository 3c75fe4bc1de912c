"""Which of the main screen's panes show, and where (Panes, held by MainScreen): the preview
right of the list or below it (the config's `preview`, below on a narrow terminal, or the user's
choice), the reader full screen, and the problem panel in place of the list and the reader when
an account cannot sync and there is nothing to read. The screen's CSS does the drawing: this
sets its classes."""

from __future__ import annotations

from tuimail.ui.controllers.alerts import Alerts, ProblemPanel
from tuimail.ui.controllers.view import MainView

NARROW = 160  # below this width a "right" preview goes below the list
NARROW_TREE = 100  # below this width the folder tree is narrower


class Panes:
    def __init__(self, view: MainView, alerts: Alerts) -> None:
        self.view, self.alerts = view, alerts
        self.choice: str | None = None  # set by toggle; None = config + width

    def apply(self) -> None:
        view = self.view
        width = view.tapp.size.width
        choice = self.choice or view.tapp.config.ui.preview
        if self.choice is None and choice == "right" and width < NARROW:
            choice = "below"
        panes = view.query_one("#panes")
        panes.set_class(choice == "right", "right")
        panes.set_class(choice == "below", "below")
        view.set_class(width < NARROW_TREE, "narrow")

    def toggle(self) -> None:
        """The preview right of the list or below it."""
        self.choice = "below" if self.view.query_one("#panes").has_class("right") else "right"
        self.apply()

    def fullscreen(self) -> None:
        view = self.view
        view.toggle_class("fullscreen")
        if view.has_class("fullscreen"):
            view.reader.focus()
        else:
            view.hlist.focus()

    def close(self) -> None:
        """Back to the list (from the reader, full screen or not)."""
        view = self.view
        if view.has_class("fullscreen"):
            view.set_class(False, "fullscreen")
        view.hlist.focus()

    def show_problem(self) -> None:
        """A sync problem, in a panel where the list would be when there is no list to show."""
        view = self.view
        text = self.alerts.problem_text()
        show = text is not None
        if text is not None:
            view.query_one("#problem", ProblemPanel).update(text)
        if view.has_class("problem") != show:
            # (the list and the reader make way: nothing to read, the panel takes the whole pane)
            view.set_class(show, "problem")
            if not show and view.focused is None:
                view.hlist.focus()
