"""Rules about encoded frames and their timestamps, with no GStreamer in them.

Plain integers (nanoseconds, `None` for "not set") in, decisions out, so each rule is tested
with hand-made frames and no pipeline (tests/test_timeline.py). The consumers that carry
frames (recording sessions, the restream relay, the live-view mux) apply them to buffers.
"""
