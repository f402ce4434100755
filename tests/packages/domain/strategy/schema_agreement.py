"""Validation decides "valid?" with the compiled schema validator alone; it must agree with the
reference validator (which explains the errors) on every document, or an invalid one would pass."""

from __future__ import annotations

from typing import Any

from packages.domain.strategy.limits import DEFAULT_LIMITS
from packages.domain.strategy.validation import _fast_validator, _validator


def validators_agree(document: Any) -> bool:
    reference_valid = not list(_validator(DEFAULT_LIMITS).iter_errors(document))
    return bool(_fast_validator(DEFAULT_LIMITS).is_valid(document) == reference_valid)
