"""Headless screenshots with Debian's chromium, and how a blank one is recognised: shared by the
documentation site's and the course analytics' page checks."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from PIL import Image

# Phone (a common 390 px wide handset) and desktop widths.
WIDTHS = {"phone": (390, 844), "desktop": (1280, 900)}


def chromium() -> str:
    found = shutil.which("chromium")
    assert found, "Debian's chromium is not installed: run scripts/ensure-chromium.sh"
    return found


def screenshot(url: str, size: tuple[int, int], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    done = subprocess.run(
        [chromium(), "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--window-size={size[0]},{size[1]}", f"--screenshot={out}", url],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "HOME": str(out.parent)},
    )  # fmt: skip
    assert done.returncode == 0 and out.is_file(), done.stderr[-2000:]


def blank_reasons(path: Path, max_share: float = 0.97) -> list[str]:
    """Why a screenshot looks blank (empty list: it shows a page): fewer than 16 colours, or one
    colour covering more than `max_share` of it (a page of text on white needs a higher one)."""
    with Image.open(path) as image:
        rgb = image.convert("RGB")
        colours = rgb.getcolors(maxcolors=1 << 16)
        histogram = sorted(colours or [], reverse=True)
        width, height = rgb.size
    reasons = []
    if colours is not None and len(colours) < 16:
        reasons.append(f"only {len(colours)} colours")
    if histogram and histogram[0][0] > max_share * width * height:
        reasons.append(f"one colour covers more than {max_share:.0%} of it")
    return reasons
