"""docs/answers-reference.md, generated from the schema (a unit test keeps them in sync)."""

from __future__ import annotations

from instance_cli.answers import SCHEMA, SECRET_ENV, SECRET_QUESTIONS, Field, topics
from instance_cli.fieldtypes import Records


def _doc_default(f: Field) -> str:
    if f.required:
        text = "**required**"
    elif f.default_doc:
        text = f.default_doc
    elif f.default is None:
        text = "empty"
    elif isinstance(f.default, list):
        text = ", ".join(str(x) for x in f.default) or "[]"
    else:
        text = f"`{f.default}`" if f.default != "" else '`""`'
    return f"{text}; suggested: {f.suggest_doc}" if f.suggest_doc else text


def reference_markdown() -> str:
    """docs/answers-reference.md, generated from SCHEMA (a unit test keeps them in sync)."""
    lines = [
        "# Answers reference",
        "",
        "<!-- Generated from the schema in instance_cli/answers.py by"
        " `instance-cli answers-reference`;"
        " do not edit by hand. -->",
        "",
        "Every question of `instance-cli new`, under the heading it is asked under, with its",
        "key in the answers file (`--answers FILE`). Dotted names nest in the file:",
        "`domains.local` is `domains: {local: ...}`. Unknown keys are errors. See",
        "`examples/answers/example-university.yml`. A *suggested* value is derived from earlier",
        "answers and offered by the interactive questionnaire only (Enter accepts it); an",
        "answers file must still give every required key.",
    ]
    for topic, fields in topics():
        lines += [
            "",
            f"## {topic}",
            "",
            "| key | question | expected | default |",
            "|---|---|---|---|",
        ]
        for f in fields:
            expected = f.type.describe().replace("|", "\\|")
            lines.append(
                f"| `{f.name}` | {f.question}. {f.help} | {expected} | {_doc_default(f)} |"
            )
    lines += ["", "## List entries", ""]
    for f in SCHEMA:
        if isinstance(f.type, Records):
            lines += [f"`{f.name}` ({f.type.min_items} to {f.type.max_items} entries):", ""]
            for s in f.type.subs:
                req = "required" if s.required else f"optional, default `{s.default!r}`"
                lines.append(f"- `{s.name}`: {s.type.describe()} ({req}). {s.help}.")
            lines.append("")
    lines += [
        "## Secrets (never in the answers file)",
        "",
        "Asked with a hidden prompt in interactive mode; with `--answers` read from the",
        "environment. An existing vault keeps its value when the variable is unset.",
        "",
    ]
    for name, env in SECRET_ENV.items():
        lines.append(f"- `{name}` ({SECRET_QUESTIONS[name]}): environment variable `{env}`")
    lines.append("")
    return "\n".join(lines)
