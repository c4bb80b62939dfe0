"""Analyse -> summary and the open tab drawn, in headless Chromium, against the library's own
analysis of the same photo (issue 20, "Speed the visitor feels"):

  page      the Analyse click's timeStamp to the later of: the summary showing the new
            analysis, and the open view drawn (the hover canvas' first row, or the Overview's
            first map loaded) (window.visattnPage.shown); median of --reps runs
  library   visattn.analyze(photo, network) in the server's process, warm, median of --reps
  ratio     page / library; target: page <= 1.5 x library + 250 ms
  best      the fastest page run (what a quiet machine gives; the median is the result)
  load      the machine's 1-minute load average when the network's runs ended (2 cores)

    python bench/page_speed.py [--reps 3] [--only NAME,...] [--photos examples|noise] [--out FILE]

Every ImageNet network (random weights when they are not cached: this machine may have no
network) and every bundled one. Photos: the example photos (assets/examples/*.jpg, each cut
to 640x480, a different one per run), or uniform noise at 640x480 (`--photos noise`: the
worst case for the photo the hover view is sent, which PNG cannot compress). Prints one
line per network and writes bench/page_speed.txt (or --out).
"""
import argparse
import os
import re
import statistics
import tempfile
import time
from pathlib import Path

from common import free_port  # noqa: E402  (threads and sys.path first)

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from visattn import zoo  # noqa: E402
from visattn.pipeline import analyze  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]
START = """() => { window.__t = {}; const s = document.querySelector('#summary');
  document.querySelector('#analyse').addEventListener('click', e => { window.__t.t0 = e.timeStamp; },
                                                      {once: true, capture: true});
  new MutationObserver(() => { const t = window.__t;
    if (!/captured/.test(s.textContent)) t.cleared = true;
    else if (t.cleared && !t.summary) t.summary = performance.now(); })
    .observe(s, {subtree: true, childList: true, characterData: true}); }"""


def make_photos(kind: str, count: int, folder: Path) -> list[Path]:
    """`count` different 640x480 photos: the examples (mirrored after the first round) or
    noise."""
    from PIL import ImageOps
    from visattn.ui.inputs import EXAMPLES
    real = [p for p in EXAMPLES if p.suffix == ".jpg"]
    photos = []
    for k in range(count):
        if kind == "noise":
            path = folder / f"photo{k}.png"
            Image.fromarray(np.random.default_rng(k).integers(0, 256, (480, 640, 3), dtype=np.uint8)).save(path)
        else:
            path = folder / f"photo{k}.jpg"
            img = ImageOps.fit(Image.open(real[k % len(real)]).convert("RGB"), (640, 480))
            (ImageOps.mirror(img) if (k // len(real)) % 2 else img).save(path, quality=92)
        photos.append(path)
    return photos


def networks(only):
    cards = [c for c in zoo.cards() if c.task == "classify" or c.availability() == "bundled"]
    return [c for c in cards if not only or c.name in only]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--only", default="")
    ap.add_argument("--photos", choices=["examples", "noise"], default="examples")
    ap.add_argument("--out", default=str(Path(__file__).with_suffix(".txt")))
    args = ap.parse_args()
    only = set(filter(None, args.only.split(",")))
    tmp = Path(tempfile.mkdtemp(prefix="page_speed_"))
    # a new photo per run (the first warms up): the page draws every analysis anew
    photos = make_photos(args.photos, args.reps + 1, tmp)

    from visattn.ui import LAUNCH_OPTIONS, build
    from visattn.ui.inputs import uses_pretrained
    demo = build()
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                **LAUNCH_OPTIONS)
    url = f"http://127.0.0.1:{port}"
    from playwright.sync_api import expect, sync_playwright
    lines = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(url)
        for card in networks(only):
            pretrained = uses_pretrained(card.name, True) and card.availability() in ("bundled", "cached")
            lib = []
            for k, path in enumerate(photos):  # the first run warms the network up
                start = time.perf_counter()
                analyze(str(path), card.name, pretrained=pretrained)
                if k:
                    lib.append(time.perf_counter() - start)
            page.locator("#model input").click()
            page.get_by_role("option", name=re.compile(rf"· {re.escape(card.name)} —")).click()
            box = page.locator("#pretrained input")
            if box.is_visible() and not pretrained:
                box.uncheck()
            times = []
            for k, path in enumerate(photos):
                page.locator("#photo input[type=file]").set_input_files(str(path))
                page.wait_for_timeout(300)  # the upload settles
                page.evaluate(START)
                page.locator("#analyse").click()
                page.wait_for_function("() => window.__t.summary && window.visattnPage.shown",
                                       timeout=60_000, polling=50)  # not every frame: a
                # visitor's page does not poll (the times are taken in the page, not here)
                expect(page.locator("#summary")).to_contain_text(f"{card.name} on a")  # this one's
                t = page.evaluate("({t0: window.__t.t0, s: window.__t.summary, v: window.visattnPage.shown})")
                page.wait_for_function("() => !window.visattnPage.holding", polling=50)  # the other tabs too
                if k:
                    times.append(max(t["s"], t["v"]["at"]) - t["t0"])
                tab = t["v"]["tab"]
            page_ms, lib_ms = statistics.median(times), 1000 * statistics.median(lib)
            target = 1.5 * lib_ms + 250
            line = (f"{card.name:24s} {'pretrained' if pretrained else 'random':10s} tab {tab:8s} "
                    f"library {lib_ms:7.0f} ms  page {page_ms:7.0f} ms  ratio {page_ms / lib_ms:5.1f}  "
                    f"target {target:6.0f} ms  {'ok' if page_ms <= target else 'OVER':4s}  "
                    f"best {min(times):5.0f} ms  load {os.getloadavg()[0]:4.1f}")
            print(line, flush=True)
            lines.append(line)
        browser.close()
    demo.close()
    Path(args.out).write_text(f"photos: {args.photos}, median of {args.reps} runs\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
