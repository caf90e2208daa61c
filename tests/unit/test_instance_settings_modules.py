"""The instance_settings modules: the domain-policy plan, the runner's result parsing, and the
runner run for real through its action plugin (one script, several scripts in one Rails boot,
reuse of a batch entry) against a fake `bin/rails`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from cli_testlib import load_module

ROOT = Path(__file__).resolve().parents[2]
ROLE = ROOT / "roles/instance_settings"
LIBRARY = ROLE / "library"


# What AnsiballZ does on the host: the role's module_utils file answers to
# ansible.module_utils.<name> (test_the_module_gets_module_utils_through_ansiballz checks the
# real thing).
shared = load_module(
    "ansible.module_utils.instance_settings_domain_block",
    ROLE / "module_utils/instance_settings_domain_block.py",
)
policy = load_module(
    "instance_settings_domain_policy", LIBRARY / "instance_settings_domain_policy.py"
)
runner = load_module(
    "instance_settings_rails_runner", LIBRARY / "instance_settings_rails_runner.py"
)
plugin = load_module(
    "instance_settings_runner_action", ROLE / "action_plugins/instance_settings_rails_runner.py"
)
filters = load_module("instance_settings_filters", ROLE / "filter_plugins/instance_settings.py")


def block(domain: str, **fields: Any) -> dict[str, Any]:
    base = {
        "domain": domain,
        "severity": "suspend",
        "reject_media": False,
        "reject_reports": False,
        "private_comment": "",
        "public_comment": "",
        "obfuscate": False,
    }
    base.update(fields)
    return base


def test_equal_lists_need_no_operation() -> None:
    current = [block("a.example", id="1"), block("b.example", id="2", severity="silence")]
    wanted = [block("b.example", severity="silence"), block("a.example")]
    assert policy.plan_blocks(current, wanted) == []


def test_null_comments_on_the_server_equal_empty_text() -> None:
    current = [block("a.example", id="1", private_comment=None, public_comment=None)]
    assert policy.plan_blocks(current, [block("a.example")]) == []


def test_create_update_delete_sorted_by_domain() -> None:
    current = [block("c.example", id="3"), block("b.example", id="2", reject_media=True)]
    wanted = [block("b.example", reject_media=False, public_comment="x"), block("a.example")]
    ops = policy.plan_blocks(current, wanted)
    assert [(op["action"], op["domain"]) for op in ops] == [
        ("create", "a.example"),
        ("update", "b.example"),
        ("delete", "c.example"),
    ]
    update = ops[1]
    assert update["id"] == "2"
    assert update["before"] == {"reject_media": True, "public_comment": ""}
    assert update["after"] == {"reject_media": False, "public_comment": "x"}


def test_allow_plan() -> None:
    current = [{"id": 5, "domain": "old.example"}, {"id": 6, "domain": "keep.example"}]
    wanted = [{"domain": "keep.example"}, {"domain": "new.example"}]
    assert policy.plan_allows(current, wanted) == [
        {"action": "create_allow", "domain": "new.example"},
        {"action": "delete_allow", "domain": "old.example", "id": "5"},
    ]


def test_next_link_is_found() -> None:
    link = (
        '<http://x/api/v1/admin/domain_blocks?max_id=9>; rel="next",'
        ' <http://x/?min_id=20>; rel="prev"'
    )
    match = policy._NEXT.search(link)
    assert match is not None
    assert match.group(1) == "http://x/api/v1/admin/domain_blocks?max_id=9"


def test_the_filters_build_blocks_of_the_shape_the_module_compares() -> None:
    block_from_file = filters.parse_blocklist("a.example,silence\n")[0]
    block_from_inventory = filters.normalize_domain_blocks([{"domain": "b.example"}])[0]
    for made in (block_from_file, block_from_inventory):
        assert list(made) == ["domain", *policy.BLOCK_FIELDS]
        assert policy.block_view(made) == made
    assert policy.block_view is shared.block_view
    assert Path(filters._block.__file__) == Path(shared.__file__)  # one file, both sides


def test_the_module_gets_module_utils_through_ansiballz(tmp_path: Path) -> None:
    """Run by Ansible itself: the module's import of the role's module_utils resolves on the
    host (here: localhost); the module gets as far as its HTTP request."""
    env = {
        **os.environ,
        "ANSIBLE_LIBRARY": str(LIBRARY),
        "ANSIBLE_MODULE_UTILS": str(ROLE / "module_utils"),
        "ANSIBLE_CONFIG": str(tmp_path / "none.cfg"),
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "local"),
        "ANSIBLE_REMOTE_TEMP": str(tmp_path / "remote"),
    }
    args = json.dumps({"api_url": "http://127.0.0.1:9", "token": "unused-token-9f3a", "blocks": []})
    proc = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible"),
            "localhost",
            "-c",
            "local",
            "-e",
            f"ansible_python_interpreter={sys.executable}",
            "-m",
            "instance_settings_domain_policy",
            "-a",
            args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert "GET http://127.0.0.1:9/api/v1/admin/domain_blocks: <urlopen error" in proc.stdout, (
        proc.stdout + proc.stderr
    )
    assert "No module named" not in proc.stdout + proc.stderr


def test_runner_takes_the_last_marker_line() -> None:
    out = 'warning: noise\nINSTANCE_SETTINGS_RESULT {"changes": [1]}\nmore\n'
    out += 'INSTANCE_SETTINGS_RESULT {"changes": []}\n'
    assert runner.parse_result(out) == {"changes": []}
    assert runner.parse_result("no marker here\n") is None
    with pytest.raises(ValueError):
        runner.parse_result("INSTANCE_SETTINGS_RESULT {broken\n")


# --- the runner module, run for real against a fake `bin/rails` --------------------------------
#
# Real Rails (and Ruby) are not on the controller. The fake `bin/rails runner FILE` below runs
# FILE as Python and, for the module's batch driver, follows the driver's documented protocol
# (each script gets its own JSON input on stdin, its stdout is captured, the first failing
# script stops the batch, one INSTANCE_SETTINGS_BATCH line at the end). It appends one line
# per boot to a log, so the tests can count Rails boots. The Ruby driver itself runs against
# the Mastodon stand-in in tests/molecule/settings.

FAKE_RAILS = """#!{python}
import contextlib, io, json, os, sys

