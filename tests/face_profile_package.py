"""Whether a package is the face profile, the template's default package: the README's samples, the
tests marked `face_profile` and the benchmarks of `bench/` send its portraits to its `img` field and
time its model. A repository whose package was replaced (README, *Your own model*) has none of
them. Told as scripts/build_model.py tells it, by the face_profile library the model unpickles
with. Standard library only: the benchmarks ask before importing what only the face profile needs.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FACE_PROFILE = ROOT / "deployment_package"
"""Where the benchmarks find the face profile (as scripts/build_model.py does), whatever `[tool.deployer]` names."""
LIBRARY = Path("libraries") / "face_profile"
ELSEWHERE = ("run it in a checkout that still has the face profile (git worktree add DIR <a commit before your package>); "
             "bench/app_cpu.py measures the emulator's own cost per request on a trivial package without it")
"""What to do instead, for the benchmarks of the face profile alone."""


def is_face_profile(package: Path) -> bool:
    """Whether `package` holds the face_profile library, as only the face-profile package does."""
    return (package / LIBRARY / "__init__.py").is_file()


def require_face_profile(script: str, measures: str, instead: str, package: Path = FACE_PROFILE) -> None:
    """Exit 2 with one line saying what `script` measures (`measures`: "measures …") and what to do,
    unless `package` is the face profile: without it the script failed on a missing portrait or module,
    saying neither."""
    if not is_face_profile(package):
        print(f"{script}: {measures}, and {package} is not the face-profile package (it has no {LIBRARY}): "
              f"{instead}", file=sys.stderr)
        raise SystemExit(2)
