"""Registration, login, rotating refresh tokens and MCP token issuance."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import IntegrityError

from packages.core.auth.repository import RefreshTokenRepository, UserRepository
from packages.core.auth.schemas import (
    AuthResponse,
    McpTokenResponse,
    TokenPair,
    UserOut,
)
from packages.core.errors import Conflict, FieldError, NotFound, Unauthorized, ValidationFailed
from packages.core.principal import Principal
from packages.core.uow import UnitOfWork
from packages.infra.db.models import RefreshToken, User
from packages.infra.security import passwords, tokens
from packages.shared_settings import MCP_DOMAINS, Settings

# Registration cannot hide that an email is taken without an email-verification loop, so its
# refusal is generic (it names no account) and, like login, it is rate limited per client address
# and per email (auth/limits.py): probing which emails have accounts is slowed, not made possible.
REGISTER_REFUSED = "Could not register with this email. If you already have an account, log in."


def user_out(user: User) -> UserOut:
    return UserOut(id=user.id, email=user.email, display_name=user.display_name, created_at=user.created_at)


def _now() -> datetime:
    return datetime.now(UTC)


class AuthService:
    def __init__(self, uow: UnitOfWork, settings: Settings) -> None:
        self.uow = uow
        self.settings = settings
        self.users = UserRepository(uow.session)
        self.refresh_tokens = RefreshTokenRepository(uow.session)

    async def register(self, email: str, password: str, display_name: str | None) -> AuthResponse:
        email = email.lower()
        if await self.users.by_email(email) is not None:
            raise Conflict(REGISTER_REFUSED)
        user = User(email=email, password_hash=passwords.hash_password(password), display_name=display_name)
        try:
            async with self.uow.session.begin_nested():
                await self.users.add(user)
        except IntegrityError as exc:
            raise Conflict(REGISTER_REFUSED) from exc
        await self.uow.session.refresh(user)
        return AuthResponse(
            user=user_out(user), tokens=await self._issue_pair(user.id, family_id=uuid.uuid4())
        )

    async def login(self, email: str, password: str) -> AuthResponse:
        user = await self.users.by_email(email.lower())
        # Hash even for unknown emails so response time does not reveal which emails exist.
        stored_hash = user.password_hash if user else _DUMMY_HASH
        if not passwords.verify_password(stored_hash, password) or user is None or not user.is_active:
            raise Unauthorized("Email or password is wrong.")
        if passwords.needs_rehash(user.password_hash):
            user.password_hash = passwords.hash_password(password)
        user.last_login_at = _now()
        return AuthResponse(
            user=user_out(user), tokens=await self._issue_pair(user.id, family_id=uuid.uuid4())
        )

    async def refresh(self, refresh_token: str) -> TokenPair:
        stored = await self.refresh_tokens.by_hash_for_update(tokens.hash_refresh_token(refresh_token))
        now = _now()
        if stored is None or stored.revoked_at is not None or stored.expires_at <= now:
            raise Unauthorized("The refresh token is invalid or expired; log in again.")
        if stored.used_at is not None:
            # A rotated token presented again means it leaked: end the whole login.
            await self.refresh_tokens.revoke_family(stored.family_id, now)
            await self.uow.commit_now()
            raise Unauthorized(
                "The refresh token was already used; every token of this login is now revoked."
            )
        stored.used_at = now
        user = await self.users.by_id(stored.user_id)
        if user is None or not user.is_active:
            raise Unauthorized("The account is disabled.")
        return await self._issue_pair(user.id, family_id=stored.family_id)

    async def logout(self, refresh_token: str) -> None:
        stored = await self.refresh_tokens.by_hash_for_update(tokens.hash_refresh_token(refresh_token))
        if stored is not None:
            await self.refresh_tokens.revoke_family(stored.family_id, _now())

    async def me(self, principal: Principal) -> UserOut:
        user = await self.users.by_id(principal.user_id)
        if user is None:
            raise NotFound("User not found.")
        return user_out(user)

    async def issue_mcp_token(
        self,
        principal: Principal,
        session_id: uuid.UUID | None,
        domains: list[str] | None,
        ttl_minutes: int | None,
    ) -> McpTokenResponse:
        chosen = tuple(domains) if domains else MCP_DOMAINS
        unknown = [d for d in chosen if d not in MCP_DOMAINS]
        if unknown:
            raise ValidationFailed(
                "Unknown MCP domain.",
                errors=[
                    FieldError(
                        "unknown_domain", f"/domains/{chosen.index(d)}", f"allowed: {', '.join(MCP_DOMAINS)}"
                    )
                    for d in unknown
                ],
            )
        if session_id is not None and not await self.users.owns_chat_session(principal.user_id, session_id):
            raise NotFound("Chat session not found.")
        auth = self.settings.auth
        ttl = timedelta(minutes=min(ttl_minutes or auth.mcp_token_minutes, auth.mcp_token_max_minutes))
        token, expires = tokens.issue_mcp_token(
            principal.user_id,
            secret=auth.mcp_token_secret.get_secret_value(),
            issuer=auth.issuer,
            ttl=ttl,
            domains=chosen,
            session_id=session_id,
        )
        return McpTokenResponse(
            token=token,
            expires_at=expires,
            session_id=session_id,
            servers={domain: self.settings.mcp.domain_url(domain) for domain in chosen},
        )

    async def _issue_pair(self, user_id: uuid.UUID, family_id: uuid.UUID) -> TokenPair:
        auth = self.settings.auth
        access, access_expires = tokens.issue_access_token(
            user_id,
            secret=auth.secret_key.get_secret_value(),
            issuer=auth.issuer,
            ttl=timedelta(minutes=auth.access_token_minutes),
        )
        refresh, refresh_hash = tokens.new_refresh_token()
        refresh_expires = _now() + timedelta(days=auth.refresh_token_days)
        await self.refresh_tokens.add(
            RefreshToken(
                user_id=user_id, family_id=family_id, token_hash=refresh_hash, expires_at=refresh_expires
            )
        )
        return TokenPair(
            access_token=access,
            access_token_expires_at=access_expires,
            refresh_token=refresh,
            refresh_token_expires_at=refresh_expires,
        )


_DUMMY_HASH = passwords.hash_password("not-a-real-password-used-for-timing")
