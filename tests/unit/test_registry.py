"""The running streams by id (ingest/registry.py): lookups and their errors. Plain objects."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from streamwarden.ingest.registry import StreamExistsError, StreamNotFoundError, StreamRegistry


def test_streams_are_found_by_id_until_removed():
    registry = StreamRegistry()
    a, b = SimpleNamespace(id="a"), SimpleNamespace(id="b")
    registry.add(a)
    registry.add(b)
    assert registry.get("a") is a and registry.find("b") is b and "a" in registry
    assert registry.all() == [a, b] and len(registry) == 2
    with pytest.raises(StreamExistsError):
        registry.add(SimpleNamespace(id="a"))
    assert registry.get("a") is a  # the running stream is kept
    assert registry.pop("a") is a
    assert registry.find("a") is None and "a" not in registry
    with pytest.raises(StreamNotFoundError):
        registry.get("a")
    with pytest.raises(StreamNotFoundError):
        registry.pop("a")
    assert registry.clear() == [b] and registry.all() == []
