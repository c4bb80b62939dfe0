import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ helpers

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, tmp_path):
    ctx = browser.new_context(viewport={"width": 1280, "height": 1000})
    external = []

    def route(r):
        if r.request.url.startswith(("http://127.0.0.1", "http://localhost", "data:", "blob:")):
            return r.continue_()
        external.append(r.request.url)
        return r.abort()

    ctx.route("**/*", route)
    pg = ctx.new_page()
    yield pg
    ctx.close()
    assert not external, f"the page tried to reach the internet: {external[:3]}"


@pytest.fixture
def artifacts():
    d = os.environ.get("VISATTN_ARTIFACTS", "out/browser")
    os.makedirs(d, exist_ok=True)
    return d
