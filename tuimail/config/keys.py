"""Key bindings: every action has a name, a scope, a description and default keys.

Rebind any action in the config file's ``[keys]`` table with its name, e.g.::

    [keys]
    flag = "F"                      # one key
    cursor_down = ["j", "down", "ctrl+n"]   # several keys
    quit = []                       # unbind

Key strings are Textual's: a character (``"j"``, ``"G"``, ``"$"``, ``"?"``) or a name with
modifiers (``"ctrl+d"``, ``"pagedown"``, ``"home"``, ``"enter"``, ``"escape"``, ``"space"``,
``"comma"``). ``[ui] keymap = "mutt"`` starts from mutt's own bindings where they differ. A key
the table binds to two actions of one scope, or to a global action and a pane's, is a config error
(conflicts()), as is an unknown action name.

Scopes: ``global`` keys work anywhere in the main window (on the message under the list cursor,
or the open message when the reader has the focus); ``list`` keys when the header list has the
focus; ``pager`` keys when the message view has the focus; ``tree`` keys in the folder tree.
Tab / shift+Tab move the focus between the panes.

=================  =======  ==========================  =================================
action             scope    default keys                what it does
=================  =======  ==========================  =================================
quit               global   q                           leave tuimail
help               global   ?                           this key list
palette            global   :                           the command palette
sync               global   $                           sync every folder now
change_folder      global   c                           pick a folder to open
toggle_read        global   N                           mark read / unread
flag               global   F                           flag / unflag
delete             global   d                           move to Trash (in Trash: delete for good)
move               global   s                           move to a folder chosen in a picker
archive            global   a                           move to the Archive folder
pipe               global   |                           pipe the raw message to a command
attachments        global   v                           the attachment list (save/pipe/open)
full_headers       global   h                           show every header / the usual few
raw                global   ctrl+u                      the raw source of the message
toggle_layout      global   P                           preview right of / below the list
fullscreen         global   z                           the reader alone on screen
toggle_offline     global   ctrl+o                      work offline / go back online
failed_actions     global   !                           the Outbox; actions waiting or failed
compose            global   m                           write a new message in $EDITOR
reply              global   r                           reply to the sender
reply_all          global   R                           reply to all (mutt keymap: g)
reply_list         global   ctrl+l                      reply to the mailing list (mutt keymap: L)
forward            global   f                           forward inline
forward_attached   global   (none; the palette)         forward as an attachment
resume_draft       global   (none; the palette)         edit a postponed message again (mutt keymap: R)
undo               global   u                           undo the last action (or take back a send)
undo_history       global   U                           the undo history: pick an action to undo
undo_send          global   (none; u does it)           take back the message being sent
limit              global   l                           show only messages matching a pattern (all: every one)
search             global   /                           search the list forward for a pattern
search_backward    global   \\                           search the list backward
search_next        global   .                           the last search again, its way (mutt keymap: n)
search_prev        global   ,                           the last search again, the other way
search_all         global   S                           search all folders: the results as a virtual folder
tag                global   t                           tag / untag the message (a ``*`` in its row)
tag_pattern        global   T                           tag the messages matching a pattern (``~f ann ~U``)
untag_pattern      global   ctrl+t                      untag those matching a pattern (``~A``: all)
tag_thread         global   (none; the palette)         tag the whole thread (untag if all are tagged)
tag_prefix         global   ;                           the next key acts on every tagged message
copy               global   C                           copy to a folder chosen in a picker
save_file          global   w                           save to a file; appended to an mbox
read_thread        global   ctrl+r                      mark the whole thread read
delete_thread      global   ctrl+d                      move the whole thread to Trash
move_thread        global   M                           move the whole thread to a folder
mark_all_read      global   ctrl+a                      mark every message of the folder read
cursor_down        list     j, down                     next message
cursor_up          list     k, up                       previous message
page_down          list     pagedown                    one screen down
page_up            list     pageup                      one screen up
first              list     g, home                     first message
last               list     G, end                      last message
open               list     enter                       open the message in the reader
next_unread        list     n                           next unread message
sort               list     o                           next sort order (date, arrival, ...)
sort_reverse       list     O                           reverse the sort order
threaded           list     V                           threaded view on / off
collapse_thread    list     -                           collapse / expand this thread
collapse_all       list     _                           collapse / expand every thread
scroll_down        pager    j, down                     one line down
scroll_up          pager    k, up                       one line up
pager_page_down    pager    space, pagedown             one screen down
pager_page_up      pager    b, pageup                   one screen up
pager_top          pager    g, home                     top of the message
pager_bottom       pager    G, end                      end of the message
next_message       pager    J                           open the next message
prev_message       pager    K                           open the previous message
close              pager    q, escape                   back to the list
load_more          pager    L                           fetch the rest of a long message
open_link          pager    o                           open link N (asks for N)
copy_link          pager    y                           copy link N to the clipboard (OSC 52)
tree_down          tree     j                           next folder
tree_up            tree     k                           previous folder
=================  =======  ==========================  =================================

The ``mutt`` keymap changes: list ``first`` = ``=``/home, ``last`` = ``*``/end, ``page_down`` =
``z``/pagedown, ``page_up`` = ``Z``/pageup, ``next_unread`` = tab, ``open`` = enter/space;
pager ``next_message`` = j, ``prev_message`` = k, ``scroll_down`` = enter/down, ``scroll_up`` =
backspace/up, ``pager_page_up`` = ``-``/pageup, ``pager_top`` = ``^``/home, ``close`` =
q/i/escape; global ``fullscreen`` = ctrl+f, ``reply_all`` = g, ``reply_list`` = L, ``resume_draft`` = R,
``search_next`` = n (the reader's ``load_more`` moves to ``+``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# No Textual at import time: the config validator (below the UI) checks [keys] against this table.


@dataclass(frozen=True)
class Action:
    name: str
    scope: str  # "global" | "list" | "pager" | "tree"
    description: str
    keys: tuple[str, ...]
    method: str = ""  # the action method (defaults to the name)

    @property
    def action(self) -> str:
        return self.method or self.name


def _a(name, scope, description, *keys, method=""):
    return Action(name, scope, description, tuple(keys), method)


ACTIONS: tuple[Action, ...] = (
    _a("quit", "global", "Quit", "q"),
    _a("help", "global", "Help: every key", "?"),
    _a("palette", "global", "Command palette", ":", method="app.command_palette"),
    _a("sync", "global", "Sync every folder now", "$"),
    _a("change_folder", "global", "Change folder", "c"),
    _a("toggle_read", "global", "Toggle read / unread", "N"),
    _a("flag", "global", "Flag / unflag", "F"),
    _a("delete", "global", "Delete (to Trash)", "d"),
    _a("move", "global", "Move to folder", "s"),
    _a("archive", "global", "Archive", "a"),
    _a("pipe", "global", "Pipe message to a command", "|"),
    _a("attachments", "global", "Attachments", "v"),
    _a("full_headers", "global", "Full headers on / off", "h"),
    _a("raw", "global", "Raw message source", "ctrl+u"),
    _a("toggle_layout", "global", "Preview right / below", "P"),
    _a("fullscreen", "global", "Reader full screen", "z"),
    _a("toggle_offline", "global", "Offline / online", "ctrl+o"),
    _a("failed_actions", "global", "Outbox, pending and failed actions", "!"),
    _a("compose", "global", "Compose a new message", "m"),
    _a("reply", "global", "Reply", "r"),
    _a("reply_all", "global", "Reply to all", "R"),
    _a("reply_list", "global", "Reply to the list", "ctrl+l"),
    _a("forward", "global", "Forward (inline)", "f"),
    _a("forward_attached", "global", "Forward as attachment"),
    _a("resume_draft", "global", "Resume a draft (the message under the cursor)"),
    _a("undo", "global", "Undo the last action (or the send that waits)", "u"),
    _a("undo_history", "global", "Undo history", "U"),
    _a("undo_send", "global", "Undo send (while it waits)"),
    _a("limit", "global", "Limit the list to a pattern (all: every message)", "l"),
    _a("search", "global", "Search the list forward for a pattern", "/"),
    _a("search_backward", "global", "Search the list backward for a pattern", "\\"),
    _a("search_next", "global", "Search again (the same way)", "."),
    _a("search_prev", "global", "Search again (the other way)", ","),
    _a("search_all", "global", "Search all folders (a virtual folder)", "S"),
    _a("tag", "global", "Tag / untag", "t"),
    _a("tag_pattern", "global", "Tag by pattern", "T"),
    _a("untag_pattern", "global", "Untag by pattern (~A: all)", "ctrl+t"),
    _a("tag_thread", "global", "Tag / untag the thread"),
    _a("tag_prefix", "global", "Apply the next action to the tagged messages", ";"),
    _a("copy", "global", "Copy to folder", "C"),
    _a("save_file", "global", "Save to a file or mbox", "w"),
    _a("read_thread", "global", "Mark the thread read", "ctrl+r"),
    _a("delete_thread", "global", "Delete the thread (to Trash)", "ctrl+d"),
    _a("move_thread", "global", "Move the thread to a folder", "M"),
    _a("mark_all_read", "global", "Mark every message of the folder read", "ctrl+a"),
    _a("cursor_down", "list", "Next message", "j", "down"),
    _a("cursor_up", "list", "Previous message", "k", "up"),
    _a("page_down", "list", "Page down", "pagedown"),
    _a("page_up", "list", "Page up", "pageup"),
    _a("first", "list", "First message", "g", "home"),
    _a("last", "list", "Last message", "G", "end"),
    _a("open", "list", "Open message", "enter"),
    _a("next_unread", "list", "Next unread", "n"),
    _a("sort", "list", "Next sort order", "o"),
    _a("sort_reverse", "list", "Reverse sort order", "O"),
    _a("threaded", "list", "Threaded view on / off", "V"),
    _a("collapse_thread", "list", "Collapse / expand thread", "-"),
    _a("collapse_all", "list", "Collapse / expand all threads", "_"),
    _a("scroll_down", "pager", "Line down", "j", "down"),
    _a("scroll_up", "pager", "Line up", "k", "up"),
    _a("pager_page_down", "pager", "Page down", "space", "pagedown"),
    _a("pager_page_up", "pager", "Page up", "b", "pageup"),
    _a("pager_top", "pager", "Top of message", "g", "home"),
    _a("pager_bottom", "pager", "End of message", "G", "end"),
    _a("next_message", "pager", "Next message", "J", method="screen.next_message"),
    _a("prev_message", "pager", "Previous message", "K", method="screen.prev_message"),
    _a("close", "pager", "Back to the list", "q", "escape", method="screen.close"),
    _a("load_more", "pager", "Load the rest of the message", "L", method="screen.load_more"),
    _a("open_link", "pager", "Open link N", "o", method="screen.open_link"),
    _a("copy_link", "pager", "Copy link N (OSC 52)", "y", method="screen.copy_link"),
    _a("tree_down", "tree", "Next folder", "j", method="cursor_down"),
    _a("tree_up", "tree", "Previous folder", "k", method="cursor_up"),
)

BY_NAME: dict[str, Action] = {a.name: a for a in ACTIONS}

MUTT: dict[str, tuple[str, ...]] = {
    "first": ("=", "home"),
    "last": ("*", "end"),
    "page_down": ("z", "pagedown"),
    "page_up": ("Z", "pageup"),
    "next_unread": ("tab",),
    "open": ("enter", "space"),
    "next_message": ("j",),
    "prev_message": ("k",),
    "scroll_down": ("enter", "down"),
    "scroll_up": ("backspace", "up"),
    "pager_page_up": ("-", "pageup"),
    "pager_top": ("^", "home"),
    "close": ("q", "i", "escape"),
    "fullscreen": ("ctrl+f",),
    "reply_all": ("g",),
    "reply_list": ("L",),
    "resume_draft": ("R",),
    "load_more": ("+",),
    "search_next": ("n",),
}

PRESETS = {"default": {}, "mutt": MUTT}


def _key(k: str) -> str:
    return {",": "comma", " ": "space", ";": "semicolon"}.get(k, k)


def effective_keys(preset: str = "default", overrides: Mapping[str, tuple[str, ...]] | None = None
                   ) -> dict[str, tuple[str, ...]]:
    """Action name -> keys, after the preset and the user's [keys] table."""
    out = {a.name: a.keys for a in ACTIONS}
    out.update(PRESETS.get(preset, {}))
    for name, keys in (overrides or {}).items():
        if name in out:
            out[name] = tuple(dict.fromkeys(keys))  # ["j", "j"] is one key (help lists it once)
    return out


