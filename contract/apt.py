"""`ubiops.yaml`'s `apt` packages, held to what UbiOps' build does with them: `apt-get install` each,
which fails the build on a name apt does not know. The emulator installs none (a version runs with
this machine's system libraries); it asks this machine's apt about each, offline (`apt-cache policy`,
well under a second), and the emulator's build and `deployer check` both judge by `check_apt_packages`:

- a name apt knows that is not installed here is a warning: UbiOps installs it, here the deployment
  runs without it;
- a name apt does not know fails: on UbiOps it fails the build (a misspelt `libgl1-mesa-glxx`);
- a name apt here cannot judge is a warning: without `apt-cache` (a machine not of Debian's kind),
  without package lists (`apt-get update` never run, as in a slim Docker image), when `ubiops.yaml`
  adds apt sources (the name may be theirs), or when the environment names an Ubuntu release this
  machine is not (`ubiops-ubuntu24-04-…` on Debian 12: Ubuntu 24.04's `libasound2t64` is not
  Debian 12's). The `python3-X` environments do not say which release they run: their names are
  judged by this machine's apt.

A name this machine's apt knows is no proof for an environment of another Ubuntu release: one
that release dropped (DROPPED: `libgl1-mesa-glx`, `libasound2` on 24.04) fails, naming what replaces
it, on any machine, and the others it knows are a warning saying they were judged by this machine's
apt, not that release's.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field

APT_SECONDS = 30
"""How long apt-cache may take before the names are left unjudged (it answers in well under a second)."""
UBUNTU_RELEASE = re.compile(r"ubuntu(\d\d)-(\d\d)-")
"""The Ubuntu release an environment's name gives (`ubiops-ubuntu24-04-python3-13`: 24.04)."""
DROPPED = {
    "24.04": {
        "libgl1-mesa-glx": "it has no installation candidate since Ubuntu 23.10; libgl1 and libglx-mesa0 replace it",
        "libasound2": "it is only a virtual package there, which two packages provide, so apt-get cannot choose "
                      "(no installation candidate); libasound2t64 replaces it",
        "libtinfo5": "it has no installation candidate; libtinfo6 replaces it",
        "python3-distutils": "it has no installation candidate (Python 3.12 has no distutils); setuptools, in "
                             "requirements.txt, provides distutils",
        "libgconf-2-4": "Ubuntu 24.04 has no such package",
    },
}
"""Names this machine's apt (Debian 12, an older Ubuntu) may know that an Ubuntu release's apt-get
install fails on, each with why and what replaces it; only failures seen on that release are listed
(`apt-get install` of one renamed package of the 64-bit time transition, `libgtk-3-0`, takes its
only provider, `libgtk-3-0t64`, and goes on). Sources: `E: Package 'libgl1-mesa-glx' has no
installation candidate` (github.com/pyvista/setup-headless-display-action/issues/20), `Package
libasound2 is a virtual package provided by: liboss4-salsa-asound2 …, libasound2t64 …` and `E: Package
'libasound2' has no installation candidate` (github.com/bitfocus/companion-pi/issues/30), `E: Unable to
locate package libtinfo5` (github.com/akhilnarang/scripts/issues/209), `E: Package 'python3-distutils'
has no installation candidate` (github.com/armbian/build/issues/6527), `E: Unable to locate package
libgconf-2-4` (github.com/schlich/devcontainer-features/issues/69), each on Ubuntu 24.04."""


@dataclass(frozen=True)
class AptCheck:
    """What `ubiops.yaml`'s apt packages mean for a build here, each a sentence naming the package."""

    failures: list[str] = field(default_factory=list)
    """Names UbiOps' apt-get install fails on."""
    warnings: list[str] = field(default_factory=list)
    """Names installed there and missing here, or that cannot be judged here."""


