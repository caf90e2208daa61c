"""The click layer: parse options, call the library, print. The library decides."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from instance_cli import __version__, cooperative, fleet, vaultpass
from instance_cli.analytics.command import analytics
from instance_cli.answers import (
    SECRET_ENV,
    SECRET_QUESTIONS,
    Answers,
    load_raw_answers,
    validate_source,
)
from instance_cli.clicks import CONTEXT, ErrorGroup
from instance_cli.errors import InstanceCliError
from instance_cli.inventory import list_institutions, resolve, validate_inventory
from instance_cli.plan import MAX_USERS, MIN_USERS, sizing, sizing_table
from instance_cli.prompts import interview, summary
from instance_cli.reference import reference_markdown
from instance_cli.write import Result, new_institution, preflight


@click.group(cls=ErrorGroup, context_settings=CONTEXT)
@click.version_option(__version__, "-V", "--version", prog_name="instance-cli")
def cli() -> None:
    """Questionnaire -> Ansible inventory for an institution's Mastodon server."""


def _ask(question: str, default: str) -> str:
    return str(click.prompt(question, default=default, show_default=bool(default)))


def _say(text: str) -> None:
    click.echo(text)


def _secret_answers(interactive: bool, answers: Answers) -> dict[str, str | None]:
    """Secrets never come from the answers file: env vars, or hidden prompts interactively."""
    out: dict[str, str | None] = {}
    for name, env in SECRET_ENV.items():
        if name.startswith("sso.oidc.") and answers.get("sso.mode") != "oidc":
            out[name] = None
            continue
        if interactive:
            value = click.prompt(
                f"{SECRET_QUESTIONS[name]} (hidden; empty keeps the current value or sets none)",
                default="",
                show_default=False,
                hide_input=True,
            )
            out[name] = value or None
        else:
            out[name] = os.environ.get(env)
    return out


def _next_steps(result: Result, output_dir: Path) -> str:
    slug = result.plan.slug
    inv = output_dir / slug
    pw = result.password_file
    playbook_option = f"{vaultpass.OPTION} {pw}"
    validate_option = "" if pw == vaultpass.default_path(slug) else f" {playbook_option}"
    where = "created" if result.password_created else "using"
    s = result.plan.sizing
    lines = [
        f"Wrote {inv}/ (tier {result.plan.sizing.tier}; "
        f"{len(result.generated)} secrets generated, {len(result.kept)} kept).",
        f"Sizing: {s.tier} tier; recommended VM {s.vm_vcpus} vCPU, {s.vm_ram_gb} GB RAM, "
        f"{s.vm_disk_gb} GB disk; indicative cost {s.monthly_cost_usd} USD/month. {s.note}",
        f"Vault password file ({result.password_source}): {where} {pw}",
        f"  It is {slug}'s alone: keep it safe and out of git, and never use it for another",
        "  institution; without it the secrets cannot be read.",
        "",
        "Next steps (name the password file per command rather than exporting",
        f"{vaultpass.ENV}, so that it cannot leak into another institution's run):",
        f"  1. Review {inv}/ (community/ texts, group_vars/all/main.yml) and commit it.",
        f"  2. instance-cli validate {inv}{validate_option}",
        f"  3. ansible-playbook -i {inv} {playbook_option} playbooks/site.yml --check --diff",
        f"  4. ansible-playbook -i {inv} {playbook_option} playbooks/site.yml",
    ]
    return "\n".join(lines)


# The directory holding the institutions' inventories, for the commands that read them.
INVENTORIES_OPTION = click.option(
    "--inventories",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("inventories"),
    show_default=True,
    help="Directory holding the institutions' inventories.",
)


COOPERATIVE_OPTION = click.option(
    "--cooperative",
    "cooperative_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The cooperative's file [default: cooperative/cooperative.yml beside the inventories "
    "directory, when it exists].",
)


