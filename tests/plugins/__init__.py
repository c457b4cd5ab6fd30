"""Detector plugins for tests (loaded by the worker through `[inference] plugin`)."""
