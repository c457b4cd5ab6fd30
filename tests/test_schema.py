"""Property-based API testing against the live app's own OpenAPI schema (schemathesis).

Every operation gets generated requests (valid and invalid); each response must not be a
server error and must match the schema the API declares, error shapes included. Generated
stream URIs are pointed at a closed loopback port so no test traffic leaves the machine.
(Driven through hypothesis directly: schemathesis' pytest plugin does not load on pytest 9.)
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from streamwarden.config.model import Config, SourceSettings

LOOPBACK_URI = "rtsp://127.0.0.1:9/generated"
# no server errors, and every response (status, content type, headers, body) as declared
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]


def _keep_on_loopback(body: object) -> None:
    if isinstance(body, dict) and isinstance(body.get("uri"), str):
        body["uri"] = LOOPBACK_URI


def test_api_conforms_to_its_schema(service_factory):
    svc = service_factory(Config(stream_defaults=SourceSettings(timeout=1, restart_timeout=1)))
    schema = schemathesis.openapi.from_url(f"{svc.base_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 12

    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=40, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        def exercise(case) -> None:
            _keep_on_loopback(case.body)
            case.call_and_validate(checks=CHECKS, timeout=20)

        exercise()