@cli.command(context_settings=CONTEXT)
@click.option(
    "--answers",
    "answers_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Answers file (YAML); never prompts. See docs/answers-reference.md.",
)
@click.option(
    "--output-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("inventories"),
    show_default=True,
    help="Directory holding the institutions' inventories.",
)
@click.option("--force", is_flag=True, help="Regenerate an existing institution (keeps secrets).")
@click.option("--dry-run", is_flag=True, help="Show what would be written; write nothing.")
@click.option(
    "--vault-password-file",
    type=click.Path(dir_okay=False),
    help="Vault password file [default: $ANSIBLE_VAULT_PASSWORD_FILE, else "
    "~/.config/instance-cli/vault-passwords/<slug>.txt]; created if absent. It must be this "
    "institution's own: another institution's file or the example's public one is refused.",
)
@COOPERATIVE_OPTION
def new(
    answers_file: Path | None,
    output_dir: Path,
    force: bool,
    dry_run: bool,
    vault_password_file: str | None,
    cooperative_file: Path | None,
) -> None:
    """Create inventories/<slug>/ from the questionnaire (interactive: questions by topic, then
    a summary to confirm) or an answers file. An answers file of a member of the cooperative
    inherits every key it does not give from the cooperative's baseline."""
    member: cooperative.Membership | None = None
    if answers_file is not None:
        raw = load_raw_answers(answers_file)
        coop = cooperative.find(output_dir, cooperative_file)
        member = cooperative.membership(coop, raw, output_dir)
        answers = validate_source(cooperative.member_answers(coop, raw), answers_file.name)
    else:
        click.echo(
            "New institution: answer each question. Enter keeps the [default]; '-' empties an "
            "optional answer. Each help line ends with the answers-file key in parentheses."
        )
        answers = interview(_ask, _say)
        # refuse an existing institution or a foreign password file before asking for secrets
        _plan, target, *_ = preflight(
            answers, output_dir, force=force, vault_password_file=vault_password_file
        )
    secret_answers = _secret_answers(answers_file is None, answers)
    if answers_file is None and not dry_run:
        click.echo("")
        click.echo(summary(answers))
        if not click.confirm(f"Write {target}/?", default=True):
            raise InstanceCliError(
                "Nothing was written: the summary was not confirmed. Run instance-cli new "
                "again (or put the answers in a file for --answers; docs/answers-reference.md)."
            )
    result = new_institution(
        answers,
        output_dir,
        force=force,
        dry_run=dry_run,
        vault_password_file=vault_password_file,
        secret_answers=secret_answers,
        member=member,
    )
    if dry_run:
        click.echo(result.preview)
        state = "exists" if result.password_file.exists() else "would be created"
        click.echo(f"Vault password file ({result.password_source}): {result.password_file} "
                   f"({state})")  # fmt: skip
        return
    click.echo(_next_steps(result, output_dir))


@cli.command(context_settings=CONTEXT)
@click.argument("institution")
@INVENTORIES_OPTION
@click.option("--vault-password-file", type=click.Path(dir_okay=False), help="Vault password.")
def validate(institution: str, inventories: Path, vault_password_file: str | None) -> None:
    """Check INSTITUTION (a slug or a path): schema, vault, rules, domains, sizing."""
    inv = resolve(institution, inventories)
    checked = validate_inventory(inv, vault_password_file)
    click.echo(f"{inv}: OK")
    for item in checked:
        click.echo(f"  checked: {item}")