def check_apt_packages(packages: Sequence[str], environment: str, adds_sources: bool = False) -> AptCheck:
    """Judge `packages` (ubiops.yaml's `apt.packages`) for a version of `environment`; `adds_sources`:
    ubiops.yaml's `apt.sources` names repositories UbiOps adds first."""
    wanted = {name: re.split(r"[=/]", name, maxsplit=1)[0] for name in packages}  # `pkg=1.2`, `pkg/bookworm`
    check = AptCheck()
    release = _other_release(environment)
    dropped = DROPPED.get(release or "", {})
    for name, asked in list(wanted.items()):
        if (why := dropped.get(_stem(asked))) is not None:
            del wanted[name]
            said = (f"ubiops.yaml's apt package {name} is not one UbiOps' apt-get install takes on Ubuntu {release}, "
                    f"which the environment {environment} runs: {why}")
            if adds_sources:
                check.warnings.append(f"{said} (unless the apt sources ubiops.yaml adds have it)")
            else:
                check.failures.append(said)
    if not wanted or shutil.which("apt-cache") is None:
        return check
    stems = sorted({_stem(asked) for asked in wanted.values()})
    known = dict.fromkeys(_installed(stems), True)
    if rest := [stem for stem in stems if stem not in known]:  # apt-cache takes ~0.4 s, dpkg-query ~7 ms
        policy = _policy(rest)
        if policy is None:
            check.warnings.append(f"ubiops.yaml's apt packages could not be checked: apt-cache did not answer within "
                                  f"{APT_SECONDS} s")
            return check
        known.update(policy)
    unknown = [name for name, asked in wanted.items() if _stem(asked) not in known]
    for name, asked in wanted.items():
        if _stem(asked) in known and not known[_stem(asked)]:
            check.warnings.append(f"ubiops.yaml's apt package {name} is not installed on this machine: UbiOps installs "
                                  f"it in the instance, here the deployment runs without it (`sudo apt-get install -y "
                                  f"{asked}` adds it)")
    if unknown:
        unjudged = _unjudged(environment, adds_sources)
        for name in unknown:
            if unjudged:
                check.warnings.append(f"ubiops.yaml's apt package {name} is not a package this machine's apt knows, "
                                      f"and it cannot tell whether UbiOps' does: {unjudged}")
            else:
                check.failures.append(f"ubiops.yaml's apt package {name} is not a package apt knows on "
                                      f"{_machine()}: UbiOps' apt-get install fails on it, and so its build; "
                                      f"check the name (`apt-cache search {_stem(name)}`)")
    if release and (judged := [name for name in wanted if name not in unknown]):
        several = len(judged) > 1
        check.warnings.append(
            f"ubiops.yaml's apt package{'s' if several else ''} {', '.join(judged)} {'were' if several else 'was'} judged "
            f"by the apt of {_machine()} alone: the environment {environment} runs Ubuntu {release}, where a name "
            f"that release dropped or renamed fails UbiOps' build (`apt-cache policy NAME` on Ubuntu {release} tells)")
    return check


def _stem(name: str) -> str:
    """A name without its architecture (`libc6:amd64` is libc6), as apt-cache prints it."""
    return name.partition(":")[0]


def _installed(names: list[str]) -> list[str]:
    """Those of `names` installed here, which apt knows without being asked: an instance of the default
    package starts without waiting for apt-cache."""
    try:
        done = subprocess.run(["dpkg-query", "-W", "-f=${Package} ${db:Status-Status}\n", "--", *names],
                              capture_output=True, text=True, check=False, timeout=APT_SECONDS, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line.split()[0] for line in done.stdout.splitlines() if line.endswith(" installed")]


def _policy(names: list[str]) -> dict[str, bool] | None:
    """Each of `names` apt knows, and whether it is installed (None: apt-cache did not answer)."""
    try:
        done = subprocess.run(["apt-cache", "policy", "--", *names], capture_output=True, text=True, check=False,
                              timeout=APT_SECONDS, env={**os.environ, "LC_ALL": "C"}, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    known: dict[str, bool] = {}
    name = None
    for line in done.stdout.splitlines():
        if not line.startswith(" ") and line.endswith(":"):
            name = _stem(line[:-1])
            known[name] = False
        elif name is not None and line.strip().startswith("Installed:"):
            known[name] = line.split(":", 1)[1].strip() != "(none)"
    return known


def _unjudged(environment: str, adds_sources: bool) -> str:
    """Why a name this machine's apt does not know may still be one UbiOps' apt knows ("" if it may not)."""
    if adds_sources:
        return "ubiops.yaml adds apt sources, which may have it"
    if not has_package_lists():
        return "apt has no package lists here (`sudo apt-get update` reads them)"
    release = _other_release(environment)
    if release:
        return f"the environment {environment} runs Ubuntu {release}, whose names may differ from those of {_machine()}"
    return ""


def _other_release(environment: str) -> str | None:
    """The Ubuntu release `environment` names (`24.04`) when this machine is not that release, else None."""
    release = UBUNTU_RELEASE.search(environment)
    if release is None:
        return None
    ubuntu = f"{release[1]}.{release[2]}"
    same = _os_release().get("ID") == "ubuntu" and _os_release().get("VERSION_ID") == ubuntu
    return None if same else ubuntu


def has_package_lists() -> bool:
    """Whether apt has read any repository's package list (a slim Docker image has none: every name
    not installed would seem unknown)."""
    try:
        done = subprocess.run(["apt-cache", "policy"], capture_output=True, text=True, check=False, timeout=APT_SECONDS,
                              env={**os.environ, "LC_ALL": "C"}, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return any(line.rstrip().endswith(" Packages") for line in done.stdout.splitlines())


def _os_release() -> dict[str, str]:
    try:
        return platform.freedesktop_os_release()
    except OSError:
        return {}


def _machine() -> str:
    """`this machine (Debian GNU/Linux 12 (bookworm))`, as its os-release names it."""
    name = _os_release().get("PRETTY_NAME")
    return f"this machine ({name})" if name else "this machine"
