"""Sign-in with Keystone and the server-side sessions of the web page.

The password goes to Keystone once, for a token; the token is then checked exactly like
an ``X-Auth-Token`` of the API (the same ``TokenCache`` and service credentials) and kept
in the ``ui_session`` table. The browser gets a random id in an HttpOnly, SameSite=Strict
cookie. Flask's own session is not used: it is a signed cookie, which would need one
secret key shared by every host, and the issue wants the token out of the browser.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from flask import Response, current_app, request
from sqlalchemy import delete, select

from app.auth import EXTENSION as AUTH_EXTENSION
from app.auth import KeystoneUnavailable, TokenCache, TokenInfo
from app.models import db, utcnow
from app.settings import OpenStackSettings
from app.ui.models import UiSession

COOKIE = "glancesync_ui"
SIGNIN_COOKIE = "glancesync_ui_signin"  # double-submit CSRF token of the sign-in form
COOKIE_PATH = "/ui/"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"


class SignInRefused(Exception):
    """Keystone refused the credentials, or the account may not see the page."""


@dataclass(frozen=True)
class Credentials:
    user: str
    password: str
    project: str
    domain: str


# A callable giving a Keystone token for the credentials; tests plug in a fake.
Authenticator = Callable[[Credentials], str]


def keystone_authenticator(settings: OpenStackSettings, timeout: float = 10.0) -> Authenticator:
    """Password authentication against the service's Keystone (v3), over the service's
    own TLS settings (``CACERT``, ``INSECURE``), as its token checks are."""
    verify = settings.connection.verify

    def authenticate(creds: Credentials) -> str:
        from keystoneauth1 import exceptions as ks
        from keystoneauth1 import session
        from keystoneauth1.identity import v3

        auth = v3.Password(
            auth_url=settings.connection.keystone_url,
            username=creds.user,
            password=creds.password,
            user_domain_name=creds.domain,
            project_name=creds.project,
            project_domain_name=creds.domain,
        )
        try:
            return auth.get_auth_ref(session.Session(timeout=timeout, verify=verify)).auth_token
        except (ks.Unauthorized, ks.NotFound, ks.BadRequest):
            raise SignInRefused("Wrong user name, password, project or domain") from None
        except (ks.ConnectionError, ks.DiscoveryFailure, ks.HttpError) as exc:
            raise KeystoneUnavailable(
                f"Keystone cannot be reached ({type(exc).__name__})"
            ) from None

    return authenticate


@dataclass(frozen=True)
class Viewer:
    """The signed-in user of a request and what the page lets them do."""

    user: str
    can_sync: bool
    csrf_token: str


def digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def token_cache() -> TokenCache:
    return current_app.extensions[AUTH_EXTENSION]


def page_roles(info: TokenInfo) -> tuple[bool, bool]:
    """(may see the page, may sync and cancel) for the token's roles."""
    required = set(current_app.config["REQUIRED_ROLES"])
    viewers = set(current_app.config["VIEWER_ROLES"])
    can_sync = bool(info.roles & required)
    return can_sync or bool(info.roles & viewers), can_sync


def sign_in(creds: Credentials) -> tuple[str, UiSession]:
    """A new session (its cookie value and row); SignInRefused or KeystoneUnavailable."""
    authenticator: Authenticator = current_app.config["UI_AUTHENTICATOR"]
    token = authenticator(creds)
    info = token_cache().validate(token)
    if info is None:
        raise SignInRefused("Keystone gave a token the service cannot validate")
    may_see, _ = page_roles(info)
    if not may_see:
        roles = current_app.config["REQUIRED_ROLES"] + current_app.config["VIEWER_ROLES"]
        raise SignInRefused("This account has none of the roles " + ", ".join(roles))
    session_id = secrets.token_urlsafe(32)
    row = UiSession(
        session_hash=digest(session_id),
        csrf_token=secrets.token_urlsafe(32),
        token=token,
        user_name=info.user or creds.user,
        created=utcnow(),
        expires=datetime.fromtimestamp(info.expires_at, UTC).replace(tzinfo=None),
    )
    db.session.execute(delete(UiSession).where(UiSession.expires < utcnow()))
    db.session.add(row)
    db.session.commit()
    return session_id, row


def current_viewer() -> Viewer | None:
    """The signed-in user of this request, None when signed out, expired or revoked.

    KeystoneUnavailable goes up: an outage is not a reason to sign anyone out.
    """
    session_id = request.cookies.get(COOKIE, "")
    if not session_id:
        return None
    row = db.session.scalars(
        select(UiSession).where(UiSession.session_hash == digest(session_id))
    ).first()
    if row is None:
        return None
    info = token_cache().validate(row.token) if row.expires > utcnow() else None
    may_see, can_sync = page_roles(info) if info is not None else (False, False)
    if not may_see:
        db.session.delete(row)
        db.session.commit()
        return None
    return Viewer(row.user_name, can_sync, row.csrf_token)


def sign_out() -> None:
    session_id = request.cookies.get(COOKIE, "")
    if session_id:
        db.session.execute(delete(UiSession).where(UiSession.session_hash == digest(session_id)))
        db.session.commit()


def csrf_ok(expected: str) -> bool:
    """The form field or the header carries the expected token (constant-time compare)."""
    given = request.form.get(CSRF_FIELD, "") or request.headers.get(CSRF_HEADER, "")
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


def set_cookie(response: Response, name: str, value: str, max_age: int | None = None) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=COOKIE_PATH,
        httponly=True,
        samesite="Strict",
        secure=request.is_secure,
    )


def clear_cookie(response: Response, name: str) -> None:
    response.delete_cookie(name, path=COOKIE_PATH, httponly=True, samesite="Strict")
