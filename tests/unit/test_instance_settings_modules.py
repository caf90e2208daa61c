"""Pure parts of the instance_settings modules: the domain-policy plan and the runner's
result parsing."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

LIBRARY = Path(__file__).resolve().parents[2] / "roles/instance_settings/library"


def _load(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, LIBRARY / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


policy = _load("instance_settings_domain_policy")
runner = _load("instance_settings_rails_runner")


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


def test_runner_takes_the_last_marker_line() -> None:
    out = 'warning: noise\nINSTANCE_SETTINGS_RESULT {"changes": [1]}\nmore\n'
    out += 'INSTANCE_SETTINGS_RESULT {"changes": []}\n'
    assert runner.parse_result(out) == {"changes": []}
    assert runner.parse_result("no marker here\n") is None
    with pytest.raises(ValueError):
        runner.parse_result("INSTANCE_SETTINGS_RESULT {broken\n")
