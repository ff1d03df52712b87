"""The README's pictures: every page the browser test photographs is in docs/screenshots/ in
both languages and linked from the README, and the README links no picture that is missing."""

from __future__ import annotations

import re

from tests.conftest import ROOT
from tests.test_customer_pages_browser import SCREENSHOT_PAGES

LANGUAGES = ("en", "de")


def test_every_screenshot_is_there_and_linked():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    linked = set(re.findall(r"\]\((docs/screenshots/[^)]+\.png)\)", readme))
    expected = {
        f"docs/screenshots/{page}-{language}.png"
        for page in SCREENSHOT_PAGES
        for language in LANGUAGES
    }
    assert linked == expected
    assert [path for path in sorted(linked) if not (ROOT / path).is_file()] == []
