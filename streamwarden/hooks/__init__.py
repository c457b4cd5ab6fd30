"""Hooks and webhooks: commands run and JSON POSTed when something happens to a stream.

`triggers.py` maps the notifier's messages to hook triggers (pure); `runner.py` runs the
configured commands, `webhooks.py` delivers to URLs; both are `Notifier` listeners that only
queue, so neither can hold up the notifier, ingest or the asyncio loop. The policies they
follow (run queue, output budget, retries and backoff, signatures) are plain modules with
unit tests. Nothing here is imported by this package's `__init__`, so `config` may import
`triggers` without a cycle.
"""
