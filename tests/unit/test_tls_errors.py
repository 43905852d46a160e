"""A certificate that fails verification: one sentence, and never retried (issue 13)."""

from __future__ import annotations

from keystoneauth1 import exceptions as ksa

from glancesync.backends.glance import short_reason
from glancesync.backends.retry import is_transient

KEYSTONEAUTH_TEXT = (
    "SSL exception connecting to https://127.0.0.1:5001/v3/auth/tokens: "
    "HTTPSConnectionPool(host='127.0.0.1', port=5001): Max retries exceeded with url: "
    "/v3/auth/tokens (Caused by SSLError(SSLCertVerificationError(1, '[SSL: "
    "CERTIFICATE_VERIFY_FAILED] certificate verify failed: unable to get local issuer "
    "certificate (_ssl.c:1006)')))"
)


def test_short_reason_of_a_certificate_failure():
    assert short_reason(KEYSTONEAUTH_TEXT) == (
        "the TLS certificate of https://127.0.0.1:5001 could not be verified "
        "(unable to get local issuer certificate); set cacert to the CA bundle that signed it"
    )


def test_a_certificate_failure_is_not_transient():
    assert not is_transient(ksa.SSLError(KEYSTONEAUTH_TEXT))
    assert is_transient(ksa.ConnectFailure("Unable to establish connection to https://x"))
