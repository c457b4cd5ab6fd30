"""Which audio goes into which container, and how (recording/audio.py): plain strings."""

from __future__ import annotations

import pytest

from streamwarden.recording.audio import plan


@pytest.mark.parametrize("fmt", ["mp4", "mkv", "ts"])
def test_aac_mp3_and_opus_are_kept_as_sent_everywhere(fmt):
    for caps, version, parser in (("audio/mpeg", 4, "aacparse"), ("audio/mpeg", 1,
                                  "mpegaudioparse"), ("audio/x-opus", None, "opusparse")):
        kept = plan(fmt, caps, version)
        assert kept.chain == parser and kept.note is None and not kept.warning


def test_mpeg2_aac_is_labelled_mpeg4_for_mp4_only():
    assert plan("mp4", "audio/mpeg", 2).caps_fields == (("mpegversion", 4),)
    assert plan("ts", "audio/mpeg", 2).caps_fields == ()


@pytest.mark.parametrize("caps", ["audio/x-alaw", "audio/x-mulaw"])
def test_g711_is_kept_in_mkv_and_converted_to_aac_where_it_cannot_go(caps):
    assert plan("mkv", caps).chain == "identity"
    for fmt in ("mp4", "ts"):
        converted = plan(fmt, caps)
        assert converted.recorded and "avenc_aac" in converted.chain
        assert converted.chain.endswith("aacparse") and not converted.warning
        assert "recorded as AAC" in converted.note and fmt in converted.note


def test_anything_else_is_left_out_with_a_warning():
    dropped = plan("mp4", "audio/x-speex")
    assert not dropped.recorded and dropped.warning and "not recorded" in dropped.note
