"""Role analytics against the Mastodon stand-in: the course #Bio101 that prepare.yml wrote
(files/analytics_fixture.rb) is read by the collector the role installed, started by its own
timer, through the container's nginx and Mastodon.py, with the role's read-only token.

Checked: the token can read and nothing else; the timer starts the service and the run
succeeds; the outputs open (GraphML with networkx, a PNG that is not blank) and hold exactly the
course's public conversation, every favourite of a post with more than one page of them
included; and no handle, display name or status id of anyone who did not opt in (or of another
server) is in any output, cache or log, while the learner who opted in is there by name.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shlex
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

SCENARIO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(SCENARIO.parent / "shared" / "tests"))

from playbooks import run_playbook  # noqa: E402

HOST = "is-settings-debian12"
DATA = "/var/lib/instance-analytics"
COURSE = f"{DATA}/bio101"
VENV_PYTHON = "/opt/instance-analytics/venv/bin/python"
# Every place the collector could have written to or logged: its snapshots, its cache, the
# system logs (the journal is read separately).
SEARCHED = [DATA, "/var/cache/instance-analytics", "/var/log", "/tmp", "/var/tmp"]
# Who did not opt in, or is not this server's: none of these may appear anywhere.
HIDDEN = [
    "bruno_private",
    "Bruno Keepsprivate",
    "learner01",
    "Learner Number",
    "rita",
    "Rita Remotely",
    "elsewhere.example",
]
# After the drop-in below, the timer elapses this long after it is restarted.
TRIGGER_AFTER_S = 2
SERVICE = "instance-analytics.service"
TIMER = "instance-analytics.timer"
DROPIN = "/run/systemd/system/instance-analytics.timer.d"
RESTART_TIMER = f"systemctl daemon-reload && systemctl restart {TIMER}"
RUN_TIMEOUT_S = 180


def sh(host: Any, command: str) -> str:
    result = host.run(command)
    assert result.rc == 0, f"{command}: {result.stderr}"
    return str(result.stdout)


def unit_property(host: Any, unit: str, name: str) -> str:
    return sh(host, f"systemctl show -P {name} {unit}").strip()


def fixture(host: Any) -> dict[str, Any]:
    return dict(json.loads(sh(host, "cat /root/analytics-fixture.json")))


@pytest.fixture(scope="module")
def run_folder(host: Any) -> str:
    """Let the weekly timer start the collector now (a runtime drop-in adds OnActiveSec, so the
    timer itself elapses), wait for the run to finish, put the timer back, and return the run's
    dated folder. Nothing is run by hand: a timer that does not start the service fails here."""
    assert unit_property(host, SERVICE, "ExecMainStartTimestampMonotonic") == "0", (
        "the collector ran before the test started it"
    )
    sh(host, f"mkdir -p {DROPIN}")
    # RandomizedDelaySec applies to every elapse of a timer: without 0 the run could wait 30 min.
    now = f"[Timer]\\nOnActiveSec={TRIGGER_AFTER_S}s\\nRandomizedDelaySec=0\\n"
    sh(host, f"printf '{now}' > {DROPIN}/test-now.conf")
    try:
        sh(host, RESTART_TIMER)
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while time.monotonic() < deadline:
            if unit_property(host, SERVICE, "ExecMainExitTimestampMonotonic") not in ("", "0"):
                break
            time.sleep(2)
        else:
            pytest.fail(f"the timer did not start a run that finished within {RUN_TIMEOUT_S} s")
        # The timer elapsed (a restart of the timer, below, forgets it).
        assert unit_property(host, TIMER, "LastTriggerUSecMonotonic") not in ("", "0")
    finally:
        sh(host, f"rm -rf {DROPIN} && {RESTART_TIMER}")
    journal = sh(host, f"journalctl -u {SERVICE} --no-pager -o cat")
    assert unit_property(host, SERVICE, "Result") == "success", journal
    folders = sh(host, f"find {COURSE} -mindepth 1 -maxdepth 1 -type d -name '20*'").split()
    assert len(folders) == 1, folders
    return folders[0]


def test_the_token_reads_and_can_do_nothing_else(host: Any) -> None:
    token_file = host.file("/etc/instance-analytics/token")
    assert (token_file.user, token_file.group, token_file.mode) == (
        "root",
        "instance-analytics",
        0o440,
    )
    scopes = sh(
        host,
        "runuser -u postgres -- psql -At mastodon_production -c"
        " \"SELECT t.scopes || ' ' || a.username"
        " FROM oauth_access_tokens t JOIN oauth_applications p ON p.id = t.application_id"
        " JOIN users u ON u.id = t.resource_owner_id JOIN accounts a ON a.id = u.account_id"
        " WHERE p.name = 'Course analytics (instance-analytics)' AND t.revoked_at IS NULL\"",
    ).split("\n")
    assert [s for s in scopes if s] == ["read course_analytics"]
    auth = '-H "Authorization: Bearer $(cat /etc/instance-analytics/token)"'
    base = "https://social.example-university.edu"
    curl = f"curl -s -o /dev/null -w '%{{http_code}}' {auth}"
    reads = sh(host, f"{curl} {base}/api/v1/timelines/tag/bio101")
    writes = sh(host, f"{curl} -F file=@/etc/hostname {base}/api/v2/media")
    assert (reads, writes) == ("200", "403")


def analytics_playbook(*args: str) -> tuple[int, dict[str, Any] | None, str]:
    return run_playbook(
        "analytics.yml", *args, timeout=900, env={"MOLECULE_SCENARIO_DIRECTORY": str(SCENARIO)}
    )


def test_check_mode_on_the_converged_host_changes_nothing() -> None:
    code, doc, text = analytics_playbook("--check", "--diff")
    assert code == 0, text[-3000:]
    assert doc is not None
    changed = [
        task["task"]["name"]
        for play in doc["plays"]
        for task in play["tasks"]
        if task["hosts"].get(HOST, {}).get("changed")
    ]
    assert changed == [], changed
    assert doc["stats"][HOST]["changed"] == 0


def test_a_bad_course_is_refused_before_anything_changes(host: Any) -> None:
    before = sh(host, f"systemctl cat {SERVICE} | sha256sum")
    bad = {"analytics_courses": [{"name": "Bio 101", "tags": ["Bio101"]}]}
    code, doc, text = analytics_playbook("-e", json.dumps(bad))
    assert code != 0
    # A loop's failure is in its items' results: the whole JSON document is searched.
    assert "analytics_courses[0]: expected name (lower-case letters" in text, text[-3000:]
    assert "Bio 101" in text
    assert doc is not None
    assert doc["stats"][HOST]["changed"] == 0
    assert sh(host, f"systemctl cat {SERVICE} | sha256sum") == before


def test_missing_wheels_are_refused_naming_the_script(host: Any) -> None:
    before = sh(host, f"systemctl cat {SERVICE} | sha256sum")
    code, doc, text = analytics_playbook("-e", "analytics_wheelhouse=/nonexistent/wheelhouse")
    assert code != 0
    assert "/nonexistent/wheelhouse/cp311-x86_64 does not exist on the controller" in text
    assert "scripts/analytics-wheelhouse.sh --python 3.11" in text
    assert doc is not None
    assert doc["stats"][HOST]["changed"] == 0
    assert sh(host, f"systemctl cat {SERVICE} | sha256sum") == before


def test_the_weekly_timer_is_set(host: Any) -> None:
    timer = host.service(TIMER)
    assert timer.is_enabled and timer.is_running
    assert unit_property(host, TIMER, "TimersCalendar").startswith(
        "{ OnCalendar=Mon *-*-* 04:30:00"
    )
    assert unit_property(host, SERVICE, "User") == "instance-analytics"


def test_the_outputs_open_and_hold_the_course(host: Any, run_folder: str) -> None:
    graph = sh(
        host,
        f'{VENV_PYTHON} -c "import networkx as nx;'
        f" g = nx.read_graphml('{run_folder}/graph.graphml');"
        ' print(g.number_of_nodes(), g.number_of_edges())"',
    ).split()
    # ada, bruno, rita and the 45 learners; one edge per source, target and type: favourite
    # 47 (bruno and rita to ada, 45 learners to bruno), boost 1, reply 3 (bruno to ada, rita to
    # bruno, ada to bruno), mention 1
    assert graph == ["48", "52"]
    extrema = sh(
        host,
        f'{VENV_PYTHON} -c "from PIL import Image;'
        f" im = Image.open('{run_folder}/network.png').convert('L');"
        ' print(*im.getextrema(), *im.size)"',
    ).split()
    low, high, width, height = (int(x) for x in extrema)
    assert high - low > 100 and width > 200 and height > 200, extrema
    summary = json.loads(sh(host, f"cat {run_folder}/weekly.json"))
    # s1, s2, s3, s5, s6 are public; s4 (private) and the boost are not posts of the course.
    assert summary["posts"] == 5
    assert summary["interactions"] == {"reply": 3, "mention": 1, "boost": 1, "favourite": 47}
    rows = list(csv.DictReader(io.StringIO(sh(host, f"cat {run_folder}/interactions.csv"))))
    assert Counter(r["type"] for r in rows) == {
        "favourite": 47,
        "reply": 3,
        "boost": 1,
        "mention": 1,
    }
    index = sh(host, f"cat {COURSE}/index.html")
    assert run_folder.rsplit("/", 1)[1] in index


def test_no_one_who_did_not_opt_in_appears_anywhere(host: Any, run_folder: str) -> None:
    ids = [v for k, v in fixture(host).items() if k.startswith("s")]
    hidden = [*HIDDEN, *ids]

    # Whole words only: "rita" is also in random tokens such as sudo's BECOME-SUCCESS-…rita….
    def found(needles: list[str], places: list[str]) -> str:
        patterns = " ".join(f"-e {shlex.quote(n)}" for n in needles)
        result = host.run(f"grep -r -l -w -F {patterns} {' '.join(places)} 2>/dev/null")
        assert result.rc in (0, 1), result.stderr
        return str(result.stdout)

    # Names anywhere, logs included; status ids in everything the collector writes. (nginx's
    # access log holds the URLs the collector asked for, as it does for every client: the
    # ids of public posts, never a name.)
    assert found(HIDDEN, SEARCHED) == ""
    assert found(ids, [DATA, "/var/cache/instance-analytics", "/tmp", "/var/tmp"]) == ""
    journal = sh(host, f"journalctl --no-pager -o cat -u {SERVICE} -u {TIMER}")
    assert "wrote " in journal  # the run logged, and only this
    assert not [h for h in hidden if re.search(rf"\b{re.escape(h)}\b", journal)]
    # The learner who opted in is there by name: the search above can find a handle.
    named = host.run(f"grep -r -l -F @ada_optin {run_folder}")
    assert named.rc == 0 and "graph.graphml" in named.stdout


# --- served to staff (analytics_publish: staff in molecule.yml) --------------------------------

WEB = "https://social.example-university.edu"
LIVE = "/home/mastodon/live"
TOOTCTL = f"cd {LIVE} && runuser -u mastodon -- env RAILS_ENV=production bin/tootctl"
PSQL = "runuser -u postgres -- psql -At mastodon_production -c"
# Who signs in: a moderator (the role that may open the reports) and a learner without a role.
BROWSER_USERS = {
    "course_mod": ("course-mod@example-university.edu", ["--role", "Moderator"]),
    "course_learner": ("course-learner@example-university.edu", []),
}
# A browser: signs in through the form (authenticity token and cookies, as a person does) when
# given an e-mail, or goes on with the cookies it kept in `jar`; then asks for each path
# without following redirects. Reads JSON on stdin, so no password is on a command line.
BROWSER = r"""
import json, os, re, sys
import requests
job = json.load(sys.stdin)
session = requests.Session()
if job["jar"] and os.path.exists(job["jar"]):
    with open(job["jar"]) as kept:
        session.cookies.update(json.load(kept))
