"""Base of every request model, and the input rules all surfaces share."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator
from pydantic_core import PydanticCustomError

from packages.core.errors import FieldError, ValidationFailed

# NUL, which PostgreSQL text and JSONB cannot hold, and UTF-16 surrogates: JSON's "\ud800" escape
# decodes to one when it is not half of a pair, and no UTF-8 encoder (asyncpg's, the API's JSON
# responses) can write it.
_UNSTORABLE_CHARACTER = re.compile("[\x00\ud800-\udfff]")


@dataclass(frozen=True)
class UnstorableText:
    """Where text that cannot be stored was found, and what it holds.

    ``pointer`` names the string; for an object key it names the object holding the key, since
    a pointer spelling out the key could not itself be written.
    """

    pointer: str
    code: str
    message: str


def _describe(text: str, in_key: bool) -> tuple[str, str] | None:
    found = _UNSTORABLE_CHARACTER.search(text)
    if found is None:
        return None
    character = found.group()
    if character == "\x00":
        code, what = "nul_character", "a NUL character (\\u0000)"
    else:
        code, what = (
            "lone_surrogate",
            f"a lone surrogate (\\u{ord(character):04x}), which is not Unicode text",
        )
    where = f"the key {text!a}" if in_key else "text"
    return code, f"{where} contains {what} and cannot be stored"


def find_unstorable_text(value: Any, pointer: str = "") -> UnstorableText | None:
    """The first string or object key (depth first) holding a character no store can keep."""
    stack: list[tuple[Any, str]] = [(value, pointer)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            problem = _describe(item, in_key=False)
            if problem is not None:
                return UnstorableText(where, *problem)
        elif isinstance(item, dict):
            for key, child in item.items():
                text = str(key)
                problem = _describe(text, in_key=True)
                if problem is not None:
                    return UnstorableText(where, *problem)
                escaped = text.replace("~", "~0").replace("/", "~1")
                stack.append((child, f"{where}/{escaped}"))
        elif isinstance(item, list | tuple):
            stack.extend((child, f"{where}/{index}") for index, child in enumerate(item))
    return None


def refuse_unstorable_text(value: Any, pointer: str) -> None:
    """Raise ``ValidationFailed`` (422) when ``value``, found at ``pointer`` of the input, holds
    text that cannot be stored; for inputs that reach a service without a ``StrictModel``."""
    found = find_unstorable_text(value, pointer)
    if found is not None:
        raise ValidationFailed(
            f"The input holds text that cannot be stored at {found.pointer or '/'}; remove the character.",
            errors=[FieldError(found.code, found.pointer, found.message)],
        )


class StrictModel(BaseModel):
    """Unknown fields are errors, and no string may carry a NUL character or a lone surrogate."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _only_storable_text(cls, data: Any) -> Any:
        found = find_unstorable_text(data)
        if found is not None:
            # The pointer travels in the error context: a model-level error has no field location.
            # The message (which may quote a key) goes in as a context value, never as the template,
            # so braces in the caller's text are not read as placeholders.
            context = {"pointer": found.pointer, "message": found.message}
            raise PydanticCustomError(found.code, "{message}", context)
        return data
