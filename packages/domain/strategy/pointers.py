"""RFC 6901 JSON pointers: how every validation error and tunable parameter names its location."""

from __future__ import annotations

from collections.abc import Iterable


def escape_token(token: str | int) -> str:
    return str(token).replace("~", "~0").replace("/", "~1")


def unescape_token(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def join_pointer(base: str, *tokens: str | int) -> str:
    """``join_pointer("/trade", "long", 0)`` -> ``"/trade/long/0"`` (tokens escaped)."""
    return base + "".join("/" + escape_token(token) for token in tokens)


def pointer_from_path(path: Iterable[str | int]) -> str:
    return join_pointer("", *path)


def split_pointer(pointer: str) -> list[str]:
    """Unescaped reference tokens of ``pointer``; ``""`` (the whole document) has none."""
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise ValueError(f"JSON pointer must be empty or start with '/': {pointer!r}")
    return [unescape_token(token) for token in pointer[1:].split("/")]