if job["email"]:
    form = session.get(job["base"] + "/auth/sign_in", timeout=30)
    token = re.search(r'name="authenticity_token" value="([^"]+)"', form.text).group(1)
    signed = session.post(job["base"] + "/auth/sign_in", allow_redirects=False, timeout=30,
                          data={"authenticity_token": token, "user[email]": job["email"],
                                "user[password]": job["password"]})
    assert signed.status_code == 302 and signed.headers["location"] == "/", signed.status_code
    assert "_session_id" in session.cookies, "signed in without a session cookie"
answers = []
for path in job["paths"]:
    answer = session.get(job["base"] + path, allow_redirects=False, timeout=30)
    binary = not answer.headers.get("content-type", "").startswith("text/")
    answers.append({"path": path, "status": answer.status_code, "headers": dict(answer.headers),
                    "body": "" if binary else answer.text, "bytes": len(answer.content)})
if job["jar"]:
    with open(os.open(job["jar"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as kept:
        json.dump(session.cookies.get_dict(), kept)
print(json.dumps(answers))
"""
JAR = "/root/analytics-moderator-cookies.json"


@pytest.fixture(scope="module")
def browser_users(host: Any) -> Any:
    """A moderator and a learner with fresh passwords; deleted again afterwards, so the settings
    tests see only the staff the answers file names."""
    passwords = {}
    for name, (email, extra) in BROWSER_USERS.items():
        query = f"SELECT count(*) FROM accounts WHERE username = '{name}'"  # noqa: S608 constants
        exists = sh(host, f'{PSQL} "{query}"')
        if exists.strip() == "1":
            out = sh(host, f"{TOOTCTL} accounts modify {name} --reset-password --enable")
        else:
            words = " ".join([name, "--email", email, "--confirmed", "--approve", *extra])
            out = sh(host, f"{TOOTCTL} accounts create {words}")
        passwords[name] = out.split("New password:", 1)[1].split()[0]
    yield {name: (BROWSER_USERS[name][0], passwords[name]) for name in BROWSER_USERS}
    names = ", ".join(f"'{n}'" for n in BROWSER_USERS)
    query = f"DELETE FROM accounts WHERE username IN ({names})"  # noqa: S608 constants
    sh(host, f'{PSQL} "{query}"')


def browse(
    host: Any, paths: list[str], who: tuple[str, str] | None = None, jar: str = ""
) -> list[dict[str, Any]]:
    email, password = who or ("", "")
    job = json.dumps(
        {"base": WEB, "email": email, "password": password, "paths": paths, "jar": jar}
    )
    command = (
        f"REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt {VENV_PYTHON} -c"
        f" {shlex.quote(BROWSER)} <<'JOB'\n{job}\nJOB"
    )
    result = host.run(command)
    assert result.rc == 0, result.stderr[-2000:]
    return list(json.loads(result.stdout))


def run_name(run_folder: str) -> str:
    return run_folder.rsplit("/", 1)[1]


def test_a_moderator_signed_in_to_mastodon_opens_the_snapshots(
    host: Any, run_folder: str, browser_users: dict[str, tuple[str, str]]
) -> None:
    run = run_name(run_folder)
    state = sh(host, f"ls {COURSE}/.state").split()[0]
    index, picture, folder, hidden, bare = browse(
        host,
        [
            "/analytics/bio101/",
            f"/analytics/bio101/{run}/network.png",
            f"/analytics/bio101/{run}/",
            f"/analytics/bio101/.state/{state}",
            "/analytics",
        ],
        browser_users["course_mod"],
    )
    assert index["status"] == 200 and run in index["body"], index["status"]
    assert picture["status"] == 200 and picture["headers"]["Content-Type"] == "image/png"
    assert picture["bytes"] == host.file(f"{run_folder}/network.png").size
    assert folder["status"] == 200 and "network.png" in folder["body"]
    for answer in (index, picture):
        headers = answer["headers"]
        assert headers["Cache-Control"] == "private, no-store", headers
        assert headers["Strict-Transport-Security"].startswith("max-age="), headers
        assert headers["X-Content-Type-Options"] == "nosniff"
    # The collector's state is never served, even to staff; nor is it readable to nginx's group.
    assert hidden["status"] == 404 and "handles" not in hidden["body"]
    assert host.file(f"{COURSE}/.state").mode == 0o700
    assert (bare["status"], bare["headers"]["Location"]) == (301, f"{WEB}/analytics/")


def test_no_one_else_opens_them(
    host: Any, run_folder: str, browser_users: dict[str, tuple[str, str]]
) -> None:
    run = run_name(run_folder)
    paths = ["/analytics/bio101/", f"/analytics/bio101/{run}/network.png"]
    for who in (None, browser_users["course_learner"]):
        for answer in browse(host, paths, who):
            assert answer["status"] == 403, (who and who[0], answer["path"], answer["status"])
            assert run not in answer["body"] and answer["bytes"] < 1000
            assert 'href="/auth/sign_in"' in answer["body"]
            assert answer["headers"]["Cache-Control"] == "private, no-store"
    # Mastodon is asked every time, nothing is remembered: the moderator's own session, once
    # the account is disabled, opens nothing (the stand-in answers 403; Mastodon redirects such
    # a session, which nginx refuses as well, with 500); and while Mastodon's web does not
    # answer, nothing is served to anyone.
    signed_in = browse(host, paths, browser_users["course_mod"], JAR)
    assert [a["status"] for a in signed_in] == [200, 200]
    sh(host, f"{TOOTCTL} accounts modify course_mod --disable")
    try:
        disabled = browse(host, paths, jar=JAR)
    finally:
        sh(host, f"{TOOTCTL} accounts modify course_mod --enable")
    assert all(a["status"] != 200 and run not in a["body"] for a in disabled), disabled
    # The socket too: it would start the web again on the first request.
    sh(host, "systemctl stop mastodon-web.socket mastodon-web.service")
    try:
        down = browse(host, paths, jar=JAR)
    finally:
        sh(host, "systemctl start mastodon-web.socket mastodon-web.service")
        sh(host, f"timeout 60 sh -c 'until curl -sf -o /dev/null {WEB}/health; do sleep 1; done'")
    assert [a["status"] for a in down] == [500, 500], [a["status"] for a in down]
    assert all(run not in a["body"] for a in down)
    # The same session again, with Mastodon back and the account enabled.
    assert [a["status"] for a in browse(host, paths, jar=JAR)] == [200, 200]


def test_private_takes_them_off_the_web(
    host: Any, run_folder: str, browser_users: dict[str, tuple[str, str]]
) -> None:
    tags = ("--tags", "analytics-validate,analytics-publish")
    code, _, text = analytics_playbook("-e", "analytics_publish=private", *tags)
    try:
        assert code == 0, text[-3000:]
        data = host.file(DATA)
        owner = (data.user, data.group, data.mode)
        assert owner == ("instance-analytics", "instance-analytics", 0o700)
        assert not host.file("/etc/nginx/mastodon-site.d/instance-analytics.conf").exists
        # The path is Mastodon's again (its 404), for the moderator too.
        (answer,) = browse(host, ["/analytics/bio101/"], browser_users["course_mod"])
        assert answer["status"] == 404 and run_name(run_folder) not in answer["body"]
        assert "stand-in" in answer["body"]
    finally:
        code, _, text = analytics_playbook(*tags)
    assert code == 0, text[-3000:]
    data = host.file(DATA)
    assert (data.group, data.mode) == ("www-data", 0o750)
    (answer,) = browse(host, ["/analytics/bio101/"], browser_users["course_mod"])
    assert answer["status"] == 200
