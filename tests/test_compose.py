"""No Docker engine runs here: check what can be checked without one."""

from __future__ import annotations

import re

import yaml
from harness import ROOT


def readme_commands() -> list[str]:
    """The commands in the README's first shell block: serve, then test."""
    block = re.search(r"```(?:sh|bash)\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    return [line.split("#")[0].strip() for line in block.splitlines() if line.split("#")[0].strip()]


def test_compose_file_parses_and_runs_the_readme_serve_command():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    service = compose["services"]["emulator"]
    serve = readme_commands()[0]
    assert service["command"][:2] == serve.split()[:2] == ["make", "serve"]
    assert service["command"][2] == "ARGS=--host 0.0.0.0", "inside a container the emulator must listen beyond loopback"
    assert service["ports"] == ["127.0.0.1:8000:8000"], "published on the host's loopback only"
    assert "./deployment_package:/app/deployment_package" in service["volumes"]


def test_dockerfile_uses_the_same_setup_and_command():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "RUN make setup PYTHON=python3.11" in dockerfile
    assert 'CMD ["make", "serve", "ARGS=--host 0.0.0.0"]' in dockerfile
    assert readme_commands()[1] == "make test"


def test_the_image_leaves_out_env_files():
    """The Dockerfile copies the whole folder: a .env holding EMULATOR_TOKEN, which Docker Compose reads,
    was baked into the image."""
    patterns = (ROOT / ".dockerignore").read_text().splitlines()
    assert "COPY . ." in (ROOT / "Dockerfile").read_text()
    assert {"**/.env", "**/.env.*"} <= set(patterns), "a .env at any depth, the folder's own included"
