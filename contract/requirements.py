"""What a package's requirements files read from disk: the files they include (`-r`, `-c`), the
folders they search (`-f`/`--find-links`, a `file:` index), and the archives and folders they install
(`./wheels/x.whl`, `mylib @ file:wheels/x.whl`, `-e ./src/mylib`).

UbiOps builds the package on its own machine from the package's files alone: a requirement on an
absolute path (`/home/me/x.whl`, `file:///…`, `-e /src`, `-r /…`) or on one that leaves the package
(`../x.whl`) installs here from the developer's disk and fails there, so it is refused
(`file_references`). So is such a `--find-links` folder (`~/wheels`), though UbiOps' pip passes over
a missing one with a warning: here it would install from the developer's disk what UbiOps installs
from its index, or not at all. A `${NAME}` pip fills in, anywhere in a line (`six==${SIX_VERSION}`,
`mylib @ ./wheels/${MYLIB_WHEEL}`), is filled in from the version's own variables alone, those its
instances get, as UbiOps' build has no others (the developer's shell may have `WHEELDIR=/tmp/…`,
UbiOps' build does not), and the line is judged as filled in; one the version does not set (or sets
empty) stays as written, as pip leaves it. The emulator's build (`emulator.runtime.python_envs`, which
also keys its cache by what the references hold, so a rebuilt wheel that kept its version number builds
anew, and hands uv the files filled in: `filled_in_file`) and the deployer's check read them here, the
same way.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from contract.package import (
    ARCHIVE_SUFFIXES,
    ENVIRONMENT_VARIABLE,
    REQUIREMENTS_FILE,
    PackageCheckError,
    decoded_requirements,
    requirement_lines,
    words_before_options,
)

INCLUDES = ("-r", "-c")
"""The options naming another requirements file (a requirement file, a constraints file)."""
FIND_LINKS = "-f"
EDITABLE = "-e"
INDEX = "-i"
OPTIONS = {"-r": "-r", "--requirement": "-r", "-c": "-c", "--constraint": "-c", "-f": FIND_LINKS,
           "--find-links": FIND_LINKS, "-e": EDITABLE, "--editable": EDITABLE, "-i": INDEX, "--index-url": INDEX,
           "--extra-index-url": INDEX}
"""The options whose value may be a place on disk, by each spelling pip takes."""
NAME_AT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\s*(?:\[[^\]]*\])?\s*@\s*(?P<target>.+)")
"""A PEP 508 direct reference, `name[extras] @ target`."""
EXTRAS = re.compile(r"\[[^\]]*\]$")
INCLUDE_LINE = re.compile(r"(?P<option>\s*(?:--requirement|--constraint|-r|-c))(?P<gap>\s*=\s*|\s*)(?P<target>[^\s#]+)")
"""A line including another requirements file, as pip writes it (`-r base.txt`, `-rbase.txt`, `--constraint=c.txt`)."""


class RequirementsError(PackageCheckError):
    """A requirement on files UbiOps' build will not have; the message names the file, the line and why."""


@dataclass(frozen=True)
class FileReference:
    """A place on disk a requirements file names."""

    option: str
    """How: `-r`, `-c`, `-f` (a folder to search, or a `file:` index: `-i`), `-e`, or "" (a requirement)."""
    path: Path
    """Where, resolved against the folder of the file that names it."""


@dataclass(frozen=True)
class RequirementFiles:
    """What the package's requirements files name: places on disk, and variables."""

    references: list[FileReference] = field(default_factory=list)
    variables: dict[str, str | None] = field(default_factory=dict)
    """Each `${NAME}` the files hold, with the value it is filled in with; None: the version's variables
    do not set it (or set it empty), so it stays as written."""


def file_references(package_dir: Path, variables: Mapping[str, str] | None = None) -> list[FileReference]:
    """The places on disk the package's requirements.txt (and each file it includes) names, in order,
    with its `${NAME}`s filled in from `variables` (the version's); RequirementsError for one UbiOps'
    build would not find: an absolute path, or one out of the package. An include that is missing or
    loops is left to the installer to report."""
    return requirement_files(package_dir, variables).references


def requirement_files(package_dir: Path, variables: Mapping[str, str] | None = None) -> RequirementFiles:
    """`file_references`, and the `${NAME}`s the files hold with the values they are filled in with."""
    package_dir = Path(os.path.abspath(package_dir))
    found = RequirementFiles()
    _read(package_dir / REQUIREMENTS_FILE, package_dir, variables or {}, found, set())
    return found


def filled_in(line: str, variables: Mapping[str, str], named: dict[str, str | None] | None = None) -> str:
    """`line` with each `${NAME}` pip fills in replaced by its value in `variables`; one without a value
    there, or with an empty one, stays as written (pip's rule). `named` gets each name and its value."""
    def value(match: re.Match[str]) -> str:
        name = match[0][2:-1]
        found = variables.get(name) or None
        if named is not None:
            named[name] = found
        return found if found is not None else match[0]
    return ENVIRONMENT_VARIABLE.sub(value, line)


