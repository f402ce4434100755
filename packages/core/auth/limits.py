"""How many register, login and refresh attempts the API accepts, and from whom.

Each attempt counts against its client address, so one client trying many accounts (password
spraying, probing which emails are registered) is slowed; login and register also count against
the email, so many clients trying one account are slowed too. The client address is the TCP peer,
or the address a trusted proxy forwarded (API_TRUSTED_PROXIES; uvicorn resolves it before the app
sees the request). IPv6 clients are counted per /64, the block one subscriber usually holds.
"""

from __future__ import annotations

import hashlib
import ipaddress
from typing import Literal

from packages.core.rate_limit import Limit, enforce_rate_limits
from packages.core.resources import Resources

WINDOW_S = 60
Action = Literal["register", "login", "refresh"]


def client_key(host: str) -> str:
    """The client's address, or its /64 network for IPv6 (an attacker rotating within it stays one client)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host or "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def email_key(email: str) -> str:
    """Emails are counted by digest, so Redis holds no addresses; case does not make a new account."""
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


async def limit_attempts(
    resources: Resources, action: Action, client_host: str, *, email: str | None = None
) -> None:
    amount = resources.settings.auth.attempts_per_minute
    limits = [Limit(f"{action}:client", client_key(client_host), amount, WINDOW_S)]
    if email is not None:
        limits.append(Limit(f"{action}:email", email_key(email), amount, WINDOW_S))
    await enforce_rate_limits(resources.redis, *limits)
