"""Fleet runs: one of the repository's playbooks for every member of the cooperative, or a chosen
set, from one controller (docs/community/cooperative.md).

Each institution runs with its own inventory and its own vault password
(`<password dir>/<slug>.txt`, by default instance-cli's), never another's; each writes its own
log. Jobs run side by side, except `upgrade`, which rolls out canary-first: the first
institution alone (its playbook ends with the health gate and rolls back by itself when the gate
fails), then the others one at a time; the first failure stops the roll-out and the remaining
institutions are left untouched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from instance_cli import vaultpass
from instance_cli.cooperative import Cooperative
from instance_cli.errors import InstanceCliError
from instance_cli.secrets import config_dir

JOBS = {
    "site": "site.yml",
    "settings": "settings.yml",
    "backup": "backup.yml",
    "restore-drill": "restore-drill.yml",
    "upgrade": "upgrade.yml",
}
CANARY_FIRST = {"upgrade"}


@dataclass(frozen=True)
class Outcome:
    slug: str
    status: str  # ok | failed | not run
    returncode: int | None
    seconds: float
    log: Path | None


def choose(coop: Cooperative, only: Sequence[str], inventories: Path) -> list[str]:
    """The institutions to run, in the cooperative's order: all members, or those named; an
    unknown name, or a member without an inventory, is an error before anything runs."""
    unknown = [s for s in only if s not in coop.members]
    if unknown:
        raise InstanceCliError(
            f"--only: {', '.join(unknown)}: not a member of {coop.path}; expected one of "
            f"{', '.join(coop.members)}"
        )
    chosen = [s for s in coop.members if not only or s in only]
    missing = [s for s in chosen if not (inventories / s / "hosts.yml").is_file()]
    if missing:
        raise InstanceCliError(
            f"{', '.join(missing)}: no inventory in {inventories}/ (run instance-cli new first)"
        )
    return chosen


def password_files(
    slugs: Sequence[str], directory: Path | None, inventories: Path
) -> dict[str, Path]:
    """Each institution's own vault password file: <directory>/<slug>.txt. One that does not
    exist, or the example's public password for another institution, is an error before
    anything runs."""
    base = directory or config_dir() / "vault-passwords"
    files = {slug: base / f"{slug}.txt" for slug in slugs}
    for slug, path in files.items():
        public = vaultpass.public_for(slug)  # the example's public, test-only password
        if not path.is_file() and public is not None:
            files[slug] = inventories.resolve().parent / public.path
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise InstanceCliError(
            f"--vault-password-dir: expected each institution's own password file, "
            f"missing: {', '.join(missing)}"
        )
    for slug, path in files.items():
        vaultpass.refuse_foreign(
            path, "--vault-password-dir", slug, inventories, inventories / slug
        )
    return files


def ansible_playbook() -> str:
    found = shutil.which("ansible-playbook")
    if found:
        return found
    beside = Path(sys.executable).parent / "ansible-playbook"
    if beside.exists():
        return str(beside)
    raise InstanceCliError("ansible-playbook not found: run scripts/bootstrap.sh first")


Runner = Callable[[str, list[str], Path], int]


def _subprocess_runner(slug: str, argv: list[str], log: Path) -> int:
    with log.open("w", encoding="utf-8") as out:
        env = {**os.environ, "ANSIBLE_NOCOLOR": "1"}
        env.pop("ANSIBLE_VAULT_PASSWORD_FILE", None)  # never one institution's for another
        # argv: ansible-playbook, a member's inventory and password file, a known playbook.
        return subprocess.run(  # noqa: S603
            argv, stdout=out, stderr=subprocess.STDOUT, env=env, check=False
        ).returncode


def run(
    job: str,
    slugs: Sequence[str],
    *,
    inventories: Path,
    playbooks: Path,
    passwords: dict[str, Path],
    log_dir: Path,
    parallel: int = 2,
    extra: Sequence[str] = (),
    runner: Runner = _subprocess_runner,
    on_done: Callable[[Outcome], None] | None = None,
) -> list[Outcome]:
    """Run `job` for `slugs`; the outcomes in the order given."""
    if job not in JOBS:
        raise InstanceCliError(f"job: expected one of {', '.join(JOBS)}, got {job!r}")
    log_dir.mkdir(parents=True, exist_ok=True)
    program = ansible_playbook()

    def one(slug: str) -> Outcome:
        argv = [program, "-i", str(inventories / slug), "--vault-password-file",
                str(passwords[slug]), str(playbooks / JOBS[job]), *extra]  # fmt: skip
        log = log_dir / f"{slug}-{job}.log"
        started = time.monotonic()
        code = runner(slug, argv, log)
        outcome = Outcome(slug, "ok" if code == 0 else "failed", code,
                          round(time.monotonic() - started, 1), log)  # fmt: skip
        if on_done:
            on_done(outcome)
        return outcome

    outcomes: dict[str, Outcome] = {}
    if job in CANARY_FIRST:
        for slug in slugs:
            outcomes[slug] = one(slug)
            if outcomes[slug].status != "ok":
                break
    else:
        with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
            for outcome in pool.map(one, slugs):
                outcomes[outcome.slug] = outcome
    return [outcomes.get(s, Outcome(s, "not run", None, 0.0, None)) for s in slugs]
