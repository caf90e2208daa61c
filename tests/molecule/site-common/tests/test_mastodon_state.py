"""A re-run of the mastodon role decides from the artefacts, not from a record alone.

The role remembers what it did as a local fact (/etc/ansible/facts.d/mastodon.fact, read back as
`ansible_local.mastodon`), but each step also looks at what the step produces: yarn's marker in
node_modules/, the compiled assets' manifest (and its checksum, recorded after the build) and
the migrations the database has applied. These tests break an artefact while the fact still
says the step is done, re-run the role from the test (`site.yml --tags mastodon`, the json
callback), and check that the run repairs exactly that and the run after reports 0 changed.
They leave the host converged, so the other site tests can run after them in any order.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(os.environ.get("SITE_REPO_ROOT", Path(__file__).resolve().parents[4]))
LIVE = "/home/mastodon/live"
FACT = "/etc/ansible/facts.d/mastodon.fact"
# Where Mastodon 4.4+'s Vite build (and the stand-in's assets:precompile) writes its manifest.
MANIFEST = f"{LIVE}/public/packs/.vite/manifest.json"
# Yarn 2+ (node-modules linker) writes its install state, Yarn 1 its integrity file.
YARN_MARKERS = (f"{LIVE}/node_modules/.yarn-state.yml", f"{LIVE}/node_modules/.yarn-integrity")
DATABASE = "mastodon_production"
# The stand-in's newest pre- and post-deployment migrations (tests/standin/app/db/) and the SQL
# that undoes each, the way `db:rollback` would: the column comes back or goes again and the
# version leaves schema_migrations.
PRE_MIGRATION = "20251001000000"
PRE_ROLLBACK = (
    "ALTER TABLE statuses DROP COLUMN quote_approval_policy;"
    " DELETE FROM schema_migrations WHERE version = '20251001000000'"
)
POST_MIGRATION = "20251001000100"
POST_ROLLBACK = (
    "ALTER TABLE statuses ADD COLUMN legacy_local_only boolean;"
    " DELETE FROM schema_migrations WHERE version = '20251001000100'"
)

YARN_TASK = "Install the JavaScript dependencies (lockfile must not change)"
ASSETS_TASK = "Precompile assets for a new release (needs ~2 GiB of memory)"
PRE_MIGRATE_TASK = "Run the pre-deployment migrations the database has not applied"
POST_MIGRATE_TASK = "Run the post-deployment migrations the database has not applied"


def run_mastodon_role() -> dict[str, Any]:
    """Run site.yml's mastodon plays on the scenario's inventory; the json callback's document."""
    env = dict(os.environ)
    env.update(
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        ANSIBLE_ROLES_PATH=str(REPO / "roles"),
        ANSIBLE_VAULT_PASSWORD_FILE=str(REPO / "examples" / "example-university.vault-pass"),
        # Only the json callback on stdout: ansible.cfg's profile_tasks would print between it.
        ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
        ANSIBLE_CALLBACKS_ENABLED="ansible.posix.json",
        ANSIBLE_NOCOLOR="1",
    )
    # The inventory directory, with the group_vars and host_vars molecule links beside it.
    inventory = str(Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent)
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-playbook"),
            "-i",
            inventory,
            "--tags",
            "mastodon",
            str(REPO / "playbooks" / "site.yml"),
        ],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1500,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    document: dict[str, Any] = json.loads(result.stdout[result.stdout.index("{") :])
    return document


def changed_tasks(document: dict[str, Any]) -> set[str]:
    """Names (without the role prefix) of the tasks that reported changed on any host."""
    names = set()
    for play in document["plays"]:
        for task in play["tasks"]:
            for result in task["hosts"].values():
                if result.get("changed") or any(
                    item.get("changed") for item in result.get("results", [])
                ):
                    names.add(task["task"]["name"].split(" : ", 1)[-1])
    return names


def total_changed(document: dict[str, Any]) -> int:
    return sum(int(stats["changed"]) for stats in document["stats"].values())


