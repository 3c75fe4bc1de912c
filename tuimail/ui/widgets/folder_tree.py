"""The folder tree: one top-level node per account; role folders first, then the hierarchy."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Self
from dataclasses import dataclass

from rich.style import Style
from rich.text import Text
from textual.geometry import Region
from textual.strip import Strip
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from tuimail.mail.sanitize import sanitize_line
from tuimail.store.store import ROLES, FolderInfo
from tuimail.ui import keys

ROLE_NAMES = {"inbox": "Inbox", "drafts": "Drafts", "sent": "Sent", "archive": "Archive",
              "junk": "Junk", "trash": "Trash"}


@dataclass(frozen=True)
class FolderRef:
    account: str
    folder_id: int | None = None  # None: the account node, or a folder that cannot be selected
    name: str | None = None  # the folder's full (server) name
    search: str | None = None  # a search across folders (a virtual folder under [searches])


def folder_label(info: FolderInfo | None, text: str, unread: int = 0) -> Text:
    """The label of a folder node: its name, the unread count in bold, and a mark when the server
    refused the folder (⚠; the reason is in the status bar when it is highlighted or open) or
    it is gone from the server with failed actions on it."""
    label = Text(sanitize_line(text) or "?")
    if unread:
        label.stylize("bold")
        label.append(f" {unread}", style="bold")
    if info is not None and info.gone:
        label.stylize("dim")
        label.append(" (gone)", style="dim")
    elif info is not None and info.error:
        label.append(" ⚠", style="bold red")
    return label


def order_folders(folders: Iterable[FolderInfo]) -> list[tuple[int, FolderInfo | None, str, str]]:
    """(depth, info or None for a missing parent, display text, full path key) in tree order.

    Role folders come first in the order of ROLES; the rest follow by name; children under their
    parent by the hierarchy delimiter.
    """
    folders = list(folders)
    by_name = {f.name: f for f in folders}
    children: dict[str | None, list[str]] = {}
    nodes: dict[str, FolderInfo | None] = {}

    def parent_of(name: str, delim: str | None) -> str | None:
        if delim and delim in name:
            return name.rsplit(delim, 1)[0]
        return None

    def add(name: str, delim: str | None) -> None:
        if name in nodes:
            return
        nodes[name] = by_name.get(name)
        parent = parent_of(name, delim)
        if parent is not None and parent:
            add(parent, delim)
        children.setdefault(parent or None, []).append(name)

    for f in folders:
        add(f.name, f.delimiter)

    def sort_key(name: str) -> tuple[int, int, str]:
        info = nodes.get(name)
        if info is not None and info.role in ROLES:
            return (0, ROLES.index(info.role), "")
        return (1, 0, name.casefold())

    out: list[tuple[int, FolderInfo | None, str, str]] = []

    def walk(parent: str | None, depth: int) -> None:
        for name in sorted(children.get(parent, []), key=sort_key):
            info = nodes[name]
            if info is not None and info.role and depth == 0:
                text = ROLE_NAMES.get(info.role, info.display_name())
            elif info is not None:
                text = info.display_name()
            else:
                delim = next((f.delimiter for f in folders if f.delimiter and f.name.startswith(name)), None)
                text = name.rsplit(delim, 1)[-1] if delim else name
            out.append((depth, info, text, name))
            walk(name, depth + 1)

    walk(None, 0)
    return out


class FolderTree(Tree[FolderRef]):
    BINDINGS = keys.bindings("tree")

    DEFAULT_CSS = """
    FolderTree { background: $panel; padding: 0; scrollbar-size-vertical: 1; }
    /* Tree's own guide colours are the surface's, lightened: black with an ANSI theme (11.7) */
    FolderTree > .tree--guides, FolderTree > .tree--guides-hover, FolderTree:focus > .tree--guides,
    FolderTree:focus > .tree--guides-hover, FolderTree:light > .tree--guides,
    FolderTree:light > .tree--guides-hover, FolderTree:ansi > .tree--guides { color: $tuimail-guides; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("accounts", id=id)
        self.show_root = False
        self.guide_depth = 2
        self._accounts: dict[str, TreeNode[FolderRef]] = {}
        self._folder_nodes: dict[tuple[str, int], TreeNode[FolderRef]] = {}
        self._names: dict[str, tuple[str, ...]] = {}
        self._texts: dict[tuple[str, int], str] = {}
        self._unread: dict[tuple[str, int], int] = {}
        # what each label shows now: (text, unread, gone, refused), and the account's unread sum
        self._label_keys: dict[tuple[str, int], tuple[str, int, bool, bool]] = {}
        self._account_unread: dict[str, int] = {}
        self._searches: TreeNode[FolderRef] | None = None  # the [searches] node (virtual folders)
        self._search_nodes: dict[str, TreeNode[FolderRef]] = {}
        self._search_counts: dict[str, int | None] = {}

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self.__dict__.pop("_base_style_cache", None)

    @property
    def _base_style(self) -> Style:
        """self.rich_style, computed once per style change: Textual derives it from the CSS of
        every ancestor on each call, and Tree asks for it once per line (two thirds of a repaint
        of the tree, as when the folders come in at the end of a first sync)."""
        base = self.__dict__.get("_base_style_cache")
        if base is None:
            base = self.__dict__["_base_style_cache"] = self.rich_style
        return base

    def render_line(self, y: int) -> Strip:
        # Tree.render_line with the base style kept (above)
        scroll_x, scroll_y = self.scroll_offset
        return self._render_line(y + scroll_y, scroll_x, scroll_x + self.size.width, self._base_style)

    # Tree lays out the whole screen whenever its lines change (a node added or removed, its
    # virtual size): ~5 ms of the UI thread beside the tree's own repaint, at the end of a first
    # sync. Its place on the screen is set by CSS, so only a scrollbar coming or going needs it.
    _lines_changing = False

    def _invalidate(self) -> None:
        self._lines_changing = True
        try:
            super()._invalidate()
        finally:
            self._lines_changing = False

    def _build(self) -> None:
        self._lines_changing = True
        try:
            super()._build()
        finally:
            self._lines_changing = False

    def refresh(self, *regions: Region, repaint: bool = True, layout: bool = False,
                recompose: bool = False) -> Self:
        if layout and self._lines_changing and not recompose and self._keeps_its_place():
            layout = False
        return super().refresh(*regions, repaint=repaint, layout=layout, recompose=recompose)

    def _keeps_its_place(self) -> bool:
        """New lines need no layout: the tree is laid out, sized by CSS (not by its lines) and
        shows no scrollbar before or after."""
        if not self.is_mounted or not self.container_size or self._layout_required:
            return False
        st = self.styles
        if st.width is None or st.width.is_auto or (st.height is not None and st.height.is_auto):
            return False
        if self.show_vertical_scrollbar or self.show_horizontal_scrollbar:
            return False
        width, height = self.container_size
        virtual = self.virtual_size
        return not (st.overflow_y == "scroll" or (st.overflow_y == "auto" and virtual.height > height)
                    or st.overflow_x == "scroll" or (st.overflow_x == "auto" and virtual.width > width))

    def set_account(self, account: str, folders: list[FolderInfo]) -> None:
        """Build or refresh an account's subtree. If the folder set is unchanged only labels change
        (the cursor and the expansion stay where they are)."""
        names = tuple(sorted(f.name for f in folders))
        node = self._accounts.get(account)
        for f in folders:
            self._unread[(account, f.id)] = f.unread
        if node is not None and self._names.get(account) == names:
            # only counts or marks changed: the labels that differ are set, in place (no rebuild,
            # and the account's label, which every line of its subtree repaints with, once)
            for f in folders:
                self._set_folder_label(account, f.id, f)
            self._relabel_account(account)
            return
        expanded: set[str] = set()
        if node is None:  # (above the [searches] node, when there is one)
            node = self.root.add(Text(""), FolderRef(account), expand=True, before=self._searches)
            self._accounts[account] = node
        elif self._merge(account, node, folders):
            self._names[account] = names
            self._relabel_account(account)
            return
        else:
            expanded = {n.data.name for n in self._iter(node) if n.is_expanded and n.data and n.data.name}
            node.remove_children()
            for key in [k for k in self._folder_nodes if k[0] == account]:
                del self._folder_nodes[key]
                self._unread.pop(key, None)
                self._label_keys.pop(key, None)
            for f in folders:
                self._unread[(account, f.id)] = f.unread
        self._names[account] = names
        stack: list[TreeNode[FolderRef]] = [node]
        for depth, info, text, name in order_folders(folders):
            del stack[depth + 1:]
            parent = stack[-1]
            ref = FolderRef(account, info.id if info is not None and info.selectable else None, name)
            child = parent.add(folder_label(info, text, info.unread if info else 0), ref,
                               expand=(name in expanded) or not expanded)
            child.allow_expand = False
            if parent is not node:
                parent.allow_expand = True
            if info is not None:
                self._folder_nodes[(account, info.id)] = child
                self._texts[(account, info.id)] = text
                self._label_keys[(account, info.id)] = (text, info.unread, info.gone, bool(info.error))
            stack.append(child)
        self._relabel_account(account)

    def _merge(self, account: str, node: TreeNode[FolderRef], folders: list[FolderInfo]) -> bool:
        """The account's subtree follows a changed folder set in place (the end of a first sync
        brings the folders beside INBOX): gone folders' nodes removed, new ones inserted where
        order_folders puts them, the rest kept with their cursor and expansion and relabelled
        only if their label changed. False (nothing touched) when a kept folder would move: the
        caller rebuilds."""
        have = {n.data.name: n for n in self._iter(node) if n.data is not None and n.data.name}
        want = order_folders(folders)
        names = {name for _d, _i, _t, name in want}
        parents: dict[str, str | None] = {}  # wanted parent of every wanted folder (None: the account)
        kept: dict[int, list[str]] = {}  # id(parent node) -> its kept children's names, in order
        path: list[str] = []
        for depth, _info, _text, name in want:
            del path[depth:]
            parents[name] = path[-1] if path else None
            path.append(name)
        for name, n in have.items():
            if name not in names:
                continue
            parent = n.parent
            p_name = parent.data.name if parent is not None and parent is not node and parent.data else None
            if parent is None or p_name != parents[name]:
                return False
        for _d, _i, _t, name in want:
            if name in have:
                parent = have[name].parent
                assert parent is not None
                kept.setdefault(id(parent), []).append(name)
        for n in [node, *have.values()]:
            children = [c.data.name for c in n.children if c.data is not None and c.data.name in names]
            if children != kept.get(id(n), []):
                return False
        for name, n in have.items():
            if name not in names:
                n.remove()
        for key in [k for k in self._folder_nodes if k[0] == account]:
            ref = self._folder_nodes[key].data
            if ref is None or ref.name not in names:
                del self._folder_nodes[key]
                self._unread.pop(key, None)
                self._label_keys.pop(key, None)
                self._texts.pop(key, None)
        placed: dict[int, int] = {}  # id(parent node) -> children placed so far
        nodes: dict[str, TreeNode[FolderRef]] = {}
        for _depth, info, text, name in want:
            p = parents[name]
            parent = node if p is None else nodes[p]
            at = placed.get(id(parent), 0)
            placed[id(parent)] = at + 1
            ref = FolderRef(account, info.id if info is not None and info.selectable else None, name)
            child = have.get(name)
            if child is None:
                # (expanded: only a node the user collapsed hides its children)
                child = parent.add(folder_label(info, text, info.unread if info else 0), ref, before=at,
                                   expand=True, allow_expand=False)
                if parent is not node:
                    parent.allow_expand = True
                if info is not None:
                    self._label_keys[(account, info.id)] = (text, info.unread, info.gone, bool(info.error))
            elif child.data != ref:
                child.data = ref
            nodes[name] = child
            if info is not None:
                self._folder_nodes[(account, info.id)] = child
                self._texts[(account, info.id)] = text
                self._set_folder_label(account, info.id, info)
        return True

    def _relabel_account(self, account: str) -> None:
        node = self._accounts.get(account)
        if node is None:
            return
        unread = sum(n for (acct, _fid), n in self._unread.items() if acct == account)
        if self._account_unread.get(account) == unread:
            return  # the same label: setting it would repaint every line of the account
        self._account_unread[account] = unread
        t = Text(sanitize_line(account), style="bold")
        if unread:
            t.append(f" {unread}")
        self._set_label(node, t)

    def _set_label(self, node: TreeNode[FolderRef], label: Text) -> None:
        """node.set_label, repainting the node's own line only: TreeNode.set_label repaints every
        line below it too (their guides follow the node's hover and cursor, not its label), and
        the account's line, relabelled with every unread count, is above all its folders."""
        if node._line < 0 or self._tree_lines_cached is None:
            node.set_label(label)
            return
        node._updates += 1
        node._label = self.process_label(label)
        self._refresh_line(node._line)

    def _iter(self, node: TreeNode[FolderRef]) -> Iterator[TreeNode[FolderRef]]:
        for c in node.children:
            yield c
            yield from self._iter(c)

    def update_counts(self, account: str, folder_id: int, info: FolderInfo) -> None:
        n = self._folder_nodes.get((account, folder_id))
        if n is None:
            return
        self._unread[(account, folder_id)] = info.unread
        self._set_folder_label(account, folder_id, info)
        self._relabel_account(account)

    def _set_folder_label(self, account: str, folder_id: int, info: FolderInfo) -> None:
        """The folder's label, set only when what it shows changed (a set label repaints its line)."""
        n = self._folder_nodes.get((account, folder_id))
        if n is None:
            return
        text = self._texts.get((account, folder_id), info.display_name())
        key = (text, info.unread, info.gone, bool(info.error))
        if self._label_keys.get((account, folder_id)) == key:
            return
        self._label_keys[(account, folder_id)] = key
        self._set_label(n, folder_label(info, text, info.unread))

    def set_searches(self, items: list[tuple[str, int | None]]) -> None:
        """The [searches] node: one virtual folder per search, with its count (None: not counted
        yet). Labels are set in place when the same searches come again."""
        if not items and self._searches is None:
            return
        if self._searches is None:
            self._searches = self.root.add(Text("[searches]", style="bold"), FolderRef(""), expand=True)
        names = [n for n, _c in items]
        if list(self._search_nodes) != names:
            self._searches.remove_children()
            self._search_nodes, self._search_counts = {}, {}
            for name, _c in items:
                node = self._searches.add(Text(""), FolderRef("", search=name))
                node.allow_expand = False
                self._search_nodes[name] = node
        for name, count in items:
            if name in self._search_counts and self._search_counts[name] == count:
                continue  # (a label set again repaints its line)
            self._search_counts[name] = count
            label = Text(sanitize_line(name) or "?")
            if count is not None:
                label.append(f" {count}", style="bold" if count else "dim")
            self._search_nodes[name].set_label(label)

    def select_search(self, name: str) -> None:
        n = self._search_nodes.get(name)
        if n is not None:
            self.call_after_refresh(self.move_cursor, n, False)

    def select_folder(self, account: str, folder_id: int) -> None:
        n = self._folder_nodes.get((account, folder_id))
        if n is None:
            return
        p = n.parent
        while p is not None:
            p.expand()
            p = p.parent
        # the tree builds its lines on refresh: a node added just now has no line yet
        self.call_after_refresh(self.move_cursor, n, False)
