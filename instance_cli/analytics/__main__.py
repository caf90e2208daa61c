"""`python -m instance_cli.analytics run ...`: the analytics command alone (roles/analytics)."""

from instance_cli.analytics.command import analytics

analytics(prog_name="instance-analytics")
