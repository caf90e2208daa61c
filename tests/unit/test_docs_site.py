"""The documentation site (mkdocs.yml, docs/): the generated reference pages match the code,
`mkdocs build --strict` passes (and fails on a broken link), every internal link and anchor of
the built site resolves, the "What CI proves" page is the README's table, and headless Chromium
screenshots of the home page, a runbook and the newcomers' guide at phone and desktop widths are
not blank. The screenshots are kept in tests/.artifacts/docs-screenshots/ (CI artefacts)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from cli_testlib import load_module
from screenshots import WIDTHS, blank_reasons, screenshot

REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / "tests" / ".artifacts" / "docs-screenshots"
MKDOCS = Path(sys.executable).parent / "mkdocs"
PAGES = {
    "home": "index.html",
    "runbook-restore": "runbooks/restore/index.html",
    "newcomers": "community/newcomers/index.html",
}


docs_site = load_module("docs_site", REPO / "scripts" / "docs_site.py")


def build(config: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(MKDOCS), "build", "--strict", "--config-file", str(config), "--site-dir", str(out)],
        cwd=config.parent, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    done = build(REPO / "mkdocs.yml", out)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out


# --- generated pages ------------------------------------------------------------------------


def test_generated_reference_pages_are_current() -> None:
    assert docs_site.stale() == [], "run scripts/docs_site.py"


def test_a_stale_generated_page_is_caught(tmp_path: Path) -> None:
    for relative in docs_site.PAGES:
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / relative, tmp_path / relative)
    assert docs_site.stale(tmp_path) == []
    page = tmp_path / "docs" / "reference" / "role-variables.md"
    page.write_text(page.read_text().replace("`backup_restic_repository`", "`backup_repo`"))
    assert docs_site.stale(tmp_path) == ["docs/reference/role-variables.md"]


def test_the_reference_names_every_role_variable_and_cli_option() -> None:
    roles = (REPO / "docs" / "reference" / "role-variables.md").read_text()
    for spec in REPO.glob("roles/*/meta/argument_specs.yml"):
        for name in re.findall(r"^      ([a-z][a-z0-9_]*):$", spec.read_text(), re.M):
            assert f"`{name}`" in roles, f"{spec.parent.parent.name}: {name}"
    cli = (REPO / "docs" / "reference" / "cli.md").read_text()
    for option in ("--answers", "--force", "--dry-run", "--vault-password-file", "--users"):
        assert f"`{option}`" in cli


# --- the build ------------------------------------------------------------------------------


def test_the_site_builds_in_strict_mode(site: Path) -> None:
    assert (site / "index.html").is_file()
    assert (site / "runbooks" / "restore" / "index.html").is_file()


def test_strict_mode_fails_on_a_broken_link(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "index.md").write_text("# Home\n\nSee [the missing page](missing.md).\n")
    (tmp_path / "mkdocs.yml").write_text("site_name: t\nstrict: true\n")
    done = build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert done.returncode != 0
    assert "missing.md" in done.stderr + done.stdout


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if values.get("id"):
            self.ids.add(str(values["id"]))
        if tag == "a" and values.get("name"):
            self.ids.add(str(values["name"]))
        for attribute in ("href", "src"):
            if values.get(attribute) and tag in ("a", "link", "script", "img"):
                self.links.append(str(values[attribute]))


def _parse(path: Path) -> _Links:
    parser = _Links()
    parser.feed(path.read_text(encoding="utf-8", errors="replace"))
    return parser


def link_problems(site: Path) -> tuple[list[str], int]:
    """Internal links of the built site whose file or anchor does not exist, and how many
    internal links were checked."""
    pages = {p: _parse(p) for p in site.rglob("*.html")}
    problems, checked = [], 0
    for page, parsed in pages.items():
        for link in parsed.links:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc or link.startswith(("mailto:", "javascript:")):
                continue
            checked += 1
            path = unquote(parts.path)
            # 404.html links from the site's root: it is served for a missing page at any depth.
            base = site if path.startswith("/") else page.parent
            target = (base / path.lstrip("/")).resolve() if path else page
            if target.is_dir():
                target = target / "index.html"
            where = f"{page.relative_to(site)}: {link}"
            if not target.is_file():
                problems.append(f"{where} (no such file)")
                continue
            if parts.fragment and target.suffix == ".html":
                ids = pages[target].ids if target in pages else _parse(target).ids
                if unquote(parts.fragment) not in ids:
                    problems.append(f"{where} (no such anchor)")
    return problems, checked


def test_every_internal_link_and_anchor_resolves(site: Path) -> None:
    problems, checked = link_problems(site)
    assert problems == []
    assert checked > 500, checked  # every page's navigation, the pages' own links and assets


def test_the_link_check_catches_a_missing_file_and_a_missing_anchor(tmp_path: Path) -> None:
    (tmp_path / "a.html").write_text('<a href="b.html#there">b</a> <a href="c.html">c</a>')
    (tmp_path / "b.html").write_text('<h2 id="here">B</h2>')
    problems, checked = link_problems(tmp_path)
    assert checked == 2
    assert problems == ["a.html: b.html#there (no such anchor)", "a.html: c.html (no such file)"]


def test_what_ci_proves_is_the_readme_table(site: Path) -> None:
    readme = (REPO / "README.md").read_text()
    section = readme.split("[start:proven]", 1)[1].split("[end:proven]", 1)[0]
    named = set(re.findall(r"`([a-z0-9_-]+/test_[a-z0-9_]+\.py::test_[a-z0-9_]+)`", section))
    assert len(named) > 100
    page = (site / "ci-proves" / "index.html").read_text()
    assert {n for n in named if n not in page} == set()


# --- screenshots ----------------------------------------------------------------------------


@pytest.mark.parametrize("width", sorted(WIDTHS))
@pytest.mark.parametrize("page", sorted(PAGES))
def test_screenshot_is_not_blank(site: Path, page: str, width: str) -> None:
    out = SHOTS / f"{page}-{width}.png"
    screenshot((site / PAGES[page]).as_uri(), WIDTHS[width], out)
    assert blank_reasons(out) == [], out


def test_a_blank_page_is_recognised(tmp_path: Path) -> None:
    empty = tmp_path / "empty.html"
    empty.write_text("<html><body></body></html>")
    out = tmp_path / "empty.png"
    screenshot(empty.as_uri(), WIDTHS["phone"], out)
    assert blank_reasons(out) != []
