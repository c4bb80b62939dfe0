"""Every family of the Families page is one click away, in a real browser."""
import re

import pytest
from playwright.sync_api import expect

from visattn import families, zoo

pytestmark = pytest.mark.browser
IN_VIEW = """() => { const r = document.querySelector('#nl-hover canvas').getBoundingClientRect();
    return r.top >= 0 && r.bottom <= innerHeight; }"""
POINTABLE = {"Non-local", "A²-Nets", "CCNet"}  # families whose examples have pairwise rows


def test_each_family_opens_from_the_families_page(server_url, page):
    page.goto(server_url)
    for fam in families.FAMILIES:
        page.get_by_role("tab", name="Families").click()
        slug = fam.name.lower().replace("²", "2").replace("-", "")
        network, _ = families.example(fam)
        assert zoo.get(network).family in fam.card_families
        page.locator(f"#family-{slug}").click()
        expect(page.locator("#summary")).to_contain_text(
            re.compile(rf"{re.escape(network)} on (a \d+×\d+ image|4 frames of a \d+×\d+ clip): "
                       rf"\d+ maps? captured"),
            timeout=60_000)
        expect(page.locator("#model input")).to_have_value(re.compile(rf" · {re.escape(network)} —"))
        if fam.name == "Non-local":  # a generated clip, shown in the clip input
            expect(page.locator("#clip video")).to_have_count(1)
        if fam.name in POINTABLE:  # the family's own view: the hover view
            expect(page.get_by_role("tab", name="Non-local")).to_have_attribute("aria-selected", "true")
            expect(page.locator("#nl-hover canvas").first).to_be_visible(timeout=30_000)
            page.wait_for_function(IN_VIEW, timeout=10_000)  # brought into the viewport
        else:
            expect(page.locator("#maps img").first).to_be_visible()