def _short(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _cooperative(inventories: Path, cooperative_file: Path | None) -> cooperative.Cooperative:
    coop = cooperative.find(inventories, cooperative_file)
    if coop is None:
        raise InstanceCliError(
            f"no cooperative file: expected {cooperative.COOPERATIVE_FILE} beside "
            f"{inventories}/, or --cooperative FILE"
        )
    return coop


def _member(
    institution: str, inventories: Path, cooperative_file: Path | None
) -> tuple[cooperative.Cooperative, Path]:
    """The cooperative and the inventory of one of its members; anything else is an error."""
    coop = _cooperative(inventories, cooperative_file)
    inv = resolve(institution, inventories)
    if inv.name not in coop.members:
        raise InstanceCliError(
            f"{inv.name}: not a member of {coop.path} (members: {', '.join(coop.members)})"
        )
    return coop, inv


@cli.command("diff", context_settings=CONTEXT)
@click.argument("institution")
@INVENTORIES_OPTION
@COOPERATIVE_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def diff_cmd(
    institution: str, inventories: Path, cooperative_file: Path | None, as_json: bool
) -> None:
    """What INSTITUTION overrides of the cooperative's baseline, what it inherits, and what it
    answers on its own."""
    coop, inv = _member(institution, inventories, cooperative_file)
    source = inv / "answers.yml"
    rows = cooperative.diff(coop, load_raw_answers(source), str(source))
    if as_json:
        doc = {
            "institution": inv.name,
            "cooperative": _shown(coop.path),
            "keys": [
                {"key": r.key, "origin": r.origin, "value": r.value, "baseline": r.baseline}
                for r in rows
            ],
        }
        click.echo(json.dumps(doc, indent=2, default=str))
        return
    counts = {o: sum(r.origin == o for r in rows) for o in ("override", "inherited", "same", "own")}
    click.echo(
        f"{inv.name} against {_shown(coop.path)}: {counts['override']} overridden, "
        f"{counts['inherited']} inherited, {counts['same']} as the baseline, "
        f"{counts['own']} its own"
    )
    words = {"override": "overrides", "inherited": "inherits", "same": "same as", "own": "own"}
    width = max((len(r.key) for r in rows), default=0)
    for origin in ("override", "inherited", "same"):
        for r in (r for r in rows if r.origin == origin):
            extra = (
                f"   (baseline: {_short(json.dumps(r.baseline, default=str))})"
                if origin == "override"
                else ""
            )
            value = _short(json.dumps(r.value, default=str))
            click.echo(f"  {words[origin]:<10} {r.key:<{width}}  {value}{extra}")


@cli.group("blocklist", cls=ErrorGroup, context_settings=CONTEXT)
def blocklist() -> None:
    """The cooperative's shared blocklist (cooperative/blocklist.csv)."""


@blocklist.command("diff", context_settings=CONTEXT)
@click.argument("institution")
@INVENTORIES_OPTION
@COOPERATIVE_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a list.")
def blocklist_diff_cmd(
    institution: str, inventories: Path, cooperative_file: Path | None, as_json: bool
) -> None:
    """What applying the shared blocklist to INSTITUTION changes: the blocks it adds, and the
    domains where the institution's own entry wins."""
    coop, inv = _member(institution, inventories, cooperative_file)
    result = cooperative.blocklist_diff(coop, inv)
    shown = _shown(coop.blocklist) if coop.blocklist else ""
    if as_json:
        doc = {
            "institution": inv.name,
            "blocklist": shown,
            "added": [
                {"domain": b["domain"], "severity": b["severity"], "reason": b["public_comment"]}
                for b in result.added
            ],
            "own_wins": [
                {"domain": own["domain"], "own": own["severity"], "shared": shared["severity"]}
                for own, shared in result.own_wins
            ],
            "own_blocks": result.own,
        }
        click.echo(json.dumps(doc, indent=2))
        return
    click.echo(
        f"{inv.name}: applying {shown} adds {len(result.added)} block(s); its own entry wins "
        f"for {len(result.own_wins)} (it lists {result.own} of its own)"
    )
    for b in result.added:
        click.echo(f"  + {b['domain']}  {b['severity']}  {b['public_comment']}")
    for own, shared in result.own_wins:
        click.echo(
            f"  = {own['domain']}  its own: {own['severity']} (shared: {shared['severity']})"
        )


@cli.command("fleet", context_settings={**CONTEXT, "ignore_unknown_options": True})
@click.argument("job", type=click.Choice(list(fleet.JOBS)))
@click.argument("ansible_args", nargs=-1, type=click.UNPROCESSED)
@click.option("--only", multiple=True, metavar="SLUG", help="Run these members only (repeat).")
@click.option("--parallel", type=click.IntRange(1, 16), default=2, show_default=True,
              help="How many institutions run side by side (upgrade: always one).")  # fmt: skip
@click.option(
    "--vault-password-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where each institution's own password file is, as <slug>.txt [default: "
    "~/.config/instance-cli/vault-passwords].",
)
@click.option(
    "--log-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("fleet-logs"),
    show_default=True,
    help="One log per institution.",
)
@INVENTORIES_OPTION
@COOPERATIVE_OPTION
def fleet_cmd(
    job: str,
    ansible_args: tuple[str, ...],
    only: tuple[str, ...],
    parallel: int,
    vault_password_dir: Path | None,
    log_dir: Path,
    inventories: Path,
    cooperative_file: Path | None,
) -> None:
    """Run JOB (a playbook) for every member of the cooperative, or --only some, each with its
    own inventory and vault password; extra ANSIBLE_ARGS (after --) go to every run. upgrade
    rolls out canary-first: the first member alone, then the others one at a time, and the first
    failure leaves the rest untouched."""
    coop = _cooperative(inventories, cooperative_file)
    slugs = fleet.choose(coop, only, inventories)
    passwords = fleet.password_files(slugs, vault_password_dir, inventories)
    playbooks = inventories.resolve().parent / "playbooks"
    order = "canary first, one at a time" if job in fleet.CANARY_FIRST else f"{parallel} at a time"
    click.echo(f"fleet {job}: {', '.join(slugs)} ({order}); logs in {log_dir}/")

    def done(outcome: fleet.Outcome) -> None:
        click.echo(f"  {outcome.slug}: {outcome.status} in {outcome.seconds} s ({outcome.log})")

    outcomes = fleet.run(
        job, slugs, inventories=inventories, playbooks=playbooks, passwords=passwords,
        log_dir=log_dir, parallel=parallel, extra=ansible_args, on_done=done,
    )  # fmt: skip
    for outcome in outcomes:
        if outcome.status == "not run":
            click.echo(f"  {outcome.slug}: not run (an earlier institution failed; untouched)")
    failed = [o.slug for o in outcomes if o.status != "ok"]
    if failed:
        raise InstanceCliError(f"fleet {job}: {', '.join(failed)} did not succeed; see the logs")
    click.echo(f"fleet {job}: all {len(outcomes)} succeeded")


@cli.command("list", context_settings=CONTEXT)
@INVENTORIES_OPTION
def list_cmd(inventories: Path) -> None:
    """The cooperative's institutions: domain, tier and last-known version."""
    rows = list_institutions(inventories)
    if not rows:
        click.echo(f"No institutions in {inventories}/.")
        return
    header = ("institution", "domain", "tier", "version")
    table = [header, *((r.slug, r.domain, r.tier, r.version) for r in rows)]
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    for row in table:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


@cli.command("sizing", context_settings=CONTEXT)
@click.option(
    "--users",
    type=click.IntRange(MIN_USERS, MAX_USERS),
    required=True,
    help=f"Expected number of users ({MIN_USERS}..{MAX_USERS}).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def sizing_cmd(users: int, as_json: bool) -> None:
    """Tier and tuning numbers for N users (the same numbers `new` writes)."""
    plan = sizing(users)
    if as_json:
        click.echo(json.dumps({"users": users, **plan.as_dict()}, indent=2))
    else:
        click.echo(f"Sizing for {users} users")
        click.echo(sizing_table(plan))


cli.add_command(analytics)


@cli.command("answers-reference", context_settings=CONTEXT)
def answers_reference() -> None:
    """Print docs/answers-reference.md (generated from the questionnaire's schema)."""
    click.echo(reference_markdown(), nl=False)


def main() -> None:
    cli(prog_name="instance-cli")
