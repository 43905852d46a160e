"""The web page's server-side sessions (migration 0004)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models import db


class UiSession(db.Model):
    """One signed-in browser: its Keystone token and the CSRF token of its pages.

    The cookie carries a random id; only its SHA-256 is stored, so reading the table
    does not let anyone take over a browser's session.
    """

    __tablename__ = "ui_session"
    __table_args__ = (Index("ix_ui_session_expires", "expires"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    csrf_token: Mapped[str] = mapped_column(String(64), nullable=False)
    token: Mapped[str] = mapped_column(Text, nullable=False)
    user_name: Mapped[str] = mapped_column(String(255), nullable=False)
    created: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    expires: Mapped[datetime] = mapped_column(DateTime, nullable=False)

    def __repr__(self) -> str:
        return f"<UiSession {self.user_name} until {self.expires}>"
