"""roles/mastodon's .env.production, rendered by Ansible's own templar (ansible-core 2.19).

The site scenarios check the deployed file with the example inventory, which gives the database
user a password. What the role writes when there is none (peer authentication on the socket
only, as the former `standin` scenario deployed it) is checked here, on the template itself.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template
from cli_testlib import EXAMPLE_INVENTORY, REPO, trusted

ROLE = REPO / "roles" / "mastodon"


def render_env(**changes: Any) -> list[str]:
    """The lines of .env.production for the example inventory (fake vault values), changed."""
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text(encoding="utf-8"))
    main = (EXAMPLE_INVENTORY / "group_vars" / "all" / "main.yml").read_text(encoding="utf-8")
    fake_vault = {name: f"fake{len(name)}" for name in set(re.findall(r"vault_\w+", main))}
    variables = {
        **defaults,
        **yaml.safe_load(main),
        **fake_vault,
        "ansible_managed": "Ansible managed",
        **changes,
    }
    templar = Templar(loader=DataLoader(), variables=trusted(variables))
    text = (ROLE / "templates" / "env.production.j2").read_text(encoding="utf-8")
    return str(templar.template(trust_as_template(text))).splitlines()


def test_no_database_password_means_no_db_pass_line() -> None:
    lines = render_env(mastodon_db_password="")
    assert "DB_HOST=/var/run/postgresql" in lines
    assert not [line for line in lines if line.startswith("DB_PASS")]
    # The same template with a password writes it, once: the check above can fail.
    with_password = render_env(mastodon_db_password="s3cret-for-the-test")
    assert [x for x in with_password if x.startswith("DB_PASS")] == ["DB_PASS=s3cret-for-the-test"]
