#!/usr/bin/env python3
"""TEST-ONLY: the site-debian13 scenario's first converge, killed three times like a crash.

Runs `playbooks/site.yml` against the scenario's container and, for each point in order,
watches the container until the point is reached, then SIGKILLs the controller's whole process
group and, inside the container, every process tree Ansible started there (what a power loss
does to both), and goes on with the next point on the same container:

  apt          a dpkg of an apt transaction is unpacking or configuring packages
  migrations   `bin/rails db:setup|db:migrate` is inside its second migration (the stand-in
               waits in each migration only while /run/testbed-standin/pause-migrations-seconds
               exists, a file this script alone writes and removes)
  certificate  the nginx role's certificate step has written the provided certificate and the
               site configuration is not written yet

After each kill it records what the container holds (dpkg's audit, the lock holders, the schema
versions, a SHA-256 of .env.production, the nginx files, Ansible's temporary files) in
tests/.artifacts/interrupted-converge-site-debian13.json. The scenario's converge then runs
site.yml to the end, idempotence wants 0 changed, and tests/test_interrupted_converge.py reads
the record and the container. A run that ends before its point is reached is recorded as
missed and fails this script (and the test).

Usage (from prepare.yml): interrupted_converge.py CONTAINER INVENTORY... ; the environment is
molecule's (ANSIBLE_CONFIG, the vault password file, SITE_REPO_ROOT, SITE_TEST_DIR).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(os.environ.get("SITE_REPO_ROOT", Path(__file__).resolve().parents[3])).resolve()
SCRATCH = Path(os.environ["SITE_TEST_DIR"])
ARTIFACT = Path(
    os.environ.get(
        "INTERRUPT_ARTIFACT", REPO / "tests/.artifacts/interrupted-converge-site-debian13.json"
    )
)
MAIN_VARS = yaml.safe_load((REPO / "inventories/example/group_vars/all/main.yml").read_text())
SERVER_NAME = MAIN_VARS["nginx_server_name"]
DATABASE = MAIN_VARS["postgresql_mastodon_database"]
# The release the site scenarios deploy; roles/mastodon checks each release out into
# releases/<tag> (`live` links there only once the services start, after the migrations).
DEPLOYED = yaml.safe_load((REPO / "tests/molecule/site-common/test-overrides.yml").read_text())[
    "mastodon_version"
]
ENV_FILE = f"/home/mastodon/releases/{DEPLOYED}/.env.production"
TLS_DIR = f"/etc/nginx/tls/{SERVER_NAME}"
SITE_FILE = "/etc/nginx/sites-available/mastodon.conf"
KNOB_DIR = "/run/testbed-standin"
POINTS = ("apt", "migrations", "certificate")
# For working on one point by hand (INTERRUPT_POINTS=certificate); the scenario runs all three.
SELECTED = os.environ.get("INTERRUPT_POINTS", ",".join(POINTS)).split(",")
# Generous: the machine is shared; a run that needs longer is a failure, not a hang.
RUN_DEADLINE = float(os.environ.get("INTERRUPT_RUN_DEADLINE", "1800"))
MIGRATION_PAUSE_SECONDS = 300

# Runs inside the container (python3 of the test-bed image). Polls every 20 ms; on a hit it
# prints one JSON line, SIGKILLs every process tree started by `docker exec` except its own
# (Ansible's modules, become shells, apt, dpkg, rails, ...) and prints what it killed.
# It exits when its stdin closes (the controller ended before the point) or at its deadline.
WATCHER = r"""
import json, os, select, signal, sys, time
point, deadline = sys.argv[1], time.monotonic() + float(sys.argv[2])
tls_dir, site_file, knob_dir = sys.argv[3], sys.argv[4], sys.argv[5]
me = os.getpid()

def table():
    procs = {}
    for name in os.listdir('/proc'):
        if not name.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % name) as f:
                stat = f.read()
            with open('/proc/%s/cmdline' % name, 'rb') as f:
                cmd = f.read().replace(b'\0', b' ').decode(errors='replace').strip()
        except OSError:
            continue
        ppid = int(stat.rsplit(')', 1)[1].split()[1])
        procs[int(name)] = (ppid, stat[stat.index('(') + 1:stat.rindex(')')], cmd)
    return procs

def exec_trees(procs):
    # Roots: processes docker exec started (parent outside the container), not this watcher.
    tree = {p for p, (pp, _, _) in procs.items() if pp == 0 and p not in (1, me)}
    grew = True
    while grew:
        grew = False
        for p, (pp, _, _) in procs.items():
            if pp in tree and p not in tree:
                tree.add(p)
                grew = True
    return tree

