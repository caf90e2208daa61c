"""Render an institution's inventory from answers + plan with the templates shipped in the
package (instance_cli/templates/). Pure: returns {relative path: bytes}; writes nothing."""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING, Any

import jinja2
import yaml

from instance_cli.answers import Answers, nest
from instance_cli.plan import CONNECTIONS_NEEDED_EXPRESSION, STREAMING_DB_POOL, Plan

if TYPE_CHECKING:
    from instance_cli.cooperative import Membership

MAX_LINE = 120  # the repository's yamllint line-length
VAULT_PATH = "group_vars/all/vault.yml"

FILES = (
    "answers.yml",
    "hosts.yml",
    "group_vars/all/main.yml",
    VAULT_PATH,
    "community/rules.yml",
    "community/code-of-conduct.md",
    "community/privacy-policy.md",
    "community/about.md",
)

# group -> children; the single VM is in every leaf group
GROUPS: dict[str, tuple[str, ...]] = {
    "mastodon": ("mastodon_web", "mastodon_sidekiq", "mastodon_streaming"),
    "postgresql": (),
    "redis": (),
    "backup": (),
}


class _IndentDumper(yaml.SafeDumper):
    """Indent block sequences under their key, as yamllint's default config expects."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def to_yaml(data: Any) -> str:
    text = yaml.dump(
        data,
        Dumper=_IndentDumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=100,
    )
    return text[:-4] if text.endswith("...\n") else text


def kv(key: str, value: Any, comment: str = "") -> str:
    """One `key: value` block in YAML, with an optional trailing comment on its first line."""
    text = to_yaml({key: value}).rstrip("\n")
    if comment:
        first, sep, rest = text.partition("\n")
        if len(first) + len(comment) + 3 <= MAX_LINE:
            text = f"{first}  # {comment}{sep}{rest}"
        else:
            text = f"# {comment}\n{text}"
    return text


def fit_lines(text: str) -> str:
    """Lines longer than the lint limit can only come from unbreakable values (long SSH keys):
    mark exactly those lines for yamllint."""
    out = []
    for line in text.splitlines():
        if len(line) > MAX_LINE:
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f"{indent}# yamllint disable-line rule:line-length")
        out.append(line)
    return "\n".join(out) + "\n"


@functools.cache
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("instance_cli", "templates"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,  # noqa: S701 - output is YAML and Markdown, never HTML
    )
    env.globals["kv"] = kv
    env.filters["to_yaml"] = to_yaml
    return env


def main_keys() -> tuple[str, ...]:
    """The variables group_vars/all/main.yml defines (the inventory contract), in order."""
    env = _env()
    source = env.loader.get_source(env, "main.yml.j2")[0]  # type: ignore[union-attr]
    return tuple(re.findall(r'^\{\{ kv\("([a-z0-9_]+)"', source, flags=re.MULTILINE))


def vault_ref(name: str) -> str:
    return "{{ " + name + " }}"


def context(answers: Answers, plan: Plan) -> dict[str, Any]:
    a = answers
    s = plan.sizing
    return {
        "a": a,
        "plan": plan,
        "s": s,
        "ref": vault_ref,
        "streaming_pool": STREAMING_DB_POOL,
        "connections_expression": CONNECTIONS_NEEDED_EXPRESSION,
        # The course analytics runs on the server only when the institution uses it.
        "groups": {**GROUPS, "analytics": ()} if a["analytics.mode"] == "opt-in" else GROUPS,
        "courses": [{"name": c["name"], "tags": list(c["tags"])} for c in a["analytics.courses"]],
        "staff": [
            {"username": m["username"], "email": m["email"], "role": m["role"]}
            for m in a["moderators"]
        ],
        "admin_users": [
            {"name": x["name"], "ssh_authorized_keys": list(x["ssh_keys"])} for x in a["admins"]
        ],
        "rules": [{"text": r["text"], "hint": r.get("hint", "")} for r in a["rules"]],
        "description": (
            f"The Mastodon server of {a['institution.name']}: a place for its learners and staff "
            "to share, ask and connect, run by the institution itself."
        ),
        "closed_message": (
            f"Sign-ups are limited to members of {a['institution.name']}. "
            f"Contact {a['admin.email']} if you need an account."
        ),
    }


def render_text(answers: Answers, plan: Plan, member: Membership | None = None) -> dict[str, str]:
    """Every file except the vault, as text. For a member of the cooperative, answers.yml keeps
    only the institution's own answers (the rest is the baseline's), and the inventory gets the
    shared blocklist and the other members' domains."""
    env = _env()
    ctx = context(answers, plan)
    ctx["member"] = member
    ctx["shared_blocklist"] = ""
    if member is not None and member.blocklist is not None:
        # From the playbooks, which live beside cooperative/ (playbooks/../cooperative/…), so the
        # path holds wherever the inventory is copied to.
        root = member.blocklist.resolve().parent.parent
        relative = member.blocklist.resolve().relative_to(root).as_posix()
        ctx["shared_blocklist"] = "{{ playbook_dir }}/../" + relative
    out: dict[str, str] = {}
    kept = answers if member is None else {k: v for k, v in answers.items() if k in member.own_keys}
    out["answers.yml"] = fit_lines(
        env.get_template("answers.yml.j2").render(ctx, body=to_yaml(nest(kept)))
    )
    out["hosts.yml"] = fit_lines(env.get_template("hosts.yml.j2").render(ctx))
    out["group_vars/all/main.yml"] = fit_lines(env.get_template("main.yml.j2").render(ctx))
    out["community/rules.yml"] = fit_lines(
        env.get_template("rules.yml.j2").render(ctx, body=to_yaml({"rules": ctx["rules"]}))
    )
    for name in ("code-of-conduct.md", "privacy-policy.md", "about.md"):
        out[f"community/{name}"] = env.get_template(f"{name}.j2").render(ctx)
    return out
