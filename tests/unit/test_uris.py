"""The display form of a camera URI, computed once per stream (no GStreamer, no service)."""

from __future__ import annotations

from streamwarden.uris import DisplayUri, redact_uri, scrub


def test_display_uri_matches_the_redaction_and_scrubs_messages():
    uri = "rtsp://admin:hunter2@10.0.0.5:554/live?token=abc123"
    shown = DisplayUri.of(uri)
    assert shown.text == redact_uri(uri) == str(shown)
    message = f"Could not open {uri}: password hunter2 refused (token abc123)"
    assert shown.scrub(message) == scrub(message, uri)
    assert "hunter2" not in shown.scrub(message) and "abc123" not in shown.scrub(message)
    assert shown.scrub("") == ""


def test_display_uri_never_shows_the_secret_in_its_repr():
    shown = DisplayUri.of("srt://cam:9000?passphrase=s3cretpass")
    assert "s3cretpass" not in repr(shown) and "s3cretpass" not in shown.text


def test_a_uri_without_credentials_is_shown_as_it_is():
    shown = DisplayUri.of("rtsp://cam/stream")
    assert shown.text == "rtsp://cam/stream"
    assert shown.scrub("cannot reach rtsp://cam/stream") == "cannot reach rtsp://cam/stream"