def hit(procs, tree):
    if point == 'apt':
        for p in tree:
            _, comm, cmd = procs[p]
            # dpkg is past its first status change: a package is half done (an entry of its
            # journal, updates/NNNN, names it), so the kill leaves dpkg really interrupted.
            acting = {'--unpack', '--configure', '--install'} & set(cmd.split())
            journal = sorted(n for n in os.listdir('/var/lib/dpkg/updates') if n.isdigit())
            if comm == 'dpkg' and acting and journal:
                return {'process': cmd[:300], 'journal': journal}
    elif point == 'migrations':
        try:
            with open(knob_dir + '/paused-migrations') as f:
                paused = f.read().split()
        except OSError:
            paused = []
        for p in tree:
            cmd = procs[p][2]
            migrating = 'db:setup' in cmd or 'db:migrate' in cmd
            if 'bin/rails' in cmd and migrating and len(paused) >= 2:
                return {'process': cmd[:300], 'paused_in': paused}
    elif point == 'certificate':
        if os.path.exists(tls_dir + '/provided-fullchain.pem'):
            return {'process': None,
                    'key_written': os.path.exists(tls_dir + '/provided-privkey.pem'),
                    'site_written': os.path.exists(site_file)}
    return None

while time.monotonic() < deadline:
    if select.select([sys.stdin], [], [], 0)[0] and not sys.stdin.buffer.read1(64):
        sys.exit(3)
    procs = table()
    tree = exec_trees(procs)
    found = hit(procs, tree)
    if found is not None:
        found['tree'] = sorted('%d %s' % (p, procs[p][2][:160]) for p in tree)
        print(json.dumps({'hit': found}), flush=True)
        killed = []
        for _ in range(50):
            tree = exec_trees(table())
            if not tree:
                break
            for p in tree:
                try:
                    os.kill(p, signal.SIGKILL)
                    killed.append(p)
                except ProcessLookupError:
                    pass
            time.sleep(0.02)
        left = sorted(exec_trees(table()))
        print(json.dumps({'killed': sorted(set(killed)), 'left': left}), flush=True)
        sys.exit(0)
    time.sleep(0.02)
sys.exit(2)
"""

# Runs inside the container (a piece of the two scripts below and of
# tests/test_interrupted_converge.py): whether another process holds a lock file dpkg or apt
# take with fcntl (None when the file does not exist).
HELD = r"""
def held(path):
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return None
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.lockf(fd, fcntl.LOCK_UN)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)
"""

# Runs inside the container after a kill: what the kill left behind.
_SNAPSHOT_BODY = r"""
import fcntl, glob, hashlib, json, os, subprocess, sys
env_file, tls_dir, site_file, database = sys.argv[1:5]

def run(argv):
    try:
        p = subprocess.run(argv, capture_output=True, text=True)
    except FileNotFoundError:
        return 127, ''
    return p.returncode, p.stdout


locks = ['/var/lib/dpkg/lock', '/var/lib/dpkg/lock-frontend', '/var/cache/apt/archives/lock',
         '/var/lib/apt/lists/lock']
rc, audit = run(['dpkg', '--audit'])
snap = {
    'dpkg_audit': audit.strip().splitlines(),
    'dpkg_journal': sorted(n for n in os.listdir('/var/lib/dpkg/updates') if n.isdigit()),
    'locks_held': [l for l in locks if held(l)],
    'env_sha256': None,
    'schema_versions': None,
    'advisory_locks': None,
    'files': {p: os.path.exists(p) for p in (tls_dir + '/provided-fullchain.pem',
                                               tls_dir + '/provided-privkey.pem', site_file)},
    'ansible_temp': sorted(os.path.join(r, f) for d in glob.glob('/root/.ansible/tmp/ansible-tmp-*')
                           + glob.glob('/home/*/.ansible/tmp/ansible-tmp-*')
                           for r, _, fs in os.walk(d) for f in [''] + fs),
}
if os.path.exists(env_file):
    with open(env_file, 'rb') as f:
        snap['env_sha256'] = hashlib.sha256(f.read()).hexdigest()
rc, out = run(['runuser', '-u', 'postgres', '--', 'psql', '-X', '-At', '-d', database, '-c',
               'SELECT version FROM schema_migrations ORDER BY version'])
if rc == 0:
    snap['schema_versions'] = out.split()
