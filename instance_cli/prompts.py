"""The interactive questionnaire: SCHEMA's questions in plain words, grouped by topic, with the
answers-file key in each help line; then a summary to confirm before anything is written.

Input and output go through two callables (`ask`, `say`) so the click layer owns the terminal.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from instance_cli.answers import (
    MAX_RULE_TEXT,
    MAX_RULES,
    REQUIRED,
    RULE_SUBS,
    SCHEMA,
    Answers,
    BadValue,
    Choice,
    Field,
    Records,
    Type,
    nest,
    show,
    topics,
    validate,
)
from instance_cli.errors import InstanceCliError, ValidationError

Ask = Callable[[str, str], str]  # (question, default shown) -> raw text
Say = Callable[[str], None]
CLEAR = "-"  # typed to empty an optional answer that has a default
SUMMARY_WIDTH = 70  # longer values are shortened in the summary


def heading(topic: str) -> str:
    return f"== {topic} =="


def ask_value(ask: Ask, say: Say, question: str, help_line: str, vtype: Type, default: Any) -> Any:
    """Ask until the answer is valid; re-ask with the reason otherwise."""
    if help_line:
        say(f"  {help_line}")
    shown = vtype.to_text(default) if default is not REQUIRED else ""
    for _ in range(100):  # bounded: a closed stdin ends in click.Abort long before this
        text = ask(question, shown)
        if text == "" and default is not REQUIRED:
            text = shown
        elif text.strip() == CLEAR:
            text = ""
        try:
            return vtype.from_text(text)
        except BadValue as exc:
            say(f"  Invalid: expected {exc}, got {show(text)}. Please try again.")
    raise InstanceCliError(f"{question}: too many invalid answers")


def _sub_default(sub: Any, answers: Answers, rec: dict[str, Any]) -> Any:
    if sub.suggest is not None:
        try:
            return sub.type.check(sub.suggest(answers, rec))
        except BadValue:
            pass
    return sub.default if not sub.required else REQUIRED


def ask_records(ask: Ask, say: Say, f: Field, rtype: Records, answers: Answers) -> list[Any]:
    items: list[dict[str, Any]] = []
    say(f"  {f.help} ({f.name})")
    while len(items) < rtype.max_items:
        if len(items) >= rtype.min_items:
            more = ask_value(
                ask, say, f"Add another {rtype.item}? (yes/no)", "", Choice("yes", "no"), "no"
            )
            if more == "no":
                break
        n = len(items) + 1
        rec: dict[str, Any] = {}
        for sub in rtype.subs:
            rec[sub.name] = ask_value(
                ask,
                say,
                f"{rtype.item[0].upper()}{rtype.item[1:]} {n}, {sub.question}",
                f"{sub.help} ({f.name}[{n}].{sub.name})",
                sub.type,
                _sub_default(sub, answers, rec),
            )
        items.append(rec)
    return items


def edit_rules(ask: Ask, say: Say, f: Field, rules: list[dict[str, str]]) -> list[dict[str, str]]:
    """Show the rules and let the user edit (e N), add (a), remove (r N) until done."""
    text_sub, hint_sub = RULE_SUBS
    say(f"  {f.help} ({f.name})")
    for _ in range(1000):
        say("  Current rules:")
        for i, rule in enumerate(rules, 1):
            say(f"    {i}. {rule['text']}")
        command = ask("Rules: 'done', 'e N' edit, 'a' add, 'r N' remove", "done").strip()
        match = re.fullmatch(r"([ear])(?:\s+([0-9]{1,2}))?|done", command)
        if not match:
            say("  Invalid: expected done, a, e N or r N.")
            continue
        if command == "done":
            if rules:
                return rules
            say("  Invalid: keep at least one rule.")
            continue
        op, num = match.group(1), match.group(2)
        index = int(num) - 1 if num else -1
        if op in "er" and not 0 <= index < len(rules):
            say(f"  Invalid: expected a rule number from 1 to {len(rules)}.")
            continue
        if op == "a" and len(rules) >= MAX_RULES:
            say(f"  Invalid: at most {MAX_RULES} rules; remove one first.")
            continue
        if op == "r":
            rules.pop(index)
            continue
        n = index + 1 if op == "e" else len(rules) + 1
        old = rules[index] if op == "e" else {"text": REQUIRED, "hint": ""}
        text = ask_value(ask, say, f"Rule {n}", f"At most {MAX_RULE_TEXT} characters "
                         f"({f.name}[{n}].text)", text_sub.type, old["text"])  # fmt: skip
        hint = ask_value(ask, say, f"Rule {n}, {hint_sub.question}",
                         f"{hint_sub.help} ({f.name}[{n}].hint)", hint_sub.type,
                         old["hint"])  # fmt: skip
        new = {"text": text, "hint": hint}
        if op == "e":
            rules[index] = new
        else:
            rules.append(new)
    raise InstanceCliError("rules: too many edits")


def ask_field(ask: Ask, say: Say, f: Field, answers: Answers, default: Any) -> Any:
    if isinstance(f.type, Records):
        if f.name == "rules":
            return edit_rules(ask, say, f, f.default_for(answers))
        return ask_records(ask, say, f, f.type, answers)
    return ask_value(ask, say, f.question, f"{f.help} ({f.name})", f.type, default)


def interview(ask: Ask, say: Say) -> Answers:
    """Ask every question of SCHEMA, topic by topic, with default and help; returns valid
    answers."""
    answers: Answers = {}
    topic = None
    for f in SCHEMA:
        if f.ask_if is not None and not f.ask_if(answers):
            answers[f.name] = f.default_for(answers)
            continue
        if f.topic != topic:
            topic = f.topic
            say("")
            say(heading(topic))
        answers[f.name] = ask_field(ask, say, f, answers, f.suggestion(answers))
    # The same validation as an answers file, cross-field rules included; re-ask only the
    # fields a cross-field rule names, so nothing typed so far is lost.
    for _ in range(20):
        try:
            return validate(nest(answers))
        except ValidationError as exc:
            names = {re.split(r"[:\[]", p, maxsplit=1)[0] for p in exc.problems}
            for problem in exc.problems:
                say(f"  Invalid: {problem}")
            again = [f for f in SCHEMA if f.name in names]
            if not again:  # pragma: no cover - every problem names a field
                raise
            for f in again:
                answers[f.name] = ask_field(ask, say, f, answers, REQUIRED)
    raise InstanceCliError("too many invalid answers")


def _short(text: str) -> str:
    return text if len(text) <= SUMMARY_WIDTH else text[: SUMMARY_WIDTH - 3] + "..."


def summary(answers: Answers) -> str:
    """Every answer, by topic, in the questions' words. Secrets are not answers: never here."""
    lines = ["Summary (nothing has been written yet):"]
    for topic, fields in topics():
        shown = [f for f in fields if f.ask_if is None or f.ask_if(answers)]
        if not shown:
            continue
        lines.append(heading(topic))
        for f in shown:
            value = answers.get(f.name)
            if isinstance(f.type, Records):
                lines.append(f"  {f.question}:")
                for i, rec in enumerate(value or [], 1):
                    parts = [sub.type.to_text(rec.get(sub.name)) for sub in f.type.subs
                             if sub.in_summary]  # fmt: skip
                    lines.append(f"    {i}. " + _short(", ".join(p for p in parts if p)))
                continue
            text = f.type.to_text(value)
            lines.append(f"  {f.question}: {_short(text) if text else f.type.empty}")
    return "\n".join(lines)