def psql(host: Any, sql: str) -> str:
    psql_argv = "psql -XAtq -v ON_ERROR_STOP=1"
    return str(
        host.check_output(f"runuser -u postgres -- {psql_argv} -d {DATABASE} -c {shlex.quote(sql)}")
    )


def applied(host: Any) -> set[str]:
    return set(psql(host, "SELECT version FROM schema_migrations").split())


def columns(host: Any) -> set[str]:
    sql = "SELECT column_name FROM information_schema.columns WHERE table_name = 'statuses'"
    return set(psql(host, sql).split())


def fact(host: Any) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(host.file(FACT).content_string)
    return value


def sha1(host: Any, path: str) -> str:
    return str(host.check_output(f"sha1sum {path}").split()[0])


def yarn_marker(host: Any) -> str | None:
    return next((m for m in YARN_MARKERS if host.file(m).is_file), None)


def newest_migration(host: Any) -> str:
    names = host.check_output(f"ls {LIVE}/db/migrate {LIVE}/db/post_migrate").split()
    return max(n.split("_", 1)[0] for n in names if n.endswith(".rb"))


@pytest.fixture(scope="module")
def converged(host: Any) -> dict[str, Any]:
    """The state a converged host is in, checked first: fact, artefacts and schema agree."""
    commit = host.check_output(f"runuser -u mastodon -- git -C {LIVE} rev-parse HEAD").strip()
    recorded = fact(host)
    assert recorded["commit"] == commit
    assert recorded["javascript_dependencies_commit"] == commit
    assert recorded["assets_commit"] == commit
    assert recorded["assets_manifest_sha1"] == sha1(host, MANIFEST)
    assert yarn_marker(host), f"yarn install left none of {YARN_MARKERS}"
    assert recorded["schema_version"] == newest_migration(host)
    assert {PRE_MIGRATION, POST_MIGRATION} <= applied(host)
    assert host.file(f"{LIVE}/db/migrate/{PRE_MIGRATION}_add_quote_policy_to_statuses.rb").exists
    return recorded


def test_a_rerun_repairs_deleted_artefacts_that_the_fact_still_records(
    host: Any, converged: dict[str, Any]
) -> None:
    # Break three artefacts; the fact still names this commit for every step.
    host.check_output(f"rm -f {MANIFEST} {' '.join(YARN_MARKERS)}")
    psql(host, PRE_ROLLBACK)
    psql(host, POST_ROLLBACK)
    assert fact(host) == converged

    repair = run_mastodon_role()
    changed = changed_tasks(repair)
    assert {YARN_TASK, ASSETS_TASK, PRE_MIGRATE_TASK, POST_MIGRATE_TASK} <= changed, changed
    # The artefacts are back: yarn's marker, the manifest the fact's checksum names, the schema.
    assert yarn_marker(host)
    assert sha1(host, MANIFEST) == converged["assets_manifest_sha1"]
    assert {PRE_MIGRATION, POST_MIGRATION} <= applied(host)
    assert "quote_approval_policy" in columns(host)
    assert "legacy_local_only" not in columns(host)
    assert fact(host) == converged


def test_a_deleted_fact_is_rebuilt_from_the_artefacts_and_the_run_after_changes_nothing(
    host: Any, converged: dict[str, Any]
) -> None:
    # Runs after the repair above (file order): this run also shows that the repair left
    # nothing behind for the database steps, which decide from schema_migrations alone.
    host.check_output(f"rm -f {FACT}")

    rebuild = run_mastodon_role()
    changed = changed_tasks(rebuild)
    # Without a record, nothing says the dependencies and assets are this commit's: both are
    # done again. The migrations are read from the database itself, so none runs.
    assert {YARN_TASK, ASSETS_TASK} <= changed, changed
    assert not {PRE_MIGRATE_TASK, POST_MIGRATE_TASK} & changed, changed
    assert fact(host) == converged
    assert host.file(FACT).mode == 0o644

    again = run_mastodon_role()
    assert total_changed(again) == 0, changed_tasks(again)
