"""Layered settings loader shared by every Minsy service."""

from packages.shared_settings.loader import (
    ALLOWED_PROFILES,
    ALLOWED_SERVICES,
    SettingsError,
    resolve_env_layout,
)
from packages.shared_settings.settings import Settings, get_settings, reload_settings

__all__ = [
    "ALLOWED_PROFILES",
    "ALLOWED_SERVICES",
    "Settings",
    "SettingsError",
    "get_settings",
    "reload_settings",
    "resolve_env_layout",
]
