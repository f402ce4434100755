"""Confirmations the model cannot give itself.

A money-moving action (create or start a deployment, a manual open, raising risk limits) is first
stored as a *confirmation*: the exact action as canonical JSON, its SHA-256 (``action_hash``), a
preview for the user, and the SHA-256 of a random single-use token, which only the requester sees.
It runs when the user presents the token with their own API access token (``POST
/confirmations/{token}``; MCP tokens are refused there) or answers yes to an MCP elicitation. A
token expires, is used once, and is bound to its action: when the state the action was computed
from has changed by the time it is confirmed (the action would no longer be the one previewed), the
confirmation is refused and a new one is needed. Issuing, confirming and every refusal are audited.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy.exc import IntegrityError

from packages.core.errors import Conflict, FieldError, NotFound, RateLimited, ValidationFailed
from packages.core.idempotency import IdempotencyKey
from packages.core.principal import Principal
from packages.core.trading.repository import AuditRepository, ConfirmationRepository
from packages.core.trading.schemas import ConfirmableAction, ConfirmationOut, ConfirmationRequired
from packages.core.uow import UnitOfWork
from packages.domain.strategy.canonical import document_hash
from packages.infra.db.models import Confirmation
from packages.shared_settings import Settings

TOKEN_PREFIX = "cfm_"
CONFIRM_WITH = (
    "The user confirms in the Minsy app, or with their own API access token: POST "
    "/api/v1/confirmations/{token}. An MCP token is never accepted there: the model cannot confirm."
)
Via = Literal["api", "mcp"]


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def action_hash(action: str, payload: dict[str, Any]) -> str:
    """SHA-256 of the action's canonical JSON: the same action always hashes the same."""
    return document_hash({"action": action, "payload": payload})


@dataclass(frozen=True)
class Proposal:
    """An action ready to be confirmed: what runs (``payload``) and what the user is shown."""

    action: ConfirmableAction
    payload: dict[str, Any]
    summary: str
    details: dict[str, Any]

    @property
    def action_hash(self) -> str:
        return action_hash(self.action, self.payload)


def _required(row: Confirmation, token: str) -> ConfirmationRequired:
    return ConfirmationRequired(
        confirmation_id=row.id,
        action=row.action,
        summary=str(row.preview.get("summary", "")),
        preview=dict(row.preview.get("details", {})),
        action_hash=row.action_hash,
        token=token,
        expires_at=row.expires_at,
        confirm_with=CONFIRM_WITH.replace("{token}", token),
    )


