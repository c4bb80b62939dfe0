"""Issue 21, item 7: viewer.html escapes every string that reaches HTML. A network whose
name is an HTML tag with a script in it (a user network's class name) shows as text in
the exported viewer; no script runs."""
import dataclasses

import pytest

import visattn
from visattn import hover

HOSTILE = '<img src=x onerror="window.__pwned=1">'


@pytest.mark.browser
def test_a_hostile_network_name_is_text_in_the_viewer(page):
    trace = visattn.analyze(visattn.load_image(
        __import__("numpy").full((48, 64, 3), 90, "uint8")), "tiny_nl")
    trace = dataclasses.replace(trace, model=HOSTILE + "</script><script>window.__pwned=2</script>")
    doc = hover.viewer_html(trace)
    assert HOSTILE not in doc and "<script>window.__pwned" not in doc
    page.set_content(doc)
    page.wait_for_function("document.querySelector('h1') !== null")
    page.wait_for_timeout(300)  # an onerror would have fired by now
    assert page.evaluate("window.__pwned") is None
    assert HOSTILE in page.title() and HOSTILE in page.inner_text("h1")
