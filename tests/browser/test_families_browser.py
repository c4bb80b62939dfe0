"""Every family of the Families page is one click away, in a real browser."""
import re

import pytest
from playwright.sync_api import expect

from visattn import families, zoo

pytestmark = pytest.mark.browser


def test_each_family_opens_from_the_families_page(server_url, page):
    page.goto(server_url)
    for fam in families.FAMILIES:
        page.get_by_role("tab", name="Families").click()
        slug = fam.name.lower().replace("²", "2").replace("-", "")
        old = page.locator("#summary").inner_text()
        page.locator(f"#family-{slug}").click()
        expect(page.locator("#summary")).not_to_have_text(old, timeout=60_000)
        expect(page.locator("#summary")).to_contain_text(re.compile(r"maps? captured"), timeout=60_000)
        shown = re.match(r"(\S+) on a", page.locator("#summary").inner_text()).group(1)
        assert zoo.get(shown).family in fam.card_families, (fam.name, shown)
        expect(page.locator("#maps img").first).to_be_visible()