class ConfirmationBook:
    """Issues, shows and claims one user's confirmations."""

    def __init__(self, uow: UnitOfWork, principal: Principal, settings: Settings, *, actor: str) -> None:
        self.uow = uow
        self.principal = principal
        self.settings = settings
        self.actor = actor
        self.repo = ConfirmationRepository(uow.session, principal.user_id)
        self.audit = AuditRepository(uow.session)

    async def issue(
        self, proposal: Proposal, via: Via, idempotency_key: IdempotencyKey | None
    ) -> ConfirmationRequired | Confirmation:
        """A new confirmation of ``proposal`` (with its token), or, for a retried Idempotency-Key,
        the first one: a fresh token for it while it waits (the earlier token stops working), or
        the row itself once it was confirmed."""
        now = datetime.now(UTC)
        await self.repo.lock_owner()
        if idempotency_key is not None:
            existing = await self.repo.by_idempotency_key(proposal.action, idempotency_key.value)
            if existing is not None:
                return await self._replay(existing, proposal, idempotency_key, now)
        pending = await self.repo.count_pending(now)
        limit = self.settings.trading.max_pending_confirmations_per_user
        if pending >= limit:
            raise RateLimited(
                f"You have {pending} unconfirmed actions waiting (at most {limit}); confirm or let some "
                "expire first.",
                headers={"Retry-After": str(self.settings.trading.confirmation_ttl_s)},
            )
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        row = Confirmation(
            user_id=self.principal.user_id,
            token_hash=hash_token(token),
            action=proposal.action,
            payload=proposal.payload,
            action_hash=proposal.action_hash,
            preview={"summary": proposal.summary, "details": proposal.details},
            status="pending",
            requested_via=via,
            expires_at=now + timedelta(seconds=self.settings.trading.confirmation_ttl_s),
            idempotency_key=None if idempotency_key is None else idempotency_key.value,
        )
        try:
            async with self.uow.session.begin_nested():
                await self.repo.add(row)
        except IntegrityError:
            raise Conflict("A confirmation was just issued for this key; send the request again.") from None
        await self._audit(row, "issued", {"via": via, "action_hash": row.action_hash})
        return _required(row, token)

    async def _replay(
        self, row: Confirmation, proposal: Proposal, key: IdempotencyKey, now: datetime
    ) -> ConfirmationRequired | Confirmation:
        if row.action_hash != proposal.action_hash:
            raise ValidationFailed(
                "This Idempotency-Key was already used for a different action.",
                errors=[
                    FieldError("idempotency_key_reused", key.pointer, "use a new key for a different action")
                ],
                extra={"confirmation_id": str(row.id)},
            )
        if row.status == "confirmed":
            return row
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        row.token_hash = hash_token(token)
        row.status = "pending"
        row.expires_at = now + timedelta(seconds=self.settings.trading.confirmation_ttl_s)
        await self.uow.session.flush()
        await self._audit(row, "reissued", {"action_hash": row.action_hash})
        return _required(row, token)

    async def show(self, token: str) -> ConfirmationOut:
        row = await self._find(token, for_update=False)
        status = row.status
        if status == "pending" and row.expires_at <= datetime.now(UTC):
            status = "expired"
        return ConfirmationOut(
            confirmation_id=row.id,
            action=row.action,
            status=status,
            summary=str(row.preview.get("summary", "")),
            preview=dict(row.preview.get("details", {})),
            action_hash=row.action_hash,
            requested_via=row.requested_via,
            expires_at=row.expires_at,
            used_at=row.used_at,
            created_at=row.created_at,
        )

    async def claim(self, token: str, expected_hash: str | None) -> Confirmation:
        """The pending, unexpired confirmation of ``token``, locked until the transaction ends; a
        refusal (used, expired, another action than the one the user saw) is audited and committed
        before it is raised."""
        row = await self._find(token, for_update=True)
        now = datetime.now(UTC)
        if row.status == "confirmed":
            await self.refuse(
                row, "already_used", {"used_at": row.used_at.isoformat() if row.used_at else None}
            )
            raise Conflict(
                "This confirmation was already used; an action runs once. Ask for a new one to repeat it.",
                extra={"reason": "already_used", "confirmation_id": str(row.id)},
            )
        if row.status == "refused":
            await self.refuse(row, "already_refused", {})
            raise Conflict(
                "This confirmation was refused because its action changed; request a new one.",
                extra={"reason": "action_changed", "confirmation_id": str(row.id)},
            )
        if row.expires_at <= now:
            if row.status != "expired":
                row.status = "expired"
            await self.refuse(row, "expired", {"expired_at": row.expires_at.isoformat()})
            raise Conflict(
                "This confirmation expired; request the action again for a new one.",
                extra={"reason": "expired", "confirmation_id": str(row.id)},
            )
        if expected_hash is not None and expected_hash != row.action_hash:
            await self.refuse(row, "action_mismatch", {"expected": expected_hash})
            raise Conflict(
                "The action behind this token is not the one you were shown; request a new confirmation.",
                extra={"reason": "action_changed", "confirmation_id": str(row.id)},
            )
        return row

    async def refuse_changed(self, row: Confirmation, current_hash: str, detail: str) -> Conflict:
        """The state the action was computed from has changed: the token is spent, a new
        confirmation is needed. Audited and committed; returns the error to raise."""
        row.status = "refused"
        await self.refuse(row, "action_changed", {"current_action_hash": current_hash})
        return Conflict(
            f"{detail} The previewed action no longer holds; request a new confirmation.",
            extra={"reason": "action_changed", "confirmation_id": str(row.id)},
        )

    async def complete(self, row: Confirmation, result: dict[str, Any], via: str) -> datetime:
        """Mark ``row`` used with what the action did; returns when."""
        now = datetime.now(UTC)
        row.status = "confirmed"
        row.used_at = now
        row.result = result
        await self.uow.session.flush()
        await self._audit(row, "confirmed", {"via": via, "action_hash": row.action_hash})
        return now

    async def _find(self, token: str, *, for_update: bool) -> Confirmation:
        row = await self.repo.by_token_hash(hash_token(token), for_update=for_update)
        if row is None:
            raise NotFound("No confirmation with this token (it may have been replaced by a newer one).")
        return row

    async def refuse(self, row: Confirmation, reason: str, details: dict[str, Any]) -> None:
        """Audit a refused confirmation and commit that record (the error raised next rolls back the rest)."""
        await self._audit(row, "refused", {"reason": reason, **details})
        await self.uow.commit_now()

    async def _audit(self, row: Confirmation, action: str, details: dict[str, Any]) -> None:
        await self.audit.add(
            user_id=self.principal.user_id,
            actor=self.actor,
            subject="confirmation",
            subject_id=row.id,
            action=action,
            details={"action": row.action, **details, **self._session_detail()},
        )

    def _session_detail(self) -> dict[str, str]:
        session = self.principal.session_id
        return {} if session is None else {"chat_session_id": str(session)}