with open(os.environ["FAKE_RAILS_LOG"], "a") as log:
    log.write(" ".join(sys.argv[1:]) + "\\n")
assert sys.argv[1] == "runner", sys.argv
path = sys.argv[2]
if os.environ.get("FAKE_RAILS_BOOT_FAILS"):
    sys.stderr.write("Rails could not boot: database missing\\n")
    sys.exit(1)
if os.path.basename(path) == "instance-settings-batch-driver.rb":
    with open(path) as handle:
        assert "load(entry.fetch('path'), true)" in handle.read()
    batch = json.load(sys.stdin)
    runs = []
    for entry in batch["scripts"]:
        captured, status, error = io.StringIO(), 0, None
        sys.stdin = io.StringIO(json.dumps(entry["input"]))
        try:
            with contextlib.redirect_stdout(captured):
                exec(open(entry["path"]).read(), {{}})
        except SystemExit as exc:
            status = exc.code or 0
        except Exception as exc:
            status, error = 1, f"{{type(exc).__name__}}: {{exc}}"
        runs.append({{"name": entry["name"], "status": status,
                      "output": captured.getvalue(), "error": error}})
        if status:
            break
    print("INSTANCE_SETTINGS_BATCH " + json.dumps({{"runs": runs}}))
else:
    exec(open(path).read(), {{}})
"""

# Test scripts (Python here, Ruby in the role): echo the input back as a change list.
ECHO = """
import json, sys
data = json.load(sys.stdin)
changes = [] if data.get("same") else [{"action": "set", "value": data.get("value")}]
print("noise before the result line")
print("INSTANCE_SETTINGS_RESULT " + json.dumps(
    {"changes": changes, "before": {"v": "old"}, "after": {"v": data.get("value")},
     "dry_run_seen": data["dry_run"]}))
