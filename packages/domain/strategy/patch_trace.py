"""Which operation of an RFC 6902 patch is answerable for a location of the patched document.

A problem found in a patched document is best reported against what the client sent. Alongside
the patch, a shadow of the document's tree records where every value came from:

- from the original document (untouched by the patch);
- from inside the ``value`` of an ``add`` / ``replace`` operation, and where inside it;
- placed by a ``move`` / ``copy`` operation.

Each object or array also remembers the last operation that added, removed or replaced one of its
members. ``TracedPatch.blame(pointer)`` then names, for a pointer into the patched document:

1. the operation whose ``value`` holds the location (with the pointer inside that value; a missing
   field is located where it belongs inside the value), unless a later operation changed the
   value's members there;
2. otherwise the operation that placed the value, or that last changed the members of the value at
   the location (a removed field, a removed exit) or of its parent (a sibling of the location, e.g.
   the other parameter of a conflicting pair);
3. otherwise nothing: no operation touched the location (the problem follows from the patch only
   indirectly, such as a reference to a removed factor, or it was there before).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from packages.domain.strategy.canonical import JsonPatch, apply_patch
from packages.domain.strategy.pointers import pointer_from_path, split_pointer


@dataclass(frozen=True)
class Blame:
    """The operation answerable for a location; ``value_pointer`` is where the location lies inside
    the operation's ``value`` ("" for the value itself), or None when the operation is answerable
    as a whole (it removed, moved or copied something)."""

    operation: int
    value_pointer: str | None


@dataclass(frozen=True)
class _FromDocument:
    pass


@dataclass(frozen=True)
class _FromValue:
    operation: int
    path: tuple[str, ...]


@dataclass(frozen=True)
class _Placed:
    operation: int


_Origin = _FromDocument | _FromValue | _Placed
_DOCUMENT = _FromDocument()


@dataclass(eq=False)
class _Node:
    origin: _Origin
    members: dict[str, _Node] | list[_Node] | None = None
    changed_by: int | None = None  # the last operation that added, removed or replaced a member

    def member(self, token: str) -> _Node | None:
        if isinstance(self.members, dict):
            return self.members.get(token)
        if isinstance(self.members, list) and token.isdigit() and int(token) < len(self.members):
            return self.members[int(token)]
        return None


def _mirror(value: Any, origin_of: Callable[[tuple[str, ...]], _Origin]) -> _Node:
    """The shadow of a JSON value (iterative: patch values are not depth-checked yet)."""
    root = _Node(origin_of(()))
    stack: list[tuple[Any, _Node, tuple[str, ...]]] = [(value, root, ())]
    while stack:
        item, node, path = stack.pop()
        if isinstance(item, dict):
            members: dict[str, _Node] = {}
            for key, child in item.items():
                members[key] = _Node(origin_of((*path, key)))
                stack.append((child, members[key], (*path, key)))
            node.members = members
        elif isinstance(item, list):
            elements = [_Node(origin_of((*path, str(index)))) for index in range(len(item))]
            stack.extend((child, elements[index], (*path, str(index))) for index, child in enumerate(item))
            node.members = elements
    return root


def _restamped(node: _Node, origin: _Origin) -> _Node:
    """A copy of a shadow subtree with every node given ``origin``."""
    root = _Node(origin)
    stack = [(node, root)]
    while stack:
        source, target = stack.pop()
        if isinstance(source.members, dict):
            target.members = {key: _Node(origin) for key in source.members}
            stack.extend((source.members[key], target.members[key]) for key in source.members)
        elif isinstance(source.members, list):
            target.members = [_Node(origin) for _ in source.members]
            stack.extend(zip(source.members, target.members, strict=True))
    return root


class TracedPatch:
    """A patched document and where each of its values came from."""

    def __init__(self, document: Any, patch: JsonPatch) -> None:
        self._root = _mirror(document, lambda path: _DOCUMENT)
        for index, operation in enumerate(patch):
            self._replay(index, operation)

    def blame(self, pointer: str) -> Blame | None:
        """The operation answerable for ``pointer`` of the patched document (rules in the module doc)."""
        tokens = split_pointer(pointer)
        parent: _Node | None = None
        node = self._root
        depth = 0
        while depth < len(tokens):
            member = node.member(tokens[depth])
            if member is None:
                break
            parent, node, depth = node, member, depth + 1
        origin = node.origin
        if node.changed_by is not None and (
            isinstance(origin, _FromDocument) or node.changed_by > origin.operation
        ):
            return Blame(node.changed_by, None)
        if isinstance(origin, _FromValue):
            return Blame(origin.operation, pointer_from_path((*origin.path, *tokens[depth:])))
        if isinstance(origin, _Placed):
            return Blame(origin.operation, None)
        # A sibling changed: the parent's members changed (the document root is everyone's parent,
        # so it says nothing about one location).
        if parent is not None and parent is not self._root and parent.changed_by is not None:
            return Blame(parent.changed_by, None)
        return None

    # replaying the operations on the shadow -------------------------------------------------------

    def _replay(self, index: int, operation: dict[str, Any]) -> None:
        kind = operation["op"]
        if kind == "test":
            return
        path = split_pointer(operation["path"])
        if kind == "remove":
            self._detach(path, index)
            return
        if kind in ("add", "replace"):
            node = _mirror(operation["value"], lambda inner: _FromValue(index, inner))
        else:
            source = split_pointer(operation["from"])
            moved = self._detach(source, index) if kind == "move" else self._find(source)
            node = _restamped(moved, _Placed(index))
        self._attach(path, node, index, replace=kind == "replace")

    def _find(self, path: list[str]) -> _Node:
        node = self._root
        for token in path:
            member = node.member(token)
            if member is None:
                raise ValueError(f"the shadow has no {pointer_from_path(path)}; the patch did not apply")
            node = member
        return node

    def _attach(self, path: list[str], node: _Node, index: int, *, replace: bool) -> None:
        if not path:
            self._root = node
            return
        parent = self._find(path[:-1])
        token = path[-1]
        if isinstance(parent.members, dict):
            parent.members[token] = node
        elif isinstance(parent.members, list):
            if token == "-":
                parent.members.append(node)
            elif replace:
                parent.members[int(token)] = node
            else:
                parent.members.insert(int(token), node)
        parent.changed_by = index

    def _detach(self, path: list[str], index: int) -> _Node:
        parent = self._find(path[:-1])
        token = path[-1]
        parent.changed_by = index
        if isinstance(parent.members, dict):
            return parent.members.pop(token)
        assert isinstance(parent.members, list)
        return parent.members.pop(int(token))


@dataclass(frozen=True)
class PatchedDocument:
    document: Any
    trace: TracedPatch = field(repr=False)


def apply_traced_patch(document: Any, patch: JsonPatch) -> PatchedDocument:
    """``apply_patch`` (same errors) plus the trace of where each value of the result came from."""
    return PatchedDocument(apply_patch(document, patch), TracedPatch(document, patch))
