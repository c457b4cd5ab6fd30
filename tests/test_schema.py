"""Property-based API testing against the live app's own OpenAPI schema (schemathesis).

Every operation gets generated requests (valid and invalid); each response must not be a
server error and must match the schema the API declares, error shapes included. Generated
stream URIs are pointed at a closed loopback port so no test traffic leaves the machine.
(Driven through hypothesis directly: schemathesis' pytest plugin does not load on pytest 9.)
"""

from __future__ import annotations

import requests
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
from streamwarden.ids import STREAM_ID_PATTERN

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
            if not case.operation.path.endswith("/mjpeg"):  # a 200 never ends: headers only
                case.call_and_validate(checks=CHECKS, timeout=20)
                return
            url = f"{svc.base_url}{case.formatted_path}"
            with requests.get(url, params=case.query, timeout=20, stream=True) as response:
                if response.status_code == 200:  # a stream of the fuzzer's own making
                    assert response.headers["content-type"].startswith("multipart/x-mixed")
                else:  # schemathesis reads a whole body, which this route's 200 never ends
                    assert response.status_code in (404, 422), response.status_code
                    assert set(response.json()) == {"error", "detail"}

        exercise()


def _signature(method: str, path: str, op: dict) -> str:
    """One line per operation: what a client generated from the schema depends on."""
    def ref(schema: dict) -> str:
        if "$ref" in schema:
            return schema["$ref"].rpartition("/")[2]
        if "items" in schema:
            return f"[{ref(schema['items'])}]"
        if "anyOf" in schema:
            return "|".join(ref(s) for s in schema["anyOf"])
        return schema.get("type", "any")

    params = ", ".join(f"{p['in']} {p['name']}{'*' if p.get('required') else ''}"
                       for p in op.get("parameters", []))
    body = op.get("requestBody")
    body_text = (f"{ref(body['content']['application/json']['schema'])}"
                 f"{'*' if body.get('required') else ''}") if body else "-"
    responses = "; ".join(
        f"{code} " + ",".join(f"{ctype}:{ref(content.get('schema', {}))}" if content else ctype
                              for ctype, content in sorted(answer.get("content", {}).items()))
        for code, answer in sorted(op["responses"].items()))
    return (f"{method.upper()} {path} {op.get('tags')} {op['operationId']} ({params}) "
            f"body={body_text} -> {responses}")


