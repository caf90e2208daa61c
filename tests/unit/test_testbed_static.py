"""Static checks of the container test bed: every molecule scenario keeps the
one allowed container shape (never privileged, never the host network, exactly
the documented capability set, local images only) and uses the shared pieces.
The same facts are checked at runtime by tests/molecule/shared/create.yml and
by tests/molecule/shared/tests/test_testbed_safety.py in every verify."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
MOLECULE = ROOT / "tests" / "molecule"
SHARED = yaml.safe_load((MOLECULE / "shared" / "vars" / "testbed.yml").read_text(encoding="utf-8"))
SCENARIOS = sorted(p.parent for p in MOLECULE.glob("*/molecule.yml"))
RUN_SCENARIOS = ROOT / "tests" / "testbed" / "run-scenarios.sh"
SAFETY_CHECK = "../../shared/tests/test_testbed_safety.py"
FORBIDDEN_KEYS = ("networks", "pid_mode", "ipc_mode", "userns_mode", "devices", "network_mode")


def platform_problems(platform: dict[str, Any]) -> list[str]:
    """Everything wrong with one molecule platform, as readable sentences."""
    problems = []
    if platform.get("privileged") is not False:
        problems.append("privileged must be set to false")
    if platform.get("network_mode", "bridge") != "bridge":
        problems.append("network_mode must stay the default bridge")
    for key in FORBIDDEN_KEYS:
        if key in platform and not (key == "network_mode" and platform[key] == "bridge"):
            problems.append(f"{key} must not be set")
    if platform.get("image") not in SHARED["testbed_allowed_images"]:
        problems.append("image must be a local instance-testbed image")
    if platform.get("pre_build_image") is not True or platform.get("pull") is not False:
        problems.append("pre_build_image: true and pull: false are required")
    if platform.get("command") != "/sbin/init":
        problems.append("command must be /sbin/init")
    if platform.get("cgroupns_mode") != "host":
        problems.append("cgroupns_mode must be host")
    for key in ("capabilities", "security_opts", "volumes", "tmpfs"):
        if sorted(platform.get(key) or []) != sorted(SHARED[f"testbed_{key}"]):
            problems.append(f"{key} must be exactly {SHARED[f'testbed_{key}']}")
    return problems


def _load(scenario: Path) -> dict[str, Any]:
    data = yaml.safe_load((scenario / "molecule.yml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _platforms(scenario: Path) -> list[dict[str, Any]]:
    platforms = _load(scenario).get("platforms") or []
    assert platforms, f"{scenario.name}: no platforms"
    return list(platforms)


def _section(data: dict[str, Any], key: str) -> dict[str, Any]:
    """molecule 26 reads `ansible.<key>` and still accepts legacy `provisioner.<key>`."""
    return dict(data.get("ansible", {}).get(key) or data.get("provisioner", {}).get(key) or {})


def _scenario_block(name: str) -> list[str]:
    """The lines of the bash array `name=( ... )` in run-scenarios.sh."""
    text = RUN_SCENARIOS.read_text(encoding="utf-8")
    block = re.search(rf"^{name}=\(\n(.*?)^\)", text, re.S | re.M)
    assert block is not None, f"{name}=( ... ) block missing"
    return [line.strip() for line in block.group(1).splitlines() if line.strip()]


def _listed_scenarios() -> list[str]:
    return [line.split("#")[0].strip() for line in _scenario_block("ALL_SCENARIOS")]


def _pending_scenarios() -> dict[str, str]:
    """Scenarios declared as not passing yet, with the reason written beside each."""
    pending = {}
    for line in _scenario_block("PENDING_SCENARIOS"):
        name, _, reason = line.partition("#")
        pending[name.strip()] = reason.strip()
    return pending


def test_the_bed_scenario_exists() -> None:
    assert MOLECULE / "bed" in SCENARIOS


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda p: p.name)
def test_no_platform_is_privileged_or_on_the_host_network(scenario: Path) -> None:
    for platform in _platforms(scenario):
        assert platform_problems(platform) == [], platform["name"]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda p: p.name)
def test_scenario_uses_the_shared_create_destroy_and_safety_check(scenario: Path) -> None:
    data = _load(scenario)
    assert data["driver"]["name"] == "docker"
    playbooks = _section(data, "playbooks")
    assert playbooks.get("create") == "../shared/create.yml"
    assert playbooks.get("destroy") == "../shared/destroy.yml"
    assert data["verifier"]["name"] == "testinfra"
    assert SAFETY_CHECK in data["verifier"].get("additional_files_or_dirs", [])


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda p: p.name)
def test_scenario_keeps_converge_idempotence_verify(scenario: Path) -> None:
    sequence = _load(scenario).get("scenario", {}).get("test_sequence")
    if sequence is not None:  # molecule's default test sequence has all three
        wanted = ["converge", "idempotence", "verify"]
        assert [s for s in sequence if s in wanted] == wanted


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda p: p.name)
def test_scenario_is_listed_in_run_scenarios(scenario: Path) -> None:
    listed, pending = _listed_scenarios(), _pending_scenarios()
    assert (scenario.name in listed) != (scenario.name in pending), (
        f"scenario {scenario.name!r} must be in exactly one of ALL_SCENARIOS (runs in CI) and"
        f" PENDING_SCENARIOS (declared as not passing yet) in {RUN_SCENARIOS}"
    )


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda p: p.name)
def test_verify_finds_every_test_file_it_lists(scenario: Path) -> None:
    # molecule resolves additional_files_or_dirs from the scenario's tests/ directory; when that
    # directory is missing, verify reports "no tests found" and passes without running anything.
    verifier = _load(scenario)["verifier"]
    extra = verifier.get("additional_files_or_dirs", [])
    tests_dir = scenario / "tests"
    assert tests_dir.is_dir(), f"{scenario.name}: verify needs {tests_dir.relative_to(ROOT)}/"
    for entry in extra:
        assert (tests_dir / entry).resolve().exists(), f"{scenario.name}: {entry} does not exist"
    assert scenario_test_files(tests_dir, extra), (
        f"{scenario.name}: verify has no test file of its own to run (the shared safety check"
        " alone proves nothing about the scenario)"
    )


def scenario_test_files(tests_dir: Path, extra: list[str]) -> list[Path]:
    """The test files verify runs for the scenario itself: its own test_*.py and those it lists,
    without the shared safety check that every scenario lists."""
    own = sorted(tests_dir.glob("test_*.py"))
    listed = [
        tests_dir / e for e in extra if Path(e).name.startswith("test_") and e != SAFETY_CHECK
    ]
    return [p for p in [*own, *listed] if p.resolve().is_file()]


def test_a_scenario_with_only_the_safety_check_has_no_test_of_its_own(tmp_path: Path) -> None:
    # As the site scenarios would look if test_site.py were dropped from their verifier.
    tests_dir = tmp_path / "tests"
    tests_dir.mkdir()
    assert scenario_test_files(tests_dir, [SAFETY_CHECK]) == []
    site = MOLECULE / "site-debian12"
    extra = _load(site)["verifier"]["additional_files_or_dirs"]
    assert scenario_test_files(site / "tests", extra), "site-debian12 lost its own tests"
    assert scenario_test_files(site / "tests", [SAFETY_CHECK]) == []


# The shared site tests each scenario that deploys site.yml must run: dropping one from a
# scenario's verifier would silently drop its checks there (site-debian13 deploys the role
# options and runs test_site.py's checks that hold under them through its test_options.py).
SITE_TEST = "../../site-common/tests/test_site.py"
HARDENING_TEST = "../../site-common/tests/test_hardening.py"
MASTODON_STATE_TEST = "../../site-common/tests/test_mastodon_state.py"
STANDIN_APP_TEST = "../../site-common/tests/test_standin_app.py"
HOST_HARDENING_TEST = "../../site-common/tests/test_host_hardening.py"  # the common role's checks
SITE_TESTS = {
    "site-debian12": (
        SITE_TEST,
        HARDENING_TEST,
        HOST_HARDENING_TEST,
        MASTODON_STATE_TEST,
        STANDIN_APP_TEST,
    ),
    "site-debian13": (HARDENING_TEST, HOST_HARDENING_TEST, STANDIN_APP_TEST, "test_options.py"),
}


def missing_site_tests(scenario: str, extra: list[str]) -> list[str]:
    tests_dir = MOLECULE / scenario / "tests"
    runs = {*extra, *(p.name for p in tests_dir.glob("test_*.py"))}
    return [t for t in SITE_TESTS[scenario] if t not in runs]


def test_every_site_scenario_is_in_the_table() -> None:
    assert sorted(SITE_TESTS) == sorted(s.name for s in SCENARIOS if s.name.startswith("site-"))


@pytest.mark.parametrize("scenario", sorted(SITE_TESTS))
def test_every_site_scenario_runs_the_shared_site_tests(scenario: str) -> None:
    extra = _load(MOLECULE / scenario)["verifier"].get("additional_files_or_dirs", [])
    assert missing_site_tests(scenario, extra) == [], f"{scenario} does not run them"


def test_removing_test_site_from_a_site_scenario_is_caught() -> None:
    extra = _load(MOLECULE / "site-debian12")["verifier"]["additional_files_or_dirs"]
    without = [e for e in extra if e != SITE_TEST]
    assert missing_site_tests("site-debian12", without) == [SITE_TEST]


# test_site.py's checks that do not hold under site-debian13's options, each with the check that
# proves the option there instead. Every other check of test_site.py must be imported by
# site-debian13's test_options.py, so the merge of the options into Debian 13 drops none.
NOT_UNDER_OPTIONS = {
    "test_only_ssh_and_web_answer_from_another_container": (
        "test_options.py::test_only_the_new_ssh_port_and_web_answer_from_another_container"
    ),
    "test_https_certificate_chains_to_the_pebble_acme_server": (
        "test_options.py::test_nginx_serves_exactly_the_provided_certificate"
    ),
    "test_ssh_key_login_works": (
        "test_host_hardening.py::test_key_login_and_sudo_work_from_another_container"
    ),
    "test_ssh_password_login_is_refused": (
        "test_host_hardening.py::test_a_password_is_refused_even_for_an_account_that_has_one"
    ),
    "test_verbose_ansible_output_contains_no_secret": (
        "test_options.py::test_verbose_ansible_output_contains_no_secret"
    ),
}


def _test_functions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")
    }


def _imported_from(path: Path, module: str) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        alias.name
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and node.module == module
        for alias in node.names
    }


def site_checks_missing_under_options(imported: set[str]) -> set[str]:
    site = _test_functions(MOLECULE / "site-common" / "tests" / "test_site.py")
    return site - imported - set(NOT_UNDER_OPTIONS)


def test_site_debian13_runs_every_site_check_that_holds_under_its_options() -> None:
    options = MOLECULE / "site-debian13" / "tests" / "test_options.py"
    imported = _imported_from(options, "test_site")
    assert site_checks_missing_under_options(imported) == set()
    site = _test_functions(MOLECULE / "site-common" / "tests" / "test_site.py")
    assert set(NOT_UNDER_OPTIONS) <= site - imported, "an exception names a check that is imported"
    for replacement in NOT_UNDER_OPTIONS.values():
        file, name = replacement.split("::")
        holder = options if file == "test_options.py" else MOLECULE / "site-common" / "tests" / file
        assert name in _test_functions(holder), replacement


def test_dropping_an_imported_site_check_is_caught() -> None:
    options = MOLECULE / "site-debian13" / "tests" / "test_options.py"
    imported = _imported_from(options, "test_site")
    assert site_checks_missing_under_options(
        imported - {"test_tls_scan_shows_mozilla_intermediate_and_hsts"}
    ) == {"test_tls_scan_shows_mozilla_intermediate_and_hsts"}


def test_every_pending_scenario_says_why() -> None:
    for name, reason in _pending_scenarios().items():
        assert len(reason) >= 20, f"pending scenario {name!r} needs a reason comment"


def test_every_listed_scenario_exists() -> None:
    for name in [*_listed_scenarios(), *_pending_scenarios()]:
        assert (MOLECULE / name / "molecule.yml").is_file(), name


def test_container_names_are_unique_across_scenarios() -> None:
    names = [p["name"] for s in SCENARIOS for p in _platforms(s)]
    assert len(names) == len(set(names))
    for name in names:
        assert re.fullmatch(r"[a-z]{2,3}-[a-z0-9-]+", name), name


GOOD = {
    "name": "tb-good",
    "image": "instance-testbed:debian12",
    "pre_build_image": True,
    "pull": False,
    "privileged": False,
    "command": "/sbin/init",
    "capabilities": ["SYS_ADMIN", "NET_ADMIN"],
    "security_opts": ["seccomp=unconfined"],
    "cgroupns_mode": "host",
    "volumes": ["/sys/fs/cgroup:/sys/fs/cgroup:rw"],
    "tmpfs": ["/run", "/run/lock"],
}


def test_the_reference_platform_passes() -> None:
    assert platform_problems(GOOD) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"privileged": True}, "privileged"),
        ({"privileged": None}, "privileged"),
        ({"network_mode": "host"}, "network_mode"),
        ({"networks": [{"name": "host"}]}, "networks"),
        ({"pid_mode": "host"}, "pid_mode"),
        ({"capabilities": ["SYS_ADMIN", "NET_ADMIN", "SYS_PTRACE"]}, "capabilities"),
        ({"capabilities": ["ALL"]}, "capabilities"),
        ({"security_opts": ["seccomp=unconfined", "apparmor=unconfined"]}, "security_opts"),
        ({"volumes": ["/:/host"]}, "volumes"),
        ({"image": "debian:12"}, "image"),
        ({"pull": True}, "pull"),
    ],
)
def test_a_platform_leaving_the_shape_is_reported(change: dict[str, Any], expected: str) -> None:
    bad = {**GOOD, **change}
    if change.get("privileged", "") is None:
        del bad["privileged"]
    problems = platform_problems(bad)
    assert any(expected in p for p in problems), problems


def _host_sources(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            str(ROOT / "tests" / "testbed" / "host_sources.py"),
            *args,
            "--apt-dir",
            str(tmp_path / "apt"),
            "--os-release",
            str(tmp_path / "os-release"),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )


@pytest.fixture
def fake_host(tmp_path: Path) -> Path:
    """A host with a deb822 Debian source, a one-line security source and a
    third-party repository that must not reach the images."""
    (tmp_path / "os-release").write_text('VERSION_CODENAME="bookworm"\n', encoding="utf-8")
    parts = tmp_path / "apt" / "sources.list.d"
    parts.mkdir(parents=True)
    (parts / "debian.sources").write_text(
        "Types: deb deb-src\n# a comment\nURIs: http://mirror.invalid/debian\n"
        "Suites: bookworm bookworm-updates\nComponents: main contrib\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
        "Types: deb\nURIs: https://vendor.invalid/apt\nSuites: nodistro\nComponents: main\n",
        encoding="utf-8",
    )
    (tmp_path / "apt" / "sources.list").write_text(
        "deb [signed-by=/k.gpg] http://security.invalid/debian-security bookworm-security main\n"
        "deb http://other.invalid/x cloud-sdk-bookworm main\n",
        encoding="utf-8",
    )
    (parts / "disabled.list.disabled").write_text(
        "deb http://off.invalid/ bookworm main\n", encoding="utf-8"
    )
    return tmp_path


def test_host_sources_mirror_is_the_hosts_main_archive(fake_host: Path) -> None:
    result = _host_sources(fake_host, "mirror", "trixie")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "http://mirror.invalid/debian"


def test_host_sources_retarget_keeps_only_the_debian_release(fake_host: Path) -> None:
    result = _host_sources(fake_host, "sources", "trixie")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Suites: trixie trixie-updates" in out
    assert "Suites: trixie-security" in out
    assert "bookworm" not in out
    assert "vendor.invalid" not in out and "other.invalid" not in out
    assert "off.invalid" not in out
    assert "Signed-By: /k.gpg" in out
    assert "Types: deb\n" in out and "deb-src" not in out


def test_host_sources_fails_without_a_debian_entry(tmp_path: Path) -> None:
    (tmp_path / "os-release").write_text("VERSION_CODENAME=bookworm\n", encoding="utf-8")
    (tmp_path / "apt" / "sources.list.d").mkdir(parents=True)
    result = _host_sources(tmp_path, "mirror", "bookworm")
    assert result.returncode != 0
    assert "no apt source" in result.stderr