def unknown_actions(overrides: Mapping[str, object]) -> list[str]:
    return [name for name in overrides if name not in BY_NAME]


# Textual's names of the punctuation keys: "?" and "question_mark" are one key to the conflict check
_SAME = {"?": "question_mark", ":": "colon", "$": "dollar_sign", "|": "vertical_line", "-": "minus",
         "_": "underscore", "=": "equals_sign", "*": "asterisk", "^": "circumflex_accent", "comma": ",",
         "space": " ", "+": "plus", "/": "slash", ".": "full_stop", "\\": "backslash", "!": "exclamation_mark",
         "tab": "ctrl+i", "enter": "ctrl+m",
         ";": "semicolon"}


def _shadows(a: str, b: str) -> bool:
    """Whether one key on actions of scopes a and b makes one of them unreachable: the same scope,
    or a global action against a pane's (the focused pane's binding wins)."""
    return a == b or "global" in (a, b)


def _pairs(eff: Mapping[str, tuple[str, ...]]) -> dict[tuple[str, str, str], None]:
    by_key: dict[str, list[Action]] = {}
    for a in ACTIONS:
        for k in dict.fromkeys(_SAME.get(k, k) for k in eff.get(a.name, ())):
            by_key.setdefault(k, []).append(a)
    out: dict[tuple[str, str, str], None] = {}
    for k, acts in by_key.items():
        for i, x in enumerate(acts):
            for y in acts[i + 1:]:
                if _shadows(x.scope, y.scope):
                    out[(k, x.name, y.name)] = None
    return out


