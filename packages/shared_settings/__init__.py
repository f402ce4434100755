"""Layered settings loader shared by every Minsy service."""

from packages.shared_settings.loader import (
    ALLOWED_PROFILES,
    ALLOWED_SERVICES,
    SettingsError,
    resolve_env_layout,
)
from packages.shared_settings.names import MCP_DOMAINS
from packages.shared_settings.settings import Settings, get_settings, reload_settings

__all__ = [
    "ALLOWED_PROFILES",
    "ALLOWED_SERVICES",
    "MCP_DOMAINS",
    "Settings",
    "SettingsError",
    "get_settings",
    "reload_settings",
    "resolve_env_layout",
]
