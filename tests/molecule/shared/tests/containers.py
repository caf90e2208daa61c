"""Running a script inside a test container, for every scenario's tests. Imported by path:
scenarios put this directory on sys.path."""

from __future__ import annotations

import subprocess


def docker_exec(
    container: str, script: str, timeout: float = 120, check: bool = False
) -> subprocess.CompletedProcess[str]:
    """`bash -c script` (with pipefail) inside the container, bounded by `timeout` seconds.

    With `check`, a non-zero exit fails the calling test with the script and its last output.
    """
    proc = subprocess.run(
        ["docker", "exec", container, "bash", "-c", f"set -o pipefail; {script}"],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check:
        assert proc.returncode == 0, (
            f"{container}: {script}\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}"
        )
    return proc