def conflicts(preset: str = "default", overrides: Mapping[str, tuple[str, ...]] | None = None
              ) -> list[tuple[str, str, str]]:
    """(key, action, other action) for each key the user's [keys] table binds to two actions that
    shadow each other. The presets' own pairs (q: quit, and close in the reader) are by design."""
    built_in = _pairs(effective_keys(preset))
    return [p for p in _pairs(effective_keys(preset, overrides)) if p not in built_in]


_UNBOUND = "\x00unbound"  # a key no terminal sends: how an action is unbound through the keymap


def keymap(preset: str = "default", overrides: Mapping[str, tuple[str, ...]] | None = None) -> dict[str, str]:
    """The Textual keymap (binding id -> "key1,key2") for App.set_keymap."""
    eff = effective_keys(preset, overrides)
    out = {}
    for a in ACTIONS:
        keys = eff[a.name]
        if keys != a.keys:
            out[a.name] = ",".join(_key(k) for k in keys) or _UNBOUND
    return out


def display_key(k: str) -> str:
    return {"space": "Space", "enter": "Enter", "escape": "Esc", "pagedown": "PgDn", "pageup": "PgUp",
            "home": "Home", "end": "End", "down": "↓", "up": "↑", "tab": "Tab",
            "backspace": "BkSp"}.get(k, k.replace("ctrl+", "^") if k.startswith("ctrl+") and len(k) == 6 else k)
