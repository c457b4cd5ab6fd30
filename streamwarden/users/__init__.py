"""Users and roles: permissions, password hashes, the users file, sessions, login backoff.

Nothing here imports GStreamer or the web framework: the API (api/auth.py, api/access.py)
and the RTSP server (restream/auth.py) adapt it.
"""
