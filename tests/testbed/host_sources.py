#!/usr/bin/env python3
"""Read the HOST's Debian apt sources and re-target them at another release.

The test-bed images must use exactly the archive the host uses (a local mirror,
a proxy, a snapshot), and no mirror address may be written into the repository.
So this helper reads /etc/apt/sources.list and /etc/apt/sources.list.d/*.list
and *.sources, keeps only the entries of the host's own Debian release (suites
`<codename>` and `<codename>-<pocket>`; third-party repositories are dropped) and
prints, for a target codename:

  mirror   the URI of the main archive entry (what debootstrap needs)
  sources  a deb822 `debian.sources` file with every suite renamed to the target
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Entry:
    types: list[str]
    uris: list[str]
    suites: list[str]
    components: list[str]
    options: dict[str, str] = field(default_factory=dict)


def host_codename(os_release: Path) -> str:
    for line in os_release.read_text(encoding="utf-8").splitlines():
        key, _, value = line.partition("=")
        if key == "VERSION_CODENAME":
            return value.strip().strip('"')
    raise SystemExit(f"no VERSION_CODENAME in {os_release}")


def parse_one_line(text: str) -> list[Entry]:
    entries = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        options: dict[str, str] = {}
        match = re.match(r"^(deb(?:-src)?)\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)\s*(.*)$", line)
        if not match:
            continue
        kind, opts, uri, suite, comps = match.groups()
        for opt in (opts or "").split():
            key, _, value = opt.partition("=")
            options[{"signed-by": "Signed-By"}.get(key, key)] = value
        entries.append(Entry([kind], [uri], [suite], comps.split(), options))
    return entries


def parse_deb822(text: str) -> list[Entry]:
    entries = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        last = None
        for raw in stanza.splitlines():
            if raw.startswith("#"):
                continue
            if raw[:1].isspace() and last:
                fields[last] += "\n" + raw.strip()
                continue
            key, sep, value = raw.partition(":")
            if sep:
                last = key.strip()
                fields[last] = value.strip()
        if not fields or fields.get("Enabled", "yes").lower() == "no":
            continue
        if not {"Types", "URIs", "Suites"} <= fields.keys():
            continue
        options = {
            k: v
            for k, v in fields.items()
            if k not in {"Types", "URIs", "Suites", "Components", "Enabled"}
        }
        entries.append(
            Entry(
                fields["Types"].split(),
                fields["URIs"].split(),
                fields["Suites"].split(),
                fields.get("Components", "").split(),
                options,
            )
        )
    return entries


def host_entries(apt_dir: Path) -> list[Entry]:
    entries: list[Entry] = []
    main_list = apt_dir / "sources.list"
    if main_list.is_file():
        entries += parse_one_line(main_list.read_text(encoding="utf-8"))
    parts = apt_dir / "sources.list.d"
    for path in sorted(parts.glob("*.list")) if parts.is_dir() else []:
        entries += parse_one_line(path.read_text(encoding="utf-8"))
    for path in sorted(parts.glob("*.sources")) if parts.is_dir() else []:
        entries += parse_deb822(path.read_text(encoding="utf-8"))
    return entries


def release_entries(entries: list[Entry], codename: str) -> list[Entry]:
    """Keep binary entries whose every suite belongs to the host's release."""
    pattern = re.compile(rf"^{re.escape(codename)}(?:[-/][a-z]+)?$")
    kept = []
    for entry in entries:
        if "deb" not in entry.types:
            continue
        if entry.suites and all(pattern.match(s) for s in entry.suites):
            kept.append(Entry(["deb"], entry.uris, entry.suites, entry.components, entry.options))
    return kept


def retarget(entries: list[Entry], source: str, target: str) -> list[Entry]:
    def rename(suite: str) -> str:
        return target + suite[len(source) :]

    return [
        Entry(e.types, e.uris, [rename(s) for s in e.suites], e.components, e.options)
        for e in entries
    ]


def render(entries: list[Entry]) -> str:
    stanzas = []
    for entry in entries:
        lines = [
            f"Types: {' '.join(entry.types)}",
            f"URIs: {' '.join(entry.uris)}",
            f"Suites: {' '.join(entry.suites)}",
            f"Components: {' '.join(entry.components)}",
        ]
        lines += [f"{k}: {v}" for k, v in entry.options.items()]
        stanzas.append("\n".join(lines))
    return "\n\n".join(stanzas) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["mirror", "sources"])
    parser.add_argument("target", help="target codename, e.g. bookworm or trixie")
    parser.add_argument("--apt-dir", type=Path, default=Path("/etc/apt"))
    parser.add_argument("--os-release", type=Path, default=Path("/etc/os-release"))
    args = parser.parse_args()

    codename = host_codename(args.os_release)
    entries = retarget(release_entries(host_entries(args.apt_dir), codename), codename, args.target)
    if not entries:
        print(f"no apt source for the host release {codename!r} found", file=sys.stderr)
        return 1
    if args.what == "mirror":
        for entry in entries:
            if args.target in entry.suites:
                print(entry.uris[0])
                return 0
        print(f"no main archive entry (suite {args.target!r}) in the host sources", file=sys.stderr)
        return 1
    sys.stdout.write(render(entries))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
