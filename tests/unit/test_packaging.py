"""The packaging files, checked where they cannot be run: both Dockerfiles follow one recipe
(the install script, an overridable base, a non-root user, volumes, the readiness
HEALTHCHECK), the compose example and the default configs are valid, and the systemd unit
passes `systemd-analyze verify`. tests/test_image.py builds and runs the CPU image itself;
the NVIDIA one needs a registry for its CUDA base, so this is its check in CI."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from streamwarden.config.loader import load_config

REPO = Path(__file__).resolve().parents[2]
DOCKERFILES = ("Dockerfile", "Dockerfile.nvidia")


def instructions(name: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = (REPO / name).read_text()
    text = re.sub(r"\\\n", " ", "\n".join(
        line for line in text.splitlines() if not line.lstrip().startswith("#")))
    out = []
    for line in text.splitlines():
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            out.append((keyword.upper(), " ".join(rest.split())))
    return out


@pytest.mark.parametrize("name", DOCKERFILES)
def test_dockerfiles_share_the_recipe(name):
    steps = instructions(name)
    keywords = [k for k, _ in steps]
    assert steps[0][0] == "ARG" and steps[0][1].startswith("BASE=")
    assert steps[1] == ("FROM", "${BASE}"), "the base must be overridable (--build-arg BASE)"
    run = " ".join(args for k, args in steps if k == "RUN")
    assert "/opt/streamwarden-src/scripts/install-runtime.sh --venv /opt/streamwarden" in run
    assert "useradd --system" in run and "rm -rf /var/lib/apt/lists/*" in run
    assert ("USER", "streamwarden") in steps
    assert keywords.index("USER") > keywords.index("RUN"), "installs as root, runs as the user"
    assert ("VOLUME", '["/config", "/data", "/recordings"]') in steps
    healthcheck = dict(steps)["HEALTHCHECK"]
    assert healthcheck.endswith('CMD ["streamwarden", "health", "--ready"]')
    assert ("ENTRYPOINT", '["streamwarden"]') in steps
    assert ("CMD", '["run", "--config", "/config/streamwarden.toml"]') in steps
    config = re.search(r"packaging/(\S+\.toml) /config/streamwarden\.toml", run)
    assert config and (REPO / "packaging" / config.group(1)).is_file()


def test_the_nvidia_image_differs_only_in_base_gpu_runtime_and_config():
    cpu, gpu = instructions("Dockerfile"), instructions("Dockerfile.nvidia")
    assert dict(gpu)["ARG"].startswith("BASE=nvidia/cuda:") and "cudnn-runtime" in dict(gpu)["ARG"]
    assert dict(cpu)["ARG"] == "BASE=debian:12-slim"
    gpu_run = dict(gpu)["RUN"]
    assert "install-runtime.sh --venv /opt/streamwarden --gpu" in gpu_run
    normalise = {"--venv /opt/streamwarden --gpu": "--venv /opt/streamwarden",
                 "container-nvidia.toml": "container.toml"}
    for old, new in normalise.items():
        gpu_run = gpu_run.replace(old, new)
    assert gpu_run == dict(cpu)["RUN"]
    rest = [s for s in gpu if s[0] not in ("ARG", "ENV", "RUN")]
    assert rest == [s for s in cpu if s[0] not in ("ARG", "ENV", "RUN")]
    assert load_config(REPO / "packaging/container-nvidia.toml").inference.backend == "nvidia"


def test_install_script_knows_the_gpu_option_and_setup_uses_it():
    script = (REPO / "scripts/install-runtime.sh").read_text()
    assert "--gpu) GPU=1" in script and "onnxruntime-gpu" in script
    setup = (REPO / "scripts/setup.sh").read_text()
    assert "exec scripts/install-runtime.sh --editable --extras test" in setup


def test_the_build_context_leaves_out_the_venv_and_the_data():
    ignore = (REPO / ".dockerignore").read_text().splitlines()
    assert ignore[ignore.index("*") + 1:].count("!streamwarden") == 1
    assert "!.venv" not in ignore and "!tests" not in ignore


@pytest.mark.parametrize("name", ["container.toml", "container-nvidia.toml", "compose.toml",
                                  "streamwarden.toml"])
def test_shipped_configs_load(name):
    config = load_config(REPO / "packaging" / name)
    assert config.app.database.startswith(("/data/", "/var/lib/streamwarden/"))


def test_compose_example_wires_the_broker_and_the_volumes():
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    service = compose["services"]["streamwarden"]
    assert service["build"] == "." and "mosquitto" in service["depends_on"]
    assert "STREAMWARDEN_API_TOKEN" in service["environment"]
    mounts = {v.split(":")[1] for v in service["volumes"]}
    assert {"/config/streamwarden.toml", "/data", "/recordings"} <= mounts
    config = load_config(REPO / "packaging/compose.toml")
    assert config.mqtt is not None and config.mqtt.host == "mosquitto"
    assert config.mqtt.home_assistant
    broker = compose["services"]["mosquitto"]
    assert (REPO / broker["volumes"][0].split(":")[0]).is_file()


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_unit_verifies_and_is_hardened(tmp_path):
    unit = (REPO / "packaging/streamwarden.service").read_text()
    for setting in ("NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes",
                    "PrivateTmp=yes", "ReadWritePaths=/var/lib/streamwarden",
                    "CapabilityBoundingSet=\n", "User=streamwarden",
                    "SystemCallFilter=@system-service"):
        assert setting in unit, setting
    # verify needs the program to exist: the checkout's own entry point stands in for it
    program = str(Path(sys.executable).parent / "streamwarden")
    copy = tmp_path / "streamwarden.service"
    copy.write_text(unit.replace("/opt/streamwarden/bin/streamwarden", program))
    result = subprocess.run(["systemd-analyze", "verify", str(copy)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0 and "streamwarden.service" not in result.stderr, result.stderr
