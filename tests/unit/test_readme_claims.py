"""Every row of the README's "What is proven" table names the tests that prove it, and each named
test exists. A reference is `DIR/test_file.py::test_name`: DIR is a molecule scenario
(tests/molecule/DIR/tests/) or a folder of tests/ (unit, ...)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = re.compile(r"`([\w-]+)/(test_[\w]+\.py)::(test_\w+)`")


def proven_table(markdown: str) -> list[list[str]]:
    """The rows (cells) of the first table after the 'What is proven' heading."""
    start = markdown.index("## What is proven")
    rows: list[list[str]] = []
    for line in markdown[start:].splitlines()[1:]:
        if line.startswith("## "):
            break
        if line.startswith("|"):
            rows.append([c.strip() for c in line.strip().strip("|").split("|")])
        elif rows:
            break
    return [r for r in rows[2:]]  # without the header and its rule


def _resolve(folder: str, name: str) -> Path | None:
    for candidate in (ROOT / "tests" / "molecule" / folder / "tests" / name,
                      ROOT / "tests" / folder / name):  # fmt: skip
        if candidate.is_file():
            return candidate
    return None


def _test_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}


def claim_problems(markdown: str) -> list[str]:
    rows = proven_table(markdown)
    if not rows:
        return ["no 'What is proven' table"]
    problems = []
    for cells in rows:
        claim = cells[0][:60]
        refs = REFERENCE.findall(" ".join(cells[1:]))
        if not refs:
            problems.append(f"row '{claim}': names no test (`dir/test_file.py::test_name`)")
        for folder, file, test in refs:
            path = _resolve(folder, file)
            if path is None:
                problems.append(f"row '{claim}': {folder}/{file} does not exist")
            elif test not in _test_names(path):
                problems.append(f"row '{claim}': {folder}/{file} has no {test}")
    return problems


def test_every_claim_in_the_readme_names_tests_that_exist() -> None:
    problems = claim_problems((ROOT / "README.md").read_text(encoding="utf-8"))
    assert not problems, "\n".join(problems)


def test_a_row_naming_a_missing_test_or_none_is_reported() -> None:
    table = (
        "## What is proven\n\n| promise | proved by | against |\n|---|---|---|\n"
        "| a | `unit/test_readme_claims.py::test_does_not_exist` | x |\n"
        "| b | prose only | x |\n"
        "| c | `nowhere/test_x.py::test_y` | x |\n"
        "| d | `unit/test_readme_claims.py::test_a_row_naming_a_missing_test_or_none_is_reported`"
        " | x |\n"
    )
    problems = claim_problems(table)
    assert len(problems) == 3, problems
    assert "has no test_does_not_exist" in problems[0]
    assert "names no test" in problems[1]
    assert "does not exist" in problems[2]
