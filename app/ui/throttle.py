"""Sign-in throttling of the web page (issue 22, docs/security.md).

Guessing passwords through the page, or locking a Keystone account by failing on purpose,
is slowed down: after ``PER_USER`` failures for one user name, or ``PER_ADDRESS`` from
one address, within ``WINDOW`` seconds, the form answers 429 with ``Retry-After`` without
asking Keystone. The failures are rows of the database (migration 0007), so every process
and host of an instance counts together. Keys are SHA-256 digests: the table names no
user and no address.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sqlalchemy import DateTime, Index, Integer, String, delete, select
from sqlalchemy.orm import Mapped, mapped_column

from app.models import db, utcnow

WINDOW = 300  # seconds a failure counts
PER_USER = 5  # failures of one user name in the window, then 429
PER_ADDRESS = 10  # failures from one address in the window, then 429


class SignInFailure(db.Model):
    """One refused sign-in, under the digest of its user name or of its address."""

    __tablename__ = "signin_failure"
    __table_args__ = (
        Index("ix_signin_failure_key_at", "key", "at"),
        Index("ix_signin_failure_at", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), nullable=False)
    at: Mapped[datetime] = mapped_column(DateTime, nullable=False)


def user_key(user: str) -> str:
    return hashlib.sha256(b"user\0" + user.casefold().encode()).hexdigest()


def address_key(address: str) -> str:
    return hashlib.sha256(b"addr\0" + address.encode()).hexdigest()


def _wait(key: str, limit: int, since: datetime, now: datetime) -> int:
    """Seconds until ``key`` has fewer than ``limit`` failures in the window (0: now)."""
    times = db.session.scalars(
        select(SignInFailure.at)
        .where(SignInFailure.key == key, SignInFailure.at > since)
        .order_by(SignInFailure.at.desc())
        .limit(limit)
    ).all()
    if len(times) < limit:
        return 0
    frees_at = times[-1] + timedelta(seconds=WINDOW)
    return max(1, int((frees_at - now).total_seconds()) + 1)


def retry_after(address: str, user: str) -> int:
    """Seconds the caller must wait before trying again; 0 when they may try now."""
    now = utcnow()
    since = now - timedelta(seconds=WINDOW)
    return max(
        _wait(user_key(user), PER_USER, since, now),
        _wait(address_key(address), PER_ADDRESS, since, now),
    )


def record_failure(address: str, user: str) -> None:
    now = utcnow()
    db.session.execute(
        delete(SignInFailure).where(SignInFailure.at <= now - timedelta(seconds=WINDOW))
    )
    db.session.add_all(
        [SignInFailure(key=user_key(user), at=now), SignInFailure(key=address_key(address), at=now)]
    )
    db.session.commit()


def forget_user(user: str) -> None:
    """A successful sign-in clears the user's failures (not the address's)."""
    db.session.execute(delete(SignInFailure).where(SignInFailure.key == user_key(user)))
    db.session.commit()
