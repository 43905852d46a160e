"""Property-based check of the whole API against its own OpenAPI document (schemathesis).

Requests are generated from ``/v1/openapi.json`` as the running service serves it and sent
to the Flask app in-process (WSGI, with the fake token validator and the CSV mock), so
the run is fast and bounded. Every answer must be documented: no 500, a documented status
code and content type, and a body that matches the schema. Region names are random text
or known regions, so both the 410 path and the real work are exercised.
"""

from __future__ import annotations

import time

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import checks

from tests.api.fakes import ADMIN, MEMBER

MAX_EXAMPLES = 50  # per operation and database
# Not Caceres: its listing fails on purpose (mock fault), a documented 503.
KNOWN_REGIONS = ["Burgos", "master:Burgos", "other:Madrid"]
TOKENS = st.sampled_from([ADMIN, ADMIN, ADMIN, MEMBER, "", "not-a-token"])
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]


def operations(app: Flask) -> list:
    schema = schemathesis.openapi.from_wsgi("/v1/openapi.json", app)
    found = [result.ok() for result in schema.get_all_operations()]
    assert len(found) >= 10, [op.label for op in found]
    return found


def fuzz(operation) -> None:
    """MAX_EXAMPLES generated requests of one operation, each checked by schemathesis."""

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        case=operation.as_strategy(),
        region=st.none() | st.sampled_from(KNOWN_REGIONS),
        token=TOKENS,
    )
    def run(case, region, token) -> None:
        if region is not None and "region" in (case.path_parameters or {}):
            case.path_parameters["region"] = region
        headers = {"X-Auth-Token": token} if token else {}
        case.call_and_validate(headers=headers, checks=CHECKS)

    run()


def test_every_answer_matches_the_openapi_document(app: Flask):
    started = time.monotonic()
    failures = []
    for operation in operations(app):
        try:
            fuzz(operation)
        except Exception as exc:  # collect every operation's failure, not only the first
            failures.append(f"{operation.label}: {exc}")
    app.extensions["glancesync.tasks"].shutdown(wait=True)
    assert not failures, "\n\n".join(failures)
    assert time.monotonic() - started < 60


@pytest.mark.parametrize("path", ["/v1/openapi.json"])
def test_the_served_document_is_a_valid_openapi_schema(app: Flask, path: str):
    """schemathesis refuses an invalid document: loading it is the check."""
    schemathesis.openapi.from_wsgi(path, app).validate()
