"""fmp4.py's codec strings and init segments, from hand-made configuration records."""

from __future__ import annotations

import struct

import pytest

from streamwarden.live.fmp4 import codec_string, hevc_codec_string, init_segment, top_level_boxes


def _hvcc(first: int, compatibility: int, constraints: bytes, level: int) -> bytes:
    """The first 23 bytes of an HEVCDecoderConfigurationRecord (no arrays)."""
    return (bytes([1, first]) + struct.pack(">I", compatibility) + constraints
            + bytes([level]) + bytes(10))


def test_hevc_codec_strings_follow_iso_14496_15_annex_e() -> None:
    main = _hvcc(0x01, 0x60000000, bytes([0xB0, 0, 0, 0, 0, 0]), 93)
    assert hevc_codec_string(main) == "hvc1.1.6.L93.B0"
    assert hevc_codec_string(main, "hev1") == "hev1.1.6.L93.B0"
    main10_high = _hvcc(0x22, 0x20000000, bytes([0x90, 0x08, 0, 0, 0, 0]), 120)
    assert hevc_codec_string(main10_high) == "hvc1.2.4.H120.90.8"


def test_a_record_that_is_not_hvcc_is_refused() -> None:
    with pytest.raises(ValueError):
        hevc_codec_string(bytes(10))
    with pytest.raises(ValueError):
        hevc_codec_string(bytes([2]) + bytes(22))


def test_init_segments_carry_the_sample_entry_and_its_record() -> None:
    avcc = bytes([1, 0x42, 0xC0, 0x1E, 0xFF, 0xE0, 0x00])
    hvcc = _hvcc(0x01, 0x60000000, bytes([0xB0, 0, 0, 0, 0, 0]), 93)
    assert codec_string(avcc) == "avc1.42c01e"
    for entry, record, config in ((b"avc1", b"avcC", avcc), (b"hvc1", b"hvcC", hvcc),
                                  (b"hev1", b"hvcC", hvcc)):
        data = init_segment(config, 320, 240, entry)
        assert [kind for kind, _ in top_level_boxes(data)] == [b"ftyp", b"moov"]
        assert entry + b"\x00" * 6 in data and record + config in data
