"""Sign-in with Keystone and the sessions of the web page.

The password goes to Keystone once, for a token; the token is then validated exactly as
an ``X-Auth-Token`` of the API (the same auth_token call, the same policy). No Keystone
token is kept at rest: the ``ui_session`` row holds a hash of a random session id, the
user name, the expiry and the CSRF token; the token itself travels only in the browser's
HttpOnly, SameSite=Strict cookie, encrypted (Fernet) with a key the database does not hold
(``SECRET_KEY`` of the Flask config file, else one derived from the service's own secret
in fiware-glancesync.cfg). Each request re-validates it through auth_token's cache, so a
revoked token or a removed role ends the session within ``token_cache_time``; sign-out
revokes it in Keystone.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.fernet import Fernet, InvalidToken
from flask import Response, current_app, request
from sqlalchemy import delete, select

from app.auth import EXTENSION as AUTH_EXTENSION
from app.auth import KeystoneUnavailable, TokenInfo, TokenValidator, may
from app.models import db, utcnow
from app.policy import SYNC, VIEW
from app.settings import OpenStackSettings
from app.ui.models import UiSession
from glancesync import session_identity

LOG = logging.getLogger("GlanceSync-API")
COOKIE = "glancesync_ui"
SIGNIN_COOKIE = "glancesync_ui_signin"  # double-submit CSRF token of the sign-in form
COOKIE_PATH = "/ui/"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
KEY_CONTEXT = b"glancesync ui session token v1"


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
            return auth.get_auth_ref(
                session.Session(timeout=timeout, verify=verify, **session_identity())
            ).auth_token
        except (ks.Unauthorized, ks.NotFound, ks.BadRequest):
            raise SignInRefused("Wrong user name, password, project or domain") from None
        except (ks.ConnectionError, ks.DiscoveryFailure, ks.HttpError) as exc:
            raise KeystoneUnavailable(f"Keystone cannot be reached ({exc})") from None

    return authenticate


# A callable revoking a user's token in Keystone at sign-out; tests plug in a fake.
Revoker = Callable[[str], None]


def keystone_revoker(settings: OpenStackSettings, timeout: float = 10.0) -> Revoker:
    """``DELETE /v3/auth/tokens`` with the user's own token: a user may revoke their own
    token, so no service credential is needed; a failure is logged, never shown."""
    verify = settings.connection.verify

    def revoke(token: str) -> None:
        from keystoneauth1 import exceptions as ks
        from keystoneauth1 import session

        headers = {"X-Auth-Token": token, "X-Subject-Token": token}
        try:
            session.Session(timeout=timeout, verify=verify, **session_identity()).delete(
                f"{settings.connection.keystone_url}/auth/tokens",
                headers=headers,
                authenticated=False,
            )
        except (ks.NotFound, ks.Unauthorized):
            pass  # already revoked or expired
        except ks.ClientException as exc:
            LOG.warning("Sign-out could not revoke the token in Keystone (%s)", type(exc).__name__)

    return revoke


@dataclass(frozen=True)
class Viewer:
    """The signed-in user of a request and what the page lets them do."""

    user: str
    can_sync: bool
    csrf_token: str


def digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def validator() -> TokenValidator:
    return current_app.extensions[AUTH_EXTENSION]


def cookie_key() -> Fernet:
    """The Fernet key of the cookie: from SECRET_KEY, else from the service's own secret
    (both in files, never in the database; every host of an instance derives the same)."""
    secret = current_app.config.get("SECRET_KEY") or ""
    if not secret:
        conn = current_app.config["SETTINGS"].openstack.connection
        secret = conn.application_credential_secret or conn.password
    raw = secret if isinstance(secret, bytes) else str(secret).encode()
    derived = hmac.new(raw, KEY_CONTEXT, hashlib.sha256).digest()
    return Fernet(base64.urlsafe_b64encode(derived))


def seal(session_id: str, token: str) -> str:
    """The cookie's value: the session id and the encrypted token."""
    return f"{session_id}.{cookie_key().encrypt(token.encode()).decode()}"


def unseal(value: str) -> tuple[str, str] | None:
    """(session id, token) of a cookie value; None when forged, old or of another key."""
    session_id, _, sealed = value.partition(".")
    if not (session_id and sealed):
        return None
    try:
        return session_id, cookie_key().decrypt(sealed.encode()).decode()
    except (InvalidToken, ValueError):
        return None


def page_rights(info: TokenInfo) -> tuple[bool, bool]:
    """(may see the page, may sync and cancel): the policy's rules, as on the API."""
    can_sync = may(SYNC, info)
    return can_sync or may(VIEW, info), can_sync


def sign_in(creds: Credentials) -> tuple[str, UiSession]:
    """A new session (its cookie value and row); SignInRefused or KeystoneUnavailable."""
    authenticator: Authenticator = current_app.config["UI_AUTHENTICATOR"]
    token = authenticator(creds)
    info = validator().validate(token)
    if info is None:
        raise SignInRefused("Keystone gave a token the service cannot validate")
    may_see, _ = page_rights(info)
    if not may_see:
        roles = current_app.config["REQUIRED_ROLES"] + current_app.config["VIEWER_ROLES"]
        # Logged, not shown: the page answers as for a wrong password.
        raise SignInRefused("the account has none of the roles " + ", ".join(roles))
    session_id = secrets.token_urlsafe(32)
    row = UiSession(
        session_hash=digest(session_id),
        csrf_token=secrets.token_urlsafe(32),
        user_name=info.user or creds.user,
        created=utcnow(),
        expires=datetime.fromtimestamp(info.expires_at, UTC).replace(tzinfo=None),
    )
    db.session.execute(delete(UiSession).where(UiSession.expires < utcnow()))
    db.session.add(row)
    db.session.commit()
    return seal(session_id, token), row


def current_viewer() -> Viewer | None:
    """The signed-in user of this request, None when signed out, expired or revoked.

    KeystoneUnavailable goes up: an outage is not a reason to sign anyone out.
    """
    opened = unseal(request.cookies.get(COOKIE, ""))
    if opened is None:
        return None
    session_id, token = opened
    row = db.session.scalars(
        select(UiSession).where(UiSession.session_hash == digest(session_id))
    ).first()
    if row is None:
        return None
    info = validator().validate(token) if row.expires > utcnow() else None
    may_see, can_sync = page_rights(info) if info is not None else (False, False)
    if not may_see:
        db.session.delete(row)
        db.session.commit()
        return None
    return Viewer(row.user_name, can_sync, row.csrf_token)


def sign_out() -> None:
    """The row goes, and the token is revoked in Keystone: a copy of the cookie taken
    before sign-out is worth nothing."""
    opened = unseal(request.cookies.get(COOKIE, ""))
    if opened is None:
        return
    session_id, token = opened
    db.session.execute(delete(UiSession).where(UiSession.session_hash == digest(session_id)))
    db.session.commit()
    revoker: Revoker = current_app.config["UI_REVOKER"]
    revoker(token)


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
        secure=secure_cookies(),
    )


def secure_cookies() -> bool:
    """``[glancesync] SECURE_COOKIES``: ``always``, or ``auto``: when the request (after
    the trusted proxies of ``PROXY_HOPS``) came over HTTPS."""
    return current_app.config.get("SECURE_COOKIES") == "always" or request.is_secure


def clear_cookie(response: Response, name: str) -> None:
    response.delete_cookie(name, path=COOKIE_PATH, httponly=True, samesite="Strict")
