"""Access tokens for the site tests, made the way roles/instance_settings makes its own."""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path
from typing import Any

REPO = Path(os.environ.get("SITE_REPO_ROOT", Path(__file__).resolve().parents[4]))
TOKEN_RB = REPO / "roles" / "instance_settings" / "files" / "token.rb"
LIVE = "/home/mastodon/live"


def role_token(host: Any, owner: str, app_name: str, scopes: str) -> str:
    """A token of `owner` with exactly `scopes`, from the role's files/token.rb.

    token.rb finds or creates the OAuth application `app_name` and the owner's token with these
    scopes through the deployed app's `bin/rails runner`, as tasks/token.yml runs it (JSON on
    stdin, `INSTANCE_SETTINGS_RESULT {...}` on stdout). The token is never put in an assertion
    message.
    """
    script = "/tmp/site-test-token.rb"
    body = TOKEN_RB.read_text()
    copy = f"cat > {script} <<'SITE_TOKEN_RB'\n{body}SITE_TOKEN_RB\nchmod 0644 {script}"
    assert host.run(copy).rc == 0
    data = json.dumps({"dry_run": False, "owner": owner, "app_name": app_name, "scopes": scopes})
    out = host.run(
        f"cd {LIVE} && echo {shlex.quote(data)} | runuser -u mastodon --"
        f" env RAILS_ENV=production bin/rails runner {script}"
    )
    assert out.rc == 0, f"token.rb failed (exit {out.rc})"
    line = next(x for x in out.stdout.splitlines() if x.startswith("INSTANCE_SETTINGS_RESULT "))
    token = json.loads(line.split(" ", 1)[1])["token"]
    assert isinstance(token, str) and token, "token.rb returned no token"
    return token
