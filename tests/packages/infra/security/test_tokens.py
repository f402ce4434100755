from __future__ import annotations

import uuid
from datetime import timedelta

import jwt
import pytest

from packages.infra.security import passwords, tokens

SECRET = "s3cret-for-tests"


def test_access_token_roundtrip_and_rejections() -> None:
    user = uuid.uuid4()
    token, _ = tokens.issue_access_token(user, secret=SECRET, issuer="minsy", ttl=timedelta(minutes=5))
    assert tokens.decode_access_token(token, secret=SECRET, issuer="minsy").user_id == user
    with pytest.raises(tokens.InvalidToken):
        tokens.decode_access_token(token, secret="other", issuer="minsy")
    expired, _ = tokens.issue_access_token(user, secret=SECRET, issuer="minsy", ttl=timedelta(seconds=-1))
    with pytest.raises(tokens.InvalidToken):
        tokens.decode_access_token(expired, secret=SECRET, issuer="minsy")


def test_mcp_token_cannot_stand_in_for_access_token_and_vice_versa() -> None:
    user = uuid.uuid4()
    mcp, _ = tokens.issue_mcp_token(
        user, secret=SECRET, issuer="minsy", ttl=timedelta(minutes=5), domains=("strategy",)
    )
    access, _ = tokens.issue_access_token(user, secret=SECRET, issuer="minsy", ttl=timedelta(minutes=5))
    with pytest.raises(tokens.InvalidToken):
        tokens.decode_access_token(mcp, secret=SECRET, issuer="minsy")
    with pytest.raises(tokens.InvalidToken):
        tokens.decode_mcp_token(access, secret=SECRET, issuer="minsy")


def test_mcp_token_carries_session_and_domains() -> None:
    user, session = uuid.uuid4(), uuid.uuid4()
    token, _ = tokens.issue_mcp_token(
        user,
        secret=SECRET,
        issuer="minsy",
        ttl=timedelta(minutes=5),
        domains=("market", "backtest"),
        session_id=session,
    )
    claims = tokens.decode_mcp_token(token, secret=SECRET, issuer="minsy")
    assert (claims.user_id, claims.session_id, claims.domains) == (user, session, ("market", "backtest"))


def test_unsigned_token_is_refused() -> None:
    forged = jwt.encode(
        {"sub": str(uuid.uuid4()), "aud": "minsy-mcp", "iss": "minsy", "exp": 9999999999, "jti": "x"},
        None,
        algorithm="none",
    )
    with pytest.raises(tokens.InvalidToken):
        tokens.decode_mcp_token(forged, secret=SECRET, issuer="minsy")


def test_password_hash_verifies_only_the_right_password() -> None:
    stored = passwords.hash_password("hunter22-long")
    assert stored.startswith("$argon2id$")
    assert passwords.verify_password(stored, "hunter22-long")
    assert not passwords.verify_password(stored, "hunter22-lonG")
    assert not passwords.verify_password("not-a-hash", "x")
