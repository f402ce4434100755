"""Why a stress test cannot run as asked, said so that a person or a model can fix the request."""

from __future__ import annotations


class StressInputError(ValueError):
    """A request the method cannot honour: ``code`` is stable, ``pointer`` names the input at fault
    (an RFC 6901 pointer into the request), ``message`` says how to fix it."""

    def __init__(self, code: str, pointer: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.pointer = pointer
        self.message = message
