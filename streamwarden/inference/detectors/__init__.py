"""Detector implementations behind one interface (`base.Detector`), built in the worker."""
