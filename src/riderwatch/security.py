"""Password hashing (argon2) and signed bearer tokens."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

_hasher = PasswordHasher()
# Verified against when the username is unknown, so a miss costs the same time as a wrong password.
_DUMMY_HASH = _hasher.hash("riderwatch-dummy-password")


# One-time codes (an import's, an administrator's) are random, 59 bits, and run out within days: nobody
# guesses one offline even from a light hash, and a hundred riders imported at once must not take half a
# minute of argon2 at full strength. Verification reads the parameters from the hash, as for any password.
_code_hasher = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def hash_one_time_code(code: str) -> str:
    """The hash of a code `new_one_time_code` made (never of a password a person chose)."""
    return _code_hasher.hash(code)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _serializer(secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt="riderwatch-access-token")


def issue_token(secret: str, user_id: int, token_version: int) -> str:
    return _serializer(secret).dumps({"uid": user_id, "v": token_version})


def read_token(secret: str, token: str, max_age: int) -> dict[str, Any] | None:
    """The token's claims, or None when it is forged, malformed or expired."""
    try:
        data = _serializer(secret).loads(token, max_age=max_age)
    except (BadSignature, SignatureExpired):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("uid"), int) or not isinstance(data.get("v"), int):
        return None
    return data


# No 0/O, 1/I/L: a one-time code is read out over the phone or copied from a note.
_CODE_LETTERS = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"


def new_one_time_code() -> str:
    """A password an administrator hands over, to be replaced at first login: 12 letters in 3 groups (59 bits)."""
    letters = "".join(secrets.choice(_CODE_LETTERS) for _ in range(12))
    return "-".join(letters[i : i + 4] for i in range(0, 12, 4))


def new_api_key() -> str:
    return "rw_" + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_session_key() -> str:
    return secrets.token_urlsafe(32)


def hash_session_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)
