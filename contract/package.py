"""What a package folder declares: its input and output fields and its `ubiops.yaml`; and the
static checks of its code and requirements that the deployer runs before an upload."""

from __future__ import annotations

import ast
import codecs
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from packaging.requirements import InvalidRequirement, Requirement

from contract import calling
from contract.manifest import Manifest, read_manifest
from contract.spec import Spec, load_spec

INPUT_SPEC_FILE = "ubiops_input_spec.json"
OUTPUT_SPEC_FILE = "ubiops_output_spec.json"


@dataclass(frozen=True)
class Package:
    directory: Path
    input_spec: Spec
    output_spec: Spec
    manifest: Manifest


def read_package(directory: Path) -> Package:
    """Read a package folder's declarations; raises SpecError or ManifestError with the file named."""
    directory = directory.resolve()
    return Package(
        directory=directory,
        input_spec=load_spec(directory / INPUT_SPEC_FILE),
        output_spec=load_spec(directory / OUTPUT_SPEC_FILE),
        manifest=read_manifest(directory),
    )


REQUIREMENTS_FILE = "requirements.txt"


class PackageCheckError(ValueError):
    """A package file UbiOps would fail to build or load; the message names the file and line."""


def read_requirements(directory: Path) -> list[str]:
    """The requirements of `requirements.txt` (none when absent), read as pip reads the file.

    As pip: the text is decoded by its BOM (UTF-8, UTF-16, UTF-32), else by a `# -*- coding: … -*-`
    cookie on one of its first two lines, else as UTF-8; lines ending in `\\` are joined with the next;
    comments (`#` at the start or after a space) and blank lines are passed over, so are option lines
    (`-r`, `-e`, `--index-url`, …) and a requirement's own options (`--hash=…` of `pip-compile
    --generate-hashes`). Each requirement is checked as PEP 508 has it, but for those pip installs
    from where they point: a path (`./wheels/x.whl`, `./src/mylib`), a URL (`https://…/x.whl`), a VCS
    URL (`git+https://…@v1`), or a line naming `${VARIABLE}`s, which are taken as they are.
    """
    path = directory / REQUIREMENTS_FILE
    if not path.is_file():
        return []
    requirements: list[str] = []
    for number, line in requirement_lines(decoded_requirements(path.read_bytes())):
        text = " ".join(words_before_options(line.split(" "))).strip()  # split as pip splits it
        if not text:  # an option line
            continue
        try:
            requirements.append(str(Requirement(text)))
        except InvalidRequirement as exc:
            if not _installed_from_where_it_points(text):
                raise PackageCheckError(f"{REQUIREMENTS_FILE} line {number}: {text!r} is not a requirement ({exc})") from None
            requirements.append(text)
    return requirements


