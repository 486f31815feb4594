"""Headless Chromium for the HTML report tests: Debian's ``chromium`` driven by Playwright's Python
package pointed at that system browser (nothing downloaded). One browser per test module."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def launch_or_skip() -> Any:
    """(playwright, browser); skips with the reason when the browser or the package is missing."""
    if not os.path.exists(CHROMIUM):
        pytest.skip("chromium is not installed (scripts/install_system_deps.sh installs Debian's chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright package is not installed (pip install -e '.[dev]')")
    pw = sync_playwright().start()
    try:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
    except Exception:
        pw.stop()
        raise
    return pw, browser


@dataclass
class Opened:
    """A report open in a page, with every dialog and script error the page raised."""

    page: Any
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def rows(self) -> list[str]:
        return self.page.eval_on_selector_all(".span-row .span-name", "els => els.map(e => e.textContent)")

    def row(self, name: str) -> Any:
        return self.page.locator(".span-row", has=self.page.locator(f".span-name:text-is({name!r})")).first

    def detail_value(self, key: str) -> str:
        return self.page.locator(f"#detail table.span-attributes tr[data-key={key!r}] td.value").inner_text()


@contextmanager
def opened(browser: Any, path: Path, *, width: int = 1400, height: int = 1000) -> Iterator[Opened]:
    """Open ``path`` from file:// and wait until the page has drawn itself."""
    page = browser.new_page(viewport={"width": width, "height": height})
    page.set_default_timeout(10_000)  # a missing element fails in seconds, not after 30
    result = Opened(page)

    def on_dialog(dialog: Any) -> None:
        result.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("pageerror", lambda exc: result.errors.append(str(exc)))
    try:
        page.goto(Path(path).resolve().as_uri())
        page.wait_for_selector("body[data-ready='1']", timeout=20_000)
        yield result
    finally:
        page.close()