rc, out = run(['runuser', '-u', 'postgres', '--', 'psql', '-X', '-At', '-c',
               "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"])
if rc == 0:
    snap['advisory_locks'] = int(out.strip())
print(json.dumps(snap))
"""
SNAPSHOT = HELD + _SNAPSHOT_BODY


def docker(container: str, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", "exec", container, *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def interrupt(point: str, container: str, inventories: list[str], log: Path) -> dict[str, Any]:
    """One site.yml run killed at `point`; returns what happened."""
    playbook = Path(sys.executable).parent / "ansible-playbook"
    argv = [str(playbook), "-v", *[a for i in inventories for a in ("-i", i)]]
    argv.append(str(REPO / "playbooks" / "site.yml"))
    started = time.time()
    with log.open("w") as out:
        controller = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=REPO,
        )
    watcher = subprocess.Popen(
        [
            "docker",
            "exec",
            "-i",
            container,
            "python3",
            "-u",
            "-c",
            WATCHER,
            point,
            str(RUN_DEADLINE),
            TLS_DIR,
            SITE_FILE,
            KNOB_DIR,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert watcher.stdout is not None and watcher.stdin is not None
    lines: list[dict[str, Any]] = []
    hit = threading.Event()

    def read() -> None:
        assert watcher.stdout is not None
        for line in watcher.stdout:
            record = json.loads(line)
            if "hit" in record:
                # The same instant the watcher kills inside the container.
                os.killpg(controller.pid, signal.SIGKILL)
                hit.set()
            lines.append(record)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + RUN_DEADLINE
    while not hit.is_set() and controller.poll() is None and time.monotonic() < deadline:
        hit.wait(0.2)
    record: dict[str, Any] = {"point": point, "seconds": None, "controller_rc": None}
    if not hit.is_set():
        # Missed: the run ended (or hung) before the point. Stop both, record, fail later.
        if controller.poll() is None:
            os.killpg(controller.pid, signal.SIGKILL)
        record["controller_rc"] = controller.wait()
        watcher.stdin.close()
        try:
            watcher.wait(timeout=30)
        except subprocess.TimeoutExpired:
            watcher.kill()
        record["missed"] = True
        return record
    record["controller_rc"] = controller.wait()
    reader.join(timeout=60)
    watcher.wait(timeout=60)
    record["seconds"] = round(time.time() - started, 1)
    record["missed"] = False
    record["controller_killed"] = record["controller_rc"] == -signal.SIGKILL
    for line in lines:
        record.update(line)
    return record


def snapshot(container: str) -> dict[str, Any]:
    out = docker(container, "python3", "-c", SNAPSHOT, ENV_FILE, TLS_DIR, SITE_FILE, DATABASE)
    if out.returncode != 0:
        raise SystemExit(f"snapshot failed: {out.stderr}")
    return dict(json.loads(out.stdout))


def main() -> int:
    container, inventories = sys.argv[1], sys.argv[2:]
    inspect = subprocess.run(
        ["docker", "inspect", "-f", "{{.Id}}", container],
        capture_output=True,
        text=True,
        check=True,
    )
    logs = SCRATCH / "interrupted-converge"
    logs.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {
        "container": container,
        "container_id": inspect.stdout.strip(),
        "kills": [],
    }
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    status = 0
    for point in [p for p in POINTS if p in SELECTED]:
        if point == "migrations":
            setup = docker(
                container,
                "sh",
                "-c",
                f"mkdir -p {KNOB_DIR} && chmod 1777 {KNOB_DIR}"
                f" && rm -f {KNOB_DIR}/paused-migrations"
                f" && echo {MIGRATION_PAUSE_SECONDS} > {KNOB_DIR}/pause-migrations-seconds",
            )
            if setup.returncode != 0:
                raise SystemExit(setup.stderr)
        record = interrupt(point, container, inventories, logs / f"{point}.log")
        if point == "migrations":
            docker(container, "rm", "-rf", KNOB_DIR)
        record["after"] = snapshot(container)
        result["kills"].append(record)
        ARTIFACT.write_text(json.dumps(result, indent=2) + "\n")
        print(
            f"{point}: {'MISSED' if record['missed'] else 'killed'} after {record['seconds']} s",
            flush=True,
        )
        if record["missed"]:
            tail = (logs / f"{point}.log").read_text().splitlines()[-40:]
            print("\n".join(tail), file=sys.stderr)
            status = 1
            break
    return status


if __name__ == "__main__":
    sys.exit(main())