REQUIREMENTS_BOMS = (  # UTF-16 LE's BOM begins UTF-32 LE's: the longer first, as pip has them
    (codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF32_BE, "utf-32-be"), (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"), (codecs.BOM_UTF16_LE, "utf-16-le"))
CODING_COOKIE = re.compile(rb"coding[:=]\s*([-\w.]+)")
COMMENT = re.compile(r"(^|\s+)#.*$")
URL_SCHEMES = ("http", "https", "file", "ftp")
VCS_SCHEMES = ("git", "hg", "svn", "bzr")
ARCHIVE_SUFFIXES = (".whl", ".zip", ".tar.gz", ".tgz", ".tar", ".tar.bz2", ".tbz", ".tar.xz", ".txz",
                    ".tar.lz", ".tlz", ".tar.lzma")
ENVIRONMENT_VARIABLE = re.compile(r"\$\{[A-Z0-9_]+\}")
"""pip's `${NAME}`, which it replaces with the variable's value where it installs."""


def decoded_requirements(data: bytes) -> str:
    """The text of requirements.txt as pip decodes it; PackageCheckError when it cannot be."""
    encoding = "utf-8"
    bom = next(((b, e) for b, e in REQUIREMENTS_BOMS if data.startswith(b)), None)
    if bom:
        data, encoding = data[len(bom[0]):], bom[1]
    else:
        cookie = next((m for line in data.split(b"\n")[:2] if line.startswith(b"#")
                       if (m := CODING_COOKIE.search(line))), None)
        if cookie:
            encoding = cookie.group(1).decode("ascii")
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise PackageCheckError(f"{REQUIREMENTS_FILE} is not {encoding.upper()} text (byte {exc.start} cannot be decoded): "
                                "save it as UTF-8") from None
    except LookupError:
        raise PackageCheckError(f"{REQUIREMENTS_FILE} declares the encoding {encoding!r}, which does not exist: "
                                "save it as UTF-8, without the coding line") from None


def requirement_lines(text: str) -> Iterator[tuple[int, str]]:
    """The lines pip reads, numbered as their first line: `\\`-continued lines joined (a comment is never
    continued), comments removed, blank ones dropped."""
    joined: list[str] = []
    first = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if line.endswith("\\") and not COMMENT.match(line):
            first = first if joined else number
            joined.append(line.strip("\\"))
            continue
        if joined:
            line, number = "".join(joined) + (" " + line if COMMENT.match(line) else line), first
            joined = []
        line = COMMENT.sub("", line).strip()
        if line:
            yield number, line
    line = COMMENT.sub("", "".join(joined)).strip()
    if line:
        yield first, line


def words_before_options(words: Iterable[str]) -> Iterator[str]:
    """A line's words up to its first option (`--hash=…`)."""
    for word in words:
        if word.startswith("-"):
            return
        yield word


def _installed_from_where_it_points(text: str) -> bool:
    """Whether pip takes `text` as a path, an archive's name or a URL (and a VCS URL), not as a PEP 508
    requirement, or it holds `${NAME}`s it fills in first."""
    location = text.split(";", 1)[0].strip()
    scheme = urlsplit(location).scheme
    return (scheme in URL_SCHEMES or scheme.split("+", 1)[0] in VCS_SCHEMES or location.startswith(".")
            or "/" in location or location.lower().endswith(ARCHIVE_SUFFIXES)
            or bool(ENVIRONMENT_VARIABLE.search(text)))


def check_deployment_class(directory: Path, file_name: str = calling.DEPLOYMENT_FILE,
                           python: tuple[int, int] | None = None) -> str | None:
    """Check, without importing it, that `file_name` defines `Deployment` as UbiOps calls it
    (`contract.calling`: the rule the emulator's loader follows too). None when the check could tell;
    else why the source alone cannot (a class that inherits its methods, one imported or defined under
    an `if`, a method assigned or decorated, syntax newer than this Python while `python`, the
    environment's, is newer): a note, as only running the file decides, never a refusal."""
    path = directory / file_name
    if not path.is_file():
        raise PackageCheckError(f"{file_name} is missing; UbiOps runs the class Deployment from it"
                                f"{calling.missing_file_hint(directory, file_name)}")
    try:
        module = ast.parse(path.read_bytes(), filename=file_name)  # as Python reads it: a BOM, a coding cookie
    except SyntaxError as exc:
        running = sys.version_info[:2]
        if python is not None and python > running:
            return (f"Python {_dotted(running)}, the check's own, does not parse it ({exc.msg}, line {exc.lineno}); "
                    f"the environment's Python {_dotted(python)} is newer and may")
        raise PackageCheckError(f"{file_name} does not parse: {exc}") from None
    except ValueError as exc:
        raise PackageCheckError(f"{file_name} does not parse: {exc}") from None
    found = [n for n in module.body if isinstance(n, ast.ClassDef) and n.name == "Deployment"]
    elsewhere = [n for n in ast.walk(module) if n not in found and _binds(n, "Deployment", loose=not found)]
    if elsewhere:
        return f"Deployment is set on line {getattr(elsewhere[0], 'lineno', '?')} other than as a top-level class"
    if not found:
        classes = [n.name for n in module.body if isinstance(n, ast.ClassDef)]
        raise PackageCheckError(f"{file_name} defines no top-level class Deployment" + (
            f" (the classes it defines: {', '.join(classes)})" if classes else " (it defines no class)"))
    cls = found[-1]
    methods = {n.name: n for n in cls.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    others = [n for statement in cls.body if not isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef))
              for n in ([statement] if isinstance(statement, ast.ClassDef) else ast.walk(statement))]
    unread = [name for name in CALLED_METHODS if any(_binds(n, name) for n in others)
              or (name in methods and not _plain(methods[name]))]
    if "request" not in methods and "requests" not in methods and not unread:
        if cls.bases or cls.keywords or cls.decorator_list:
            return "Deployment defines neither request nor requests itself, and may inherit them"
        raise PackageCheckError(f"{file_name}: {calling.NEITHER_REQUEST_METHOD}")
    for name in CALLED_METHODS:
        if name in methods and name not in unread:
            problem = calling.call_problem(calling.signature_of_function(methods[name]), name)
            if problem:
                raise PackageCheckError(f"{file_name} line {methods[name].lineno}: Deployment.{name}: {problem}")
    if unread:
        return f"Deployment.{', Deployment.'.join(unread)}: not a plain method (assigned, decorated or conditional)"
    return None


CALLED_METHODS = ("__init__", *calling.REQUEST_METHODS)
PLAIN_DECORATORS = ("staticmethod", "classmethod")
"""The decorators `calling.signature_of_function` reads; a method with another may take any arguments."""


def _plain(method: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    decorators = method.decorator_list
    return not decorators or (len(decorators) == 1 and isinstance(decorators[0], ast.Name)
                              and decorators[0].id in PLAIN_DECORATORS)


def _binds(node: ast.AST, *names: str, loose: bool = False) -> bool:
    """Whether `node` may give one of `names` a value: a definition, an assignment, an import, a `global`;
    with `loose` (no class defines it), also a `*` import or the name as a string (`globals()[…] = …`)."""
    if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
        return node.name in names
    if isinstance(node, ast.Name):
        return isinstance(node.ctx, ast.Store) and node.id in names
    if isinstance(node, ast.alias):
        return (loose and node.name == "*") or (node.asname or node.name.split(".")[0]) in names
    if isinstance(node, (ast.Global, ast.Nonlocal)):
        return any(name in names for name in node.names)
    return loose and isinstance(node, ast.Constant) and node.value in names


def _dotted(version: tuple[int, int]) -> str:
    return ".".join(map(str, version))
