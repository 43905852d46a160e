"""The web page's server-side sessions (migration 0004)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models import db


class UiSession(db.Model):
    """One signed-in browser: who, until when, and the CSRF token of its pages.

    The cookie carries a random id (only its SHA-256 is stored) and the user's Keystone
    token encrypted with a key the database does not hold: reading the table lets nobody
    take over a browser's session nor act on any OpenStack API (migration 0006).
    """

    __tablename__ = "ui_session"
    __table_args__ = (Index("ix_ui_session_expires", "expires"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    csrf_token: Mapped[str] = mapped_column(String(64), nullable=False)
    user_name: Mapped[str] = mapped_column(String(255), nullable=False)
    created: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    expires: Mapped[datetime] = mapped_column(DateTime, nullable=False)

    def __repr__(self) -> str:
        return f"<UiSession {self.user_name} until {self.expires}>"