def filled_in_file(path: Path, variables: Mapping[str, str], renamed: Mapping[Path, str]) -> str:
    """The text of the requirements file `path` with each `${NAME}` filled in from `variables` anywhere in a
    line, as pip does (`filled_in`), and each file it includes that `renamed` names (by its resolved path)
    named by its new name there, in the same folder: what uv, which fills them in only within URLs, is handed
    (`emulator.runtime.python_envs`). PackageCheckError when it cannot be decoded."""
    lines = []
    for line in decoded_requirements(path.read_bytes()).splitlines():
        line = filled_in(line, variables)
        if (include := INCLUDE_LINE.match(line)) and (
                new := renamed.get(Path(os.path.normpath(path.parent / include["target"])))):
            line = (include["option"] + include["gap"] + os.path.join(os.path.dirname(include["target"]), new)
                    + line[include.end():])
        lines.append(line)
    return "\n".join(lines) + "\n"


def _read(path: Path, package_dir: Path, variables: Mapping[str, str], found: RequirementFiles,
          seen: set[Path]) -> None:
    if path in seen or not path.is_file():
        return
    seen.add(path)
    for number, written_line in requirement_lines(decoded_requirements(path.read_bytes())):
        named: dict[str, str | None] = {}
        line = filled_in(written_line, variables, named)
        found.variables.update(named)
        for option, written in _places(line):
            where = _local(written, option)
            if where is None:
                continue
            filled = [name for name, value in named.items() if value is not None]
            shown = f"{path.relative_to(package_dir)} line {number}: " + (
                f"{written_line} (its {', '.join('${' + name + '}' for name in filled)} filled in from the version's "
                "variables)" if filled else written)  # not the values: a secret may be one
            if where.startswith(("/", "~")):
                raise RequirementsError(
                    f"{shown} is a path on this machine: UbiOps builds the package elsewhere, from its own files "
                    f"alone, where it does not exist; put it in the package and name it relative to "
                    f"{REQUIREMENTS_FILE} (./wheels/x.whl, --find-links ./wheels)")
            target = Path(os.path.normpath(path.parent / where))
            if not target.is_relative_to(package_dir):
                raise RequirementsError(
                    f"{shown} is outside the package: UbiOps gets the package's files alone; move it into the "
                    "package and name it there (./wheels/x.whl)")
            found.references.append(FileReference(option, target))
            if option in INCLUDES:
                _read(target, package_dir, variables, found, seen)


def _places(line: str) -> Iterator[tuple[str, str]]:
    """The values of a line that may be places on disk, each with its option ("" for a requirement)."""
    try:
        words = shlex.split(line)
    except ValueError:  # an unclosed quote: left to the installer
        words = line.split()
    if not words:
        return
    if not words[0].startswith("-"):
        requirement = " ".join(words_before_options(words)).split(";", 1)[0].strip()
        named = NAME_AT.fullmatch(requirement)
        yield "", named["target"].strip() if named else requirement
        return
    rest = iter(words)
    for word in rest:
        name, equals, value = word.partition("=") if word.startswith("--") else (word, "", "")
        if not word.startswith("--") and len(word) > 2 and word[:2] in OPTIONS:  # `-rbase.txt`, as optparse reads it
            name, value = word[:2], word[2:]
        if name in OPTIONS:
            value = value if equals or value else next(rest, "")
            if value:
                yield OPTIONS[name], value


def _local(written: str, option: str) -> str | None:
    """The path `written` names on disk, as written (absolute, `~…`, or relative), or None: a name, or a
    URL of another kind. One still holding a `${NAME}` (the version's variables do not set it) is not
    judged: it names no place the build finds, and the installer says so."""
    if ENVIRONMENT_VARIABLE.search(written):
        return None
    scheme = urlsplit(written).scheme.lower()
    if scheme == "file" or scheme.endswith("+file"):  # `file:wheels/x.whl`, `file:///…`, `git+file:///…`
        parts = urlsplit(written.split("+", 1)[1] if "+" in scheme else written)
        if parts.netloc not in ("", "localhost"):
            return "/" + parts.netloc + unquote(parts.path)  # a share of another machine's
        return unquote(parts.path) or "."
    if len(scheme) > 1 or option == INDEX:  # a URL (a one-letter scheme is a Windows drive)
        return None
    path = EXTRAS.sub("", written.split("#", 1)[0])  # `./mylib[dev]`, `./x.whl#egg=x`
    if option or path.startswith((".", "~")) or "/" in path or path.lower().endswith(ARCHIVE_SUFFIXES):
        return path
    return None  # a name: `mylib==1.0`
