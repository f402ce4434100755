"""Base of every request model, and the input rules all surfaces share."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator
from pydantic_core import PydanticCustomError


def find_nul(value: Any, pointer: str = "") -> str | None:
    """JSON pointer of the first string (or key) holding a NUL character, which PostgreSQL cannot store."""
    stack: list[tuple[Any, str]] = [(value, pointer)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return where
        elif isinstance(item, dict):
            for key, child in item.items():
                escaped = str(key).replace("~", "~0").replace("/", "~1")
                if "\x00" in str(key):
                    return f"{where}/{escaped}"
                stack.append((child, f"{where}/{escaped}"))
        elif isinstance(item, list | tuple):
            stack.extend((child, f"{where}/{index}") for index, child in enumerate(item))
    return None


class StrictModel(BaseModel):
    """Unknown fields are errors, and no string may carry a NUL character."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_nul_characters(cls, data: Any) -> Any:
        where = find_nul(data)
        if where is not None:
            # The pointer travels in the error context: a model-level error has no field location.
            raise PydanticCustomError(
                "nul_character",
                "text contains a NUL character (\\u0000), which cannot be stored",
                {"pointer": where},
            )
        return data
