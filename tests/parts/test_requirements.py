"""In process: the requirements files uv is handed, with their `${NAME}`s filled in as pip fills them in
(`contract.requirements.filled_in_file`); the install itself is in tests/test_environments.py."""

from __future__ import annotations

import pytest

from contract.requirements import filled_in_file


@pytest.mark.parametrize("line, handed", [
    ("six==${V}", "six==1.16.0"),
    ("${PKG}[${EXTRA}]>=${V} ; python_version >= '3'", "six[dev]>=1.16.0 ; python_version >= '3'"),
    ("six==${UNSET}", "six==${UNSET}"),
    ("-r base.txt", "-r .copy-base.txt"),
    ("-rbase.txt", "-r.copy-base.txt"),
    ("--requirement = sub/../base.txt  # shared", "--requirement = sub/../.copy-base.txt  # shared"),
    ("-c ${DIR}/base.txt", "-c ./.copy-base.txt"),
    ("-r other.txt", "-r other.txt"),
], ids=["version", "name-extra-and-marker", "unset", "include", "include-glued", "include-spelt-out", "include-named-by-a-variable",
        "include-not-copied"])
def test_a_requirements_file_is_handed_over_with_its_variables_filled_in_and_its_copied_includes_renamed(
        tmp_path, line, handed):
    """uv fills a `${NAME}` in only within a URL: `six==${V}` failed there, as pip fills it in anywhere."""
    (tmp_path / "requirements.txt").write_text(f"# a comment\n{line}\n")
    variables = {"V": "1.16.0", "PKG": "six", "EXTRA": "dev", "DIR": ".", "UNSET": ""}
    renamed = {tmp_path / "base.txt": ".copy-base.txt"}
    assert filled_in_file(tmp_path / "requirements.txt", variables, renamed) == f"# a comment\n{handed}\n"