# The API's contract: every operation, its parameters, body and answers (status, content type,
# model). A change here is a change for every client: make it on purpose, never by a refactor.
CONTRACT = sorted([
    "GET /auth/status ['auth'] auth_status_auth_status_get () body=- -> "
    "200 application/json:AuthStatus",
    "POST /auth/url-token ['auth'] url_token_auth_url_token_post () body=UrlTokenRequest* -> "
    "200 application/json:UrlToken; 401 application/json:ErrorBody; "
    "403 application/json:ErrorBody; 422 application/json:ErrorBody",
    "POST /auth/login ['auth'] login_auth_login_post () body=LoginRequest* -> "
    "200 application/json:LoginSession; 401 application/json:ErrorBody; "
    "422 application/json:ErrorBody; 429 application/json:ErrorBody",
    "POST /auth/logout ['auth'] logout_auth_logout_post () body=- -> 204 ; "
    "401 application/json:ErrorBody; 403 application/json:ErrorBody",
    "GET /auth/me ['auth'] whoami_auth_me_get () body=- -> 200 application/json:WhoAmI; "
    "401 application/json:ErrorBody; 403 application/json:ErrorBody",
    "GET /config ['config'] get_config_config_get () body=- -> 200 application/json:ConfigView",
    "POST /config/reload ['config'] reload_config_config_reload_post () body=- -> "
    "200 application/json:ReloadResult; 409 application/json:ErrorBody; "
    "422 application/json:ConfigRefused",
    "GET /events ['inference'] list_events_events_get (query stream_id, query label, "
    "query since, query until, query limit, query zone) body=- -> "
    "200 application/json:[EventView]; "
    "404 application/json:ErrorBody; 422 application/json:ErrorBody",
    "GET /events/{event_id}/snapshot.jpg ['inference'] "
    "event_snapshot_events__event_id__snapshot_jpg_get (path event_id*) body=- -> "
    "200 image/jpeg; 404 application/json:ErrorBody; 422 application/json:ErrorBody",
    "GET /health ['monitoring'] health_health_get () body=- -> "
    "200 application/json:[HealthEntry]",
    "GET /health/live ['monitoring'] live_health_live_get () body=- -> "
    "200 application/json:Liveness",
    "GET /health/ready ['monitoring'] ready_health_ready_get () body=- -> "
    "200 application/json:Readiness; 503 application/json:ErrorBody",
    "GET /inference ['inference'] inference_status_inference_get () body=- -> "
    "200 application/json:InferenceStatus",
    "GET /metrics ['monitoring'] metrics_metrics_get () body=- -> "
    "200 text/plain:string,text/plain; version=0.0.4; charset=utf-8",
    "GET /recordings ['recording'] list_recordings_recordings_get (query stream_id, "
    "query start, query end, query limit) body=- -> 200 application/json:[Recording]; "
    "404 application/json:ErrorBody; 422 application/json:ErrorBody",
    "GET /recordings/{rec_id}/file ['recording'] download_recordings__rec_id__file_get "
    "(path rec_id*) body=- -> 200 application/json:any,video/mp4; "
    "404 application/json:ErrorBody; 422 application/json:ErrorBody",
    "GET /streams ['streams'] list_streams_streams_get () body=- -> "
    "200 application/json:[StreamView]",
    "POST /streams ['streams'] add_stream_streams_post () body=StreamConfig* -> "
    "201 application/json:StreamCreated; 403 application/json:ErrorBody; "
    "404 application/json:ErrorBody; 409 application/json:ErrorBody; "
    "422 application/json:ErrorBody",
    "DELETE /streams/{stream_id} ['streams'] delete_stream_streams__stream_id__delete "
    "(path stream_id*) body=- -> 204 ; 404 application/json:ErrorBody; "
    "422 application/json:ErrorBody",
    "GET /streams/{stream_id} ['streams'] get_stream_streams__stream_id__get "
    "(path stream_id*) body=- -> 200 application/json:StreamView; "
    "404 application/json:ErrorBody; 422 application/json:ErrorBody",
    "PATCH /streams/{stream_id} ['streams'] patch_stream_streams__stream_id__patch "
    "(path stream_id*) body=StreamPatch* -> 200 application/json:StreamView; "
    "403 application/json:ErrorBody; 404 application/json:ErrorBody; "
    "422 application/json:ErrorBody",
    "GET /streams/{stream_id}/clip ['recording'] clip_streams__stream_id__clip_get "
    "(path stream_id*, query start*, query end*) body=- -> "
    "200 application/json:any,video/mp4; 404 application/json:ErrorBody; "
    "422 application/json:ErrorBody",
    "GET /streams/{stream_id}/mjpeg ['streams'] mjpeg_streams__stream_id__mjpeg_get "
    "(path stream_id*, query fps, query width) body=- -> "
    "200 multipart/x-mixed-replace; boundary=streamwarden-frame; "
    "404 application/json:ErrorBody; 422 application/json:ErrorBody",
    "DELETE /streams/{stream_id}/record ['recording'] "
    "stop_recording_streams__stream_id__record_delete (path stream_id*) body=- -> "
    "200 application/json:RecordingState; 404 application/json:ErrorBody; "
    "422 application/json:ErrorBody",
    "POST /streams/{stream_id}/record ['recording'] "
    "start_recording_streams__stream_id__record_post (path stream_id*) "
    "body=RecordRequestBody|null -> 200 application/json:RecordingState; "
    "404 application/json:ErrorBody; 422 application/json:ErrorBody",
    "GET /streams/{stream_id}/timeline ['recording'] timeline_streams__stream_id__timeline_get "
    "(path stream_id*, query start, query end) body=- -> "
    "200 application/json:RecordingTimeline; 404 application/json:ErrorBody; "
    "422 application/json:ErrorBody",
    "GET /streams/{stream_id}/zones ['streams'] get_zones_streams__stream_id__zones_get "
    "(path stream_id*) body=- -> 200 application/json:StreamZones; "
    "404 application/json:ErrorBody; 422 application/json:ErrorBody",
    "PUT /streams/{stream_id}/zones ['streams'] put_zones_streams__stream_id__zones_put "
    "(path stream_id*) body=StreamZones* -> 200 application/json:StreamZones; "
    "404 application/json:ErrorBody; 422 application/json:ErrorBody",
    "GET /streams/{stream_id}/snapshot.jpg ['streams'] "
    "snapshot_streams__stream_id__snapshot_jpg_get (path stream_id*, query width) body=- -> "
    "200 image/jpeg; 404 application/json:ErrorBody; 422 application/json:ErrorBody",
])
SCHEMAS = {"AuthStatus", "ConfigProblem", "ConfigRefused", "ConfigView", "ConfiguredStream",
           "DetectSourceHealth", "ErrorBody", "EventView", "HealthEntry", "InferenceStatus",
           "Liveness", "LoginRequest", "LoginSession", "PathPoint", "Readiness",
           "RecordRequestBody", "Recording",
           "RecordingState", "RecordingTimeline", "ReloadResult", "SourceSettings",
           "StreamConfig", "StreamCreated", "StreamPatch", "StreamStatistics", "StreamView",
           "StreamZones", "TimelineGap", "TimelineSegment", "TimelineSpan", "UrlToken",
           "UrlTokenRequest", "WhoAmI", "ZoneConfig", "ZoneEntry"}


def test_schema_keeps_its_contract(service_factory):
    svc = service_factory(Config())
    schema = svc.client().get("/openapi.json").json()
    found = sorted(_signature(method, path, op) for path, ops in schema["paths"].items()
                   for method, op in ops.items())
    assert found == CONTRACT
    assert set(schema["components"]["schemas"]) == SCHEMAS
    models = schema["components"]["schemas"]
    # the detection sub-stream: set on add and patch, shown (redacted) with its own health
    assert {"detect_uri", "detect_fit"} <= set(models["StreamConfig"]["properties"])
    assert {"detect_uri", "detect_fit"} <= set(models["StreamPatch"]["properties"])
    assert {"detect_uri", "detect_fit"} <= set(models["StreamView"]["properties"])
    assert "detect_source" in models["HealthEntry"]["properties"]
    assert "detect_source" in models["StreamStatistics"]["properties"]
    assert set(models["DetectSourceHealth"]["required"]) == {
        "state", "is_healthy", "uri", "fps", "width", "height", "reconnects",
        "last_frame_age_s", "last_retry_reason", "last_error"}
    stream_id = next(p for p in schema["paths"]["/streams/{stream_id}"]["get"]["parameters"])
    assert stream_id["schema"]["pattern"] == STREAM_ID_PATTERN  # the id's rule is documented
