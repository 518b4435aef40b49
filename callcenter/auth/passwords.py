"""Passwords for people: argon2id hashes (argon2-cffi)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from callcenter.errors import InvalidInput

MIN_LENGTH = 8


class PasswordPolicyError(InvalidInput):
    error_id = "weak_password"


def make_hasher(*, time_cost: int = 2, memory_cost: int = 19456) -> PasswordHasher:
    """OWASP's argon2id minimum (19 MiB, t=2); tests may pass smaller costs."""
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_cost, parallelism=1)


def check_policy(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise PasswordPolicyError(f"密码至少 {MIN_LENGTH} 位 / password must have at least "
                                  f"{MIN_LENGTH} characters", field="password")
    if password.strip() != password:
        raise PasswordPolicyError("密码首尾不能是空格 / no leading or trailing spaces",
                                  field="password")


def hash_password(hasher: PasswordHasher, password: str) -> str:
    check_policy(password)
    return hasher.hash(password)


def verify_password(hasher: PasswordHasher, stored_hash: str | None, password: str) -> bool:
    """False for a wrong password, a missing or a corrupt hash; never raises."""
    if not stored_hash:
        # Spend the same time as a real check so a missing user is not revealed by timing.
        try:
            hasher.verify(_DUMMY.get(hasher), password)
        except (VerificationError, InvalidHashError):
            pass
        return False
    try:
        return hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


class _Dummy:
    def __init__(self) -> None:
        self._cache: dict[int, str] = {}

    def get(self, hasher: PasswordHasher) -> str:
        key = id(hasher)
        if key not in self._cache:
            self._cache[key] = hasher.hash("not-a-real-password")
        return self._cache[key]


_DUMMY = _Dummy()
