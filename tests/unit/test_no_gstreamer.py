"""The unit tests are what they claim to be: none of them (nor what they test) loads
GStreamer or the service, so they run on a machine without either."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
ROOT = HERE.parents[1]


def test_unit_test_modules_import_neither_gstreamer_nor_the_service():
    modules = sorted(f"tests.unit.{p.stem}" for p in HERE.glob("*.py") if p.stem != "__init__")
    assert len(modules) >= 5
    code = ("import sys\n"
            + "import tests.conftest\n"  # pytest loads it first: it must stay lazy too
            + "".join(f"import {m}\n" for m in modules)
            + "bad = sorted(m for m in sys.modules if m == 'gi' or m.startswith('gi.')"
              " or m == 'streamwarden.service' or m == 'uvicorn')\n"
              "print(','.join(bad))\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"loaded by a unit test: {result.stdout.strip()}"
