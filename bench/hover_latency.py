"""The hover view's latency in headless Chromium, next to the server round trips, in one run:

  pointer move -> row drawn   measured in the page: the move event's timeStamp to the end of
                              the animation frame that drew its row (performance.now()), for
                              moves across different cells (every move computes a new row)
  pin (click -> server)       measured in the page: the click's timeStamp to the pinned-queries
                              panel changing (a queue round trip with the server's numbers)
  /affinity (server image)    gradio_client call: row + 768 px overlay + PNG, the old click path
  payload                     bytes sent per layer, when the layer is opened (JSON, base64 arrays)

and the views of issue 23, pointer move -> every row of the view drawn (the same measure):
  across time                 a clip's frames with the row of the pointed position on each:
                              tiny_nl_clips (4 frames), I3D-NL at 8 and 32 sampled frames
  all layers                  #nl-all, one canvas per layer and head: BoTNet's 3 x 4 heads
                              (+ 3 means), I3D-NL's 5 blocks (strips across time) at 8 and 32
measured in viewer.html (the page's own HoverView, payload at the app's precision), since
the app samples I3D's own 32 frames only.

    python bench/hover_latency.py [--moves 60] [--quick] [--views-only]

Networks: tiny_nl (bundled weights), BoTNet and the ADE20K Non-local, DANet and CCNet networks
(random weights: same cost) at processing sizes 256 and 512. Writes bench/hover_latency.txt.
"""
import argparse
import dataclasses
import json
import os
import re
import tempfile
import time
from pathlib import Path

from common import free_port  # noqa: E402  (threads and sys.path first)

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from visattn import hover, scenes, video, zoo  # noqa: E402
from visattn.pipeline import analyze, analyze_video  # noqa: E402
from visattn.records import Pairwise  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]
RUNS = [("tiny_nl", True, None), ("botnet26t_256", False, None),
        ("nonlocal_r50_d8_ade20k", False, 256), ("nonlocal_r50_d8_ade20k", False, 512),
        ("danet_r50_d8_ade20k", False, 256), ("danet_r50_d8_ade20k", False, 512),
        ("ccnet_r50_d8_ade20k", False, 256), ("ccnet_r50_d8_ade20k", False, 512)]

PIN_TIMER = """() => { const c = document.querySelector('#nl-hover canvas');
  const info = document.querySelector('#nl-info');
  window.__pin = {t0: null, dt: null};
  c.addEventListener('click', e => { window.__pin.t0 = e.timeStamp; window.__pin.text = info.innerText; }, {capture: true});
  new MutationObserver(() => { const p = window.__pin;
    if (p.t0 !== null && p.dt === null && info.innerText !== p.text && /Pinned/.test(info.innerText))
      p.dt = performance.now() - p.t0; }).observe(info, {subtree: true, childList: true, characterData: true}); }"""


I3D = "i3d_nl_r50_kinetics400"
VIEWS = [("across time", "tiny_nl_clips", None), ("across time", I3D, 8), ("across time", I3D, 32),
         ("all layers", "botnet26t_256", None), ("all layers", I3D, 8), ("all layers", I3D, 32)]
GOALS = (16.0, 33.0)  # issue 23: p50 and p95 in ms


def pct(values, q):
    return float(np.percentile(values, q)) if values else float("nan")


def photo(tmp: Path) -> Path:
    """A 640 x 480 photo-like test image (smooth gradients + texture)."""
    rng = np.random.default_rng(0)
    img = np.cumsum(rng.integers(0, 4, (480, 640, 3)), axis=1).clip(0, 255).astype(np.uint8)
    path = tmp / "photo.png"
    Image.fromarray(img).save(path)
    return path


def analyse(page, url, path, model, pretrained, size):
    """What a user does: upload the photo, pick the network (and its processing size), press
    Analyse; then open the Non-local tab and wait for its first row."""
    from playwright.sync_api import expect
    card = zoo.get(model)
    page.goto(url)
    page.locator("#photo input[type=file]").set_input_files(str(path))
    page.locator("#model input").click()
    page.get_by_role("option", name=f"{card.family} · {model} —").click()
    if not pretrained:
        page.locator("#pretrained input").uncheck()
    if card.task == "segment":
        page.locator("#seg-size label").filter(has_text=re.compile(rf"^\s*{size or 256}")).first.click()
    page.locator("#analyse").click()
    expect(page.locator("#summary")).to_contain_text(re.compile(r"maps? captured"), timeout=120_000)
    page.get_by_role("tab", name="Non-local").click()
    page.wait_for_function("() => window.visattn && window.visattn.lastRow", timeout=120_000)


def hover_latencies(page, layer, moves):
    """Move across `moves` different cells, one at a time; the page's own latencies."""
    page.locator("#nl-hover .va-layer").select_option(layer)  # its inputs come when opened
    page.wait_for_function("k => window.visattn.pending.length === 0 && window.visattn.lastRow"
                           " && window.visattn.lastRow.layer === k", arg=layer, timeout=60_000)
    return moved_latencies(page, "#nl-hover canvas", moves, "drawn",
                           np.random.default_rng(1).uniform(0.05, 0.95, (moves, 2)))


