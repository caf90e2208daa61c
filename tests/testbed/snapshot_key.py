"""The key of a converged-instance snapshot: a hash of everything that shaped the container.

A scenario that has proven first converge and idempotence on a bare container (the producer)
commits that container as an image; later scenarios (the consumers) start from it instead of
converging again. The image carries this key as a label, and a consumer starts from it only
while the key still matches: any change to the roles, the playbooks, the stand-in, the example
inventory, the producer's scenario files, the shared test-bed steps, the Ansible pins or the base
image makes the snapshot stale, and tests/testbed/snapshot.sh builds it again.

    python3 snapshot_key.py PRODUCER [--root DIR] [--base-image-id ID]   # prints the key
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]

# The roles that playbooks/site.yml applies (and their meta dependencies), not every role in
# roles/: a role that site.yml does not apply (backup) cannot shape the converged container.
ROLES_OF_SITE = "roles applied by playbooks/site.yml"

# Repository paths (directories or files) whose contents shape a producer's container. The
# producer's own tests/ directory and the shared tests are left out: they check the container,
# they do not change what the snapshot holds.
SHAPED_BY: dict[str, tuple[str, ...]] = {
    "site-debian12": (
        "ansible.cfg",
        "requirements/dev.lock",
        ROLES_OF_SITE,
        "playbooks/site.yml",
        "inventories/example",
        "examples",
        "tests/standin",
        "tests/molecule/shared/create.yml",
        "tests/molecule/shared/prepare.yml",
        "tests/molecule/shared/pebble.yml",
        "tests/molecule/shared/peers.yml",
        "tests/molecule/shared/tasks",
        "tests/molecule/shared/vars",
        "tests/molecule/site-common/prepare.yml",
        "tests/molecule/site-common/host_vars",
        "tests/molecule/site-common/test-overrides.yml",
        "tests/molecule/site-debian12/molecule.yml",
        "tests/molecule/site-debian12/hosts.yml",
    ),
}

# The base image each producer starts from (tests/testbed/build-image.sh).
BASE_IMAGE = {"site-debian12": "instance-testbed:debian12"}

# Files that never shape a container: caches and editor/runtime debris.
_IGNORED_PARTS = {"__pycache__", ".pytest_cache", ".mypy_cache", "node_modules", ".work"}


def _role_names(entries: list[object]) -> list[str]:
    names = []
    for entry in entries or []:
        name = entry.get("role") if isinstance(entry, dict) else entry
        if isinstance(name, str):
            names.append(name)
    return names


def roles_of(root: Path, playbook: str) -> list[str]:
    """`roles/<name>` for every role the playbook applies, with their meta dependencies."""
    if not (root / playbook).is_file():
        raise FileNotFoundError(f"{playbook}: listed in SHAPED_BY but missing under {root}")
    plays = yaml.safe_load((root / playbook).read_text(encoding="utf-8")) or []
    pending = [name for play in plays for name in _role_names(play.get("roles", []))]
    for play in plays:
        for task in play.get("tasks", []) or []:
            for key in ("ansible.builtin.include_role", "ansible.builtin.import_role"):
                if isinstance(task.get(key), dict):
                    pending.append(task[key]["name"])
    seen: set[str] = set()
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        if not (root / "roles" / name).is_dir():
            raise FileNotFoundError(f"roles/{name}: applied by {playbook} but missing under {root}")
        seen.add(name)
        meta = root / "roles" / name / "meta" / "main.yml"
        if meta.exists():
            deps = (yaml.safe_load(meta.read_text(encoding="utf-8")) or {}).get("dependencies", [])
            pending.extend(_role_names(deps))
    return [f"roles/{name}" for name in sorted(seen)]


def shaping_paths(producer: str, root: Path) -> list[str]:
    """The producer's SHAPED_BY entries with ROLES_OF_SITE expanded, in hashing order."""
    if producer not in SHAPED_BY:
        raise KeyError(f"unknown snapshot producer {producer!r} (known: {', '.join(SHAPED_BY)})")
    paths: list[str] = []
    for rel in SHAPED_BY[producer]:
        paths.extend(roles_of(root, "playbooks/site.yml") if rel == ROLES_OF_SITE else [rel])
    return paths


def _files(root: Path, rel: str) -> list[Path]:
    path = root / rel
    if not path.exists():
        raise FileNotFoundError(f"{rel}: listed in SHAPED_BY but missing under {root}")
    if path.is_file():
        return [path]
    return sorted(
        p
        for p in path.rglob("*")
        if p.is_file() and not _IGNORED_PARTS.intersection(p.relative_to(root).parts)
    )


def snapshot_key(producer: str, root: Path, base_image_id: str) -> str:
    """The hex SHA-256 over the producer's name, its base image id and every shaping file
    (relative path, file mode's executable bit and contents)."""
    paths = shaping_paths(producer, root)
    digest = hashlib.sha256()
    digest.update(f"producer={producer}\nbase={base_image_id}\n".encode())
    for rel in paths:
        for path in _files(root, rel):
            name = path.relative_to(root).as_posix()
            executable = "x" if path.stat().st_mode & 0o111 else "-"
            digest.update(f"{name}\0{executable}\0".encode())
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def base_image_id(producer: str) -> str:
    """The id of the producer's base image on the local daemon."""
    image = BASE_IMAGE[producer]
    proc = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Id}}", image],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"base image {image} not found: run tests/testbed/build-image.sh")
    return proc.stdout.strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("producer")
    parser.add_argument("--root", type=Path, default=ROOT)
    parser.add_argument("--base-image-id", default=None)
    args = parser.parse_args(argv)
    try:
        base = args.base_image_id or base_image_id(args.producer)
        print(snapshot_key(args.producer, args.root, base))
    except (KeyError, FileNotFoundError, RuntimeError) as err:
        print(f"snapshot_key: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
