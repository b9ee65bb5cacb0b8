"""UbiOps' base environments: which exist, and which Python each one is.

A version names one (`python3-11`, `ubiops-ubuntu24-04-python3-13`, …); building a revision installs
the package's `requirements.txt` into a fresh virtual environment of that Python. The emulator and
the deployer's `check` both read the Python from the name here.
"""

from __future__ import annotations

import re

SYSTEM_ENVIRONMENTS = (
    *(f"python3-{minor}" for minor in range(9, 14)),
    "ubiops-ubuntu22-04-python3-11", "ubiops-ubuntu22-04-python3-12",
    "ubiops-ubuntu24-04-python3-12", "ubiops-ubuntu24-04-python3-13",
)
_PYTHON = re.compile(r"python(\d)-(\d+)$")
CONDA_FILE = "environment.yaml"
"""A conda environment, which UbiOps also builds into a package's environment (an implicit
environment file, as the CLI names them)."""
CONDA_NOT_BUILT = f"{CONDA_FILE} (conda) is not built by the emulator: only requirements.txt is installed here"
"""What the emulator's build, a failed start and `deployer check` say of a package holding one."""


def python_version(environment: str) -> tuple[int, int]:
    """The Python a base environment runs: `python3-11` and `ubiops-ubuntu22-04-python3-11` → (3, 11)."""
    found = _PYTHON.search(environment)
    if environment not in SYSTEM_ENVIRONMENTS or found is None:
        raise ValueError(f"{environment!r} is not a base environment; UbiOps offers {', '.join(SYSTEM_ENVIRONMENTS)}")
    return int(found[1]), int(found[2])