def moved_latencies(page, canvas: str, moves: int, counter: str, at) -> list:
    """Move the pointer to each fraction (fx, fy) of `canvas` in `at`, one at a time, each
    time waiting for window.visattn[counter] to count the view drawn; the page's latencies."""
    canvas = page.locator(canvas)
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    page.evaluate("window.visattn.view.latencies = []")
    for fx, fy in at:
        before = page.evaluate(f"window.visattn.{counter}")
        page.mouse.move(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
        page.wait_for_function(f"n => window.visattn.{counter} > n", arg=before)
        page.wait_for_timeout(20)
    return page.evaluate("window.visattn.view.latencies")


def pin_round_trip(page, reps):
    page.evaluate(PIN_TIMER)
    canvas = page.locator("#nl-hover canvas")
    box = canvas.bounding_box()
    out = []
    for k in range(reps):
        page.evaluate("window.__pin.t0 = null; window.__pin.dt = null")
        page.mouse.click(box["x"] + (0.2 + 0.6 * k / reps) * box["width"], box["y"] + 0.5 * box["height"])
        page.wait_for_function("() => window.__pin.dt !== null", timeout=30_000)
        out.append(page.evaluate("window.__pin.dt"))
    return out


def server_image(client, layer, reps):
    out = []
    for k in range(reps):
        start = time.perf_counter()
        client.predict(layer, "", 100 + 20 * k, 200, 0.5, "jet", api_name="/affinity")
        out.append((time.perf_counter() - start) * 1000)
    return out


def view_trace(model, frames, path):
    """The analysis a view shows: a generated clip (I3D-NL sampling `frames` of it, random
    weights) or the bench photo."""
    if model == "tiny_nl_clips":
        return analyze_video(scenes.moving_clip(7).frames, model)
    if model == I3D:
        clip = np.concatenate([scenes.moving_clip(seed, frames=8).frames for seed in range(frames // 8)])
        return analyze_video(clip, model, pretrained=False, sampling=video.Sampling(frames, 1))
    return analyze(path, model, pretrained=False)


def view_latencies(page, view, moves):
    """Pointer moves across the frames (or the photo) of a viewer.html; the page's own
    latencies, pointer event -> every row of the view drawn."""
    page.wait_for_function("() => window.visattn && window.visattn.lastRow", timeout=120_000)
    counter = "drawn"
    if view == "all layers":
        page.locator(".va-all-on").check()
        page.wait_for_function("() => window.visattn.lastRows && window.visattn.lastRows.every(r => r.row)")
        counter = "drawnAll"
    return moved_latencies(page, ".va-canvas", moves, counter,
                           np.random.default_rng(2).uniform(0.02, 0.98, (moves, 2)))


APP_VIEWS = [("across time", "tiny_nl_clips"), ("across time", I3D), ("all layers", "botnet26t_256"),
             ("all layers", I3D)]


def clip_file(tmp, frames: int) -> Path:
    """A generated clip (scenes.moving_clip, 8 frames per seed) as a VP8 webm the page takes."""
    import cv2
    video = np.concatenate([scenes.moving_clip(seed, frames=8).frames for seed in range(frames // 8)])
    out = Path(tmp) / f"clip{frames}.webm"
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"VP80"), 8, video.shape[2:0:-1])
    for frame in video:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return out


def analyse_clip(page, url, clip, model):
    """What a user does with a clip: give it, pick the clip network (random weights where
    the pretrained ones cannot be had), Analyse, open the Non-local tab."""
    from playwright.sync_api import expect
    page.goto(url)
    page.locator("#clip input[type=file]").set_input_files(str(clip))
    expect(page.locator("#model input")).to_have_value(re.compile("tiny_nl_clips"), timeout=30_000)
    if model != "tiny_nl_clips":
        page.locator("#model input").click()
        page.get_by_role("option", name=re.compile(rf"· {model} —")).click()
        if page.locator("#pretrained input").is_visible():
            page.locator("#pretrained input").uncheck()
    page.locator("#analyse").click()
    expect(page.locator("#summary")).to_contain_text("frames of this clip", timeout=300_000)
    page.get_by_role("tab", name="Non-local").click()


def app_views_table(browser, url, path, tmp, moves) -> list[str]:
    """The same views in the app's page (Gradio around it): the clip networks as the app
    samples them (I3D-NL: its own 32 frames), BoTNet's photo."""
    lines = [f"the same views in the app's page, {moves} moves each"]
    for view, model in APP_VIEWS:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        if model == "botnet26t_256":
            analyse(page, url, path, model, False, None)
        else:
            analyse_clip(page, url, clip_file(tmp, 32 if model == I3D else 8), model)
        lat = view_latencies(page, view, moves)
        frames = page.evaluate("window.visattn.view.clip ? window.visattn.view.clip.F : 1")
        canvases = page.evaluate("document.querySelectorAll('#nl-all canvas').length") \
            if view == "all layers" else frames
        page.close()
        lines.append(view_line(view, model, frames, canvases, f"{'':>10s}", lat))
    return lines


def view_line(view: str, model: str, frames: int, canvases: int, size: str, lat) -> str:
    """One row of a views table, printed as it is made: p50, p95 and the goal."""
    p50, p95 = pct(lat, 50), pct(lat, 95)
    ok = "ok" if p50 <= GOALS[0] and p95 <= GOALS[1] else "OVER"
    line = f"{view:12s} {model:24s} {frames:>6d} {canvases:>8d} {size} {p50:5.1f}ms {p95:5.1f}ms  {ok}"
    print(line, flush=True)
    return line


def views_table(browser, path, tmp, moves) -> list[str]:
    lines = [f"views of issue 23 in viewer.html, headless Chromium, {moves} moves each; goal p50 <= "
             f"{GOALS[0]:.0f} ms, p95 <= {GOALS[1]:.0f} ms",
             f"{'view':12s} {'network':24s} {'frames':>6s} {'canvases':>8s} {'layer max':>10s} "
             f"{'p50':>7s} {'p95':>7s}  goal"]
    for view, model, frames in VIEWS:
        trace = view_trace(model, frames, path)
        keys = [r.key for r in trace if isinstance(r, Pairwise)]
        sizes = [len(json.dumps(layer)) for layer in hover.layer_inputs(trace, keys, "b")["layers"]]
        page_file = Path(tmp) / f"{model}_{frames}.html"
        page_file.write_text(hover.viewer_html(trace, max_float32_bytes=hover.MAX_FLOAT32_BYTES))
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(page_file.as_uri())
        lat = view_latencies(page, view, moves)
        canvases = page.evaluate("document.querySelectorAll('#nl-all canvas').length") \
            if view == "all layers" else (len(trace.clip.frames) if trace.clip is not None else 1)
        page.close()
        lines.append(view_line(view, model, frames or len(getattr(trace.clip, "frames", [0])),
                               canvases, f"{max(sizes) / 1e6:8.2f}MB", lat))
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=60)
    parser.add_argument("--quick", action="store_true", help="256 px only, 20 moves")
    parser.add_argument("--views-only", action="store_true", help="the issue 23 views only")
    args = parser.parse_args()
    runs = [r for r in RUNS if not (args.quick and r[2] == 512)]
    moves = 20 if args.quick else args.moves
    from gradio_client import Client, handle_file
    from playwright.sync_api import sync_playwright
    from visattn.ui import LAUNCH_OPTIONS, build
    demo = build()
    demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True,
                quiet=True, **LAUNCH_OPTIONS)
    url = demo.local_url.rstrip("/")
    lines = [f"hover latency, headless Chromium ({CHROMIUM}), 2 vCPU; photo 640x480; "
             f"{moves} moves per layer",
             f"{'network (size)':34s} {'layer':44s} {'grid':>7s} {'payload':>9s} {'prec':>7s} "
             f"{'hover p50':>9s} {'p95':>6s} {'pin p50':>8s} {'/affinity p50':>13s}"]
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw:
        path = photo(Path(tmp))
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        views = views_table(browser, path, tmp, moves) + app_views_table(browser, url, path, tmp, moves)
        for model, pretrained, size in ([] if args.views_only else runs):
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            analyse(page, url, path, model, pretrained, size)
            card = zoo.get(model)
            pre = dataclasses.replace(card.preprocess, size=(size, 4 * size)) if size else None
            trace = analyze(path, model, pretrained=pretrained, preprocess=pre)
            payload = {l["key"]: l for l in hover.payload(trace)["layers"]}
            client = Client(url, verbose=False, analytics_enabled=False, download_files=tmp)
            client.predict(handle_file(str(path)), model, pretrained, size or 384, api_name="/analyze")
            keys = page.evaluate("Array.from(document.querySelectorAll('#nl-hover .va-layer option'), o => o.value)")
            pins = pin_round_trip(page, 5)
            for key in keys:
                lat = hover_latencies(page, key, moves)
                srv = server_image(client, key, 5)
                layer = payload[key]
                nbytes = len(json.dumps(layer))
                if layer["kind"] == "twohop":
                    nbytes = 0  # made of its two hops, sent with them
                name = f"{model}" + (f" ({size})" if size else "")
                lines.append(f"{name:34s} {key[-44:]:44s} {'x'.join(map(str, layer['grid'])):>7s} "
                             f"{nbytes / 1e6:7.2f}MB {layer.get('precision', '-'):>7s} "
                             f"{pct(lat, 50):7.1f}ms {pct(lat, 95):4.1f}ms {pct(pins, 50):6.0f}ms "
                             f"{pct(srv, 50):11.0f}ms")
                print(lines[-1], flush=True)
            page.close()
        browser.close()
    demo.close()
    out = Path(__file__).with_suffix(".txt")
    out.write_text("\n".join(([] if args.views_only else lines + [""]) + views) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
