"""Screenshots of a report's figures (not a test): what docs/REPORTS.md shows.

    .venv/bin/python tests/report/screenshot.py REPORT.html OUT_DIR [--prefix NAME] [FIGURE ...]

Opens the report in headless Chromium (Debian's `chromium`, through Playwright) at
1100 px wide and saves each figure (default: timeline and sequence) as
OUT_DIR/NAME-FIGURE.png (NAME: report)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright


def main(report: Path, out: Path, figures: list[str], prefix: str = "report") -> None:
    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.goto(report.resolve().as_uri())
            page.wait_for_selector("body[data-rendered]", timeout=300_000)
            for fig in figures:
                page.locator(f"#{fig}").screenshot(path=str(out / f"{prefix}-{fig}.png"))
                print(out / f"{prefix}-{fig}.png")
        finally:
            browser.close()


if __name__ == "__main__":
    rest = sys.argv[3:]
    name = "report"
    if rest[:1] == ["--prefix"]:
        name, rest = rest[1], rest[2:]
    main(Path(sys.argv[1]), Path(sys.argv[2]), rest or ["timeline", "sequence"], name)