"""
FAIL = """
import json, sys
json.load(sys.stdin)
print("INSTANCE_SETTINGS_RESULT " + json.dumps({"error": "the role 'Boss' does not exist"}))
sys.exit(1)
"""
RAISE = "raise RuntimeError('boom')\n"
TOKEN = """
import json, sys
json.load(sys.stdin)
print("INSTANCE_SETTINGS_RESULT " + json.dumps({"changes": [], "token": "s3cr3t-token-value"}))
"""
LEAK = """
print("INSTANCE_SETTINGS_RESULT " + '{"error": "saw s3cr3t-token-value somewhere"}')
raise SystemExit(1)
"""
DEFERRED = """
import json, sys
json.load(sys.stdin)
print("INSTANCE_SETTINGS_RESULT " + json.dumps(
    {"changes": [{"action": "create", "username": "dave"}], "deferred": True}))
"""
SLOW = "import time\ntime.sleep(30)\n"


@pytest.fixture
def checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    live = tmp_path / "live"
    (live / "bin").mkdir(parents=True)
    rails = live / "bin" / "rails"
    rails.write_text(FAKE_RAILS.format(python=sys.executable))
    rails.chmod(0o755)
    monkeypatch.setenv("FAKE_RAILS_LOG", str(tmp_path / "boots.log"))
    return live


def boots(live: Path) -> list[str]:
    log = live.parent / "boots.log"
    return log.read_text().splitlines() if log.exists() else []


def run_task(live: Path, check_mode: bool = False, **args: Any) -> dict[str, Any]:
    """Run a task of the runner as Ansible does: the action plugin on the controller, which
    runs the module (run_module) unless it can answer from `from_batch` itself."""
    task = SimpleNamespace(
        args={"chdir": str(live), "timeout": 20, **args},
        check_mode=check_mode,
        async_val=0,
        action="instance_settings_rails_runner",
    )
    connection = SimpleNamespace(_shell=SimpleNamespace(tmpdir="/remote/tmp"))
    action = plugin.ActionModule(task, connection, None, None, None)
    action._remove_tmp_path = lambda path: None

    def execute_module(
        module_name: str, module_args: dict[str, Any], task_vars: Any
    ) -> dict[str, Any]:
        assert module_name == "instance_settings_rails_runner" and "from_batch" not in module_args
        return run_module(live, check_mode, **module_args)

    action._execute_module = execute_module
    answer: dict[str, Any] = action.run(task_vars={})
    return answer


def run_module(live: Path, check_mode: bool = False, **args: Any) -> dict[str, Any]:
    """Run the runner module as Ansible would (a JSON args file) and return its JSON answer."""
    payload = {"chdir": str(live), "timeout": 20, **args, "_ansible_check_mode": check_mode}
    args_file = live.parent / "args.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": payload}))
    proc = subprocess.run(
        [sys.executable, str(LIBRARY / "instance_settings_rails_runner.py"), str(args_file)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    answer: dict[str, Any] = json.loads(proc.stdout)
    return answer


def script(name: str, source: str, **data: Any) -> dict[str, Any]:
    return {"name": name, "script": source, "data": data}


def test_several_scripts_share_one_rails_boot(checkout: Path) -> None:
    out = run_task(
        checkout,
        scripts=[
            script("rules.rb", ECHO, value="r1"),
            script("settings.rb", ECHO, value="s1", same=True),
            script("token.rb", TOKEN),
        ],
    )
    assert len(boots(checkout)) == 1
    assert out["changed"] is True and out["failed_scripts"] == []
    rules, settings, token = (out["by_script"][n] for n in ("rules.rb", "settings.rb", "token.rb"))
    assert rules["changed"] is True
    assert rules["changes"] == [{"action": "set", "value": "r1"}]
    assert rules["result"]["dry_run_seen"] is False and rules["dry_run"] is False
    assert rules["diff"]["before_header"] == "rules.rb (server)"
    assert '"r1"' in rules["diff"]["after"]
    assert settings["changed"] is False and settings["changes"] == []
    assert token["result"]["token"] == "s3cr3t-token-value" and "diff" not in token


def test_check_mode_gives_every_script_a_dry_run(checkout: Path) -> None:
    out = run_task(
        checkout,
        check_mode=True,
        scripts=[script("rules.rb", ECHO, value="a"), script("staff.rb", ECHO, value="b")],
    )
    for name in ("rules.rb", "staff.rb"):
        assert out["by_script"][name]["result"]["dry_run_seen"] is True
        assert out["by_script"][name]["dry_run"] is True
    assert len(boots(checkout)) == 1


def test_user_text_reaches_the_script_as_data(checkout: Path) -> None:
    tricky = "#{system('id')} \"quoted\" back\\slash 日本語 🐘"
    out = run_task(checkout, scripts=[script("rules.rb", ECHO, value=tricky)])
    assert out["by_script"]["rules.rb"]["changes"] == [{"action": "set", "value": tricky}]


def test_a_failing_script_stops_the_batch_and_reports_its_error(checkout: Path) -> None:
    out = run_task(
        checkout,
        scripts=[
            script("rules.rb", ECHO, value="x"),
            script("staff.rb", FAIL),
            script("token.rb", TOKEN),
        ],
    )
    assert out.get("failed") is not True  # each part's own task reports its failure
    assert out["failed_scripts"] == ["staff.rb"]
    assert out["by_script"]["rules.rb"]["changed"] is True
    staff = out["by_script"]["staff.rb"]
    assert staff["failed"] is True
    assert staff["msg"] == "staff.rb failed (exit 1): the role 'Boss' does not exist"
    assert "token.rb" not in out["by_script"]


def test_an_exception_is_reported_with_its_class(checkout: Path) -> None:
    out = run_task(checkout, scripts=[script("settings.rb", RAISE)])
    message = out["by_script"]["settings.rb"]["msg"]
    assert message == "settings.rb failed (exit 1): RuntimeError: boom"


def test_the_token_never_appears_in_a_failure_message(checkout: Path) -> None:
    out = run_task(checkout, scripts=[script("token.rb", TOKEN), script("leak.rb", LEAK)])
    msg = out["by_script"]["leak.rb"]["msg"]
    assert "s3cr3t-token-value" not in msg and "********" in msg


def test_a_rails_boot_failure_fails_every_script_with_the_reason(
    checkout: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_RAILS_BOOT_FAILS", "1")
    out = run_task(checkout, scripts=[script("rules.rb", ECHO), script("token.rb", TOKEN)])
    assert out["failed_scripts"] == ["rules.rb", "token.rb"]
    for entry in out["by_script"].values():
        assert "database missing" in entry["msg"] and "exit 1" in entry["msg"]


def test_the_timeout_covers_the_whole_batch(checkout: Path) -> None:
    out = run_task(checkout, timeout=1, scripts=[script("rules.rb", SLOW)])
    assert out["by_script"]["rules.rb"]["failed"] is True
    assert "exit 124" in out["by_script"]["rules.rb"]["msg"]


def test_a_deferred_script_reports_no_change(checkout: Path) -> None:
    out = run_task(checkout, scripts=[script("staff.rb", DEFERRED)])
    staff = out["by_script"]["staff.rb"]
    assert staff["changed"] is False and out["changed"] is False
    assert staff["changes"] == [{"action": "create", "username": "dave"}]


def test_duplicate_script_names_are_refused(checkout: Path) -> None:
    out = run_task(checkout, scripts=[script("a.rb", ECHO), script("a.rb", ECHO)])
    assert out["failed"] is True and "used twice" in out["msg"]
    assert boots(checkout) == []


def test_no_scripts_means_no_boot(checkout: Path) -> None:
    out = run_task(checkout, scripts=[])
    assert out["changed"] is False and out["by_script"] == {}
    assert boots(checkout) == []


def test_a_single_script_still_runs_alone(checkout: Path) -> None:
    out = run_task(checkout, script=ECHO, script_name="rules.rb", data={"value": "v"})
    assert out["changed"] is True and out["changes"] == [{"action": "set", "value": "v"}]
    assert out["diff"]["after_header"] == "rules.rb (inventory)"
    assert boots(checkout)[0].startswith("runner ") and len(boots(checkout)) == 1
    failed = run_task(checkout, script=FAIL, script_name="staff.rb", data={})
    assert failed["failed"] is True
    assert failed["msg"] == "staff.rb failed (exit 1): the role 'Boss' does not exist"


def test_a_batch_entry_is_reused_without_booting_rails(checkout: Path) -> None:
    batch = run_task(checkout, scripts=[script("rules.rb", ECHO, value="b")])
    entry = batch["by_script"]["rules.rb"]
    reused = run_task(
        checkout, script=ECHO, script_name="rules.rb", data={"value": "b"}, from_batch=entry
    )
    assert len(boots(checkout)) == 1
    assert reused["reused_from_batch"] is True
    assert reused["changes"] == entry["changes"] and reused["diff"] == entry["diff"]


def test_a_failed_batch_entry_fails_the_part_that_reuses_it(checkout: Path) -> None:
    batch = run_task(checkout, scripts=[script("staff.rb", FAIL)])
    reused = run_task(
        checkout,
        script=FAIL,
        script_name="staff.rb",
        data={},
        from_batch=batch["by_script"]["staff.rb"],
    )
    assert reused["failed"] is True and "the role 'Boss' does not exist" in reused["msg"]
    assert len(boots(checkout)) == 1


@pytest.mark.parametrize(
    ("name", "check_mode"), [("settings.rb", False), ("rules.rb", True)], ids=["name", "mode"]
)
def test_a_batch_entry_of_another_script_or_mode_is_not_reused(
    checkout: Path, name: str, check_mode: bool
) -> None:
    batch = run_task(checkout, scripts=[script("rules.rb", ECHO, value="b")])
    out = run_task(
        checkout,
        check_mode=check_mode,
        script=ECHO,
        script_name=name,
        data={"value": "c"},
        from_batch=batch["by_script"]["rules.rb"],
    )
    assert len(boots(checkout)) == 2
    assert "reused_from_batch" not in out
    assert out["changes"] == [{"action": "set", "value": "c"}]


ENTRY = {"script_name": "rules.rb", "dry_run": False, "changed": True}


@pytest.mark.parametrize(
    ("entry", "name", "dry_run", "reused"),
    [
        (ENTRY, "rules.rb", False, True),
        (ENTRY, "rules.rb", True, False),
        (ENTRY, "staff.rb", False, False),
        ({"script_name": "rules.rb"}, "rules.rb", False, False),
        (None, "rules.rb", False, False),
        ("text", "rules.rb", False, False),
    ],
    ids=["fits", "other-mode", "other-script", "no-mode", "none", "not-a-mapping"],
)
def test_a_batch_entry_fits_only_its_script_and_check_mode(
    entry: Any, name: str, dry_run: bool, reused: bool
) -> None:
    assert plugin.reusable(entry, name, dry_run) == (ENTRY if reused else None)


def test_the_batch_driver_is_the_roles_ruby_file(checkout: Path) -> None:
    assert plugin.DRIVER == ROLE / "files/batch_driver.rb"
    assert "load(entry.fetch('path'), true)" in plugin.DRIVER.read_text(encoding="utf-8")
    without = run_module(checkout, scripts=[script("rules.rb", ECHO)])
    assert without["failed"] is True and "needs driver" in without["msg"]
    assert boots(checkout) == []


def test_no_ruby_in_the_roles_python() -> None:
    for path in ROLE.glob("*/*.py"):
        text = path.read_text(encoding="utf-8")
        assert "frozen_string_literal" not in text and "require 'json'" not in text, path
