"""VisAttn's speed and memory, each figure a ratio measured side by side in this one run:

  (a) hook overhead: captured forward / plain forward, per network
  (b) full analysis (decode, preprocess, capture, the default rendered panels) / plain forward
  (c) click: affinity row + 768 px overlay + JPEG encode, p50 and p95, and / plain forward
  (d) our full analysis / one Grad-CAM of pytorch-grad-cam on the same model, layer, photo
  (e) bytes a session holds (the Trace) and peak RSS growth of one analysis
  (f) command-line throughput (images/s, process start included) / a plain forward loop

    python bench/performance.py [--reps 7] [--threads 2] [--quick]
"""
import argparse
import io
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from common import ROOT, timed  # noqa: E402  (sets up threads and sys.path first)

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

import visattn  # noqa: E402
from visattn import capture, render, ui, zoo  # noqa: E402
from visattn.preprocess import prepare  # noqa: E402
from visattn.records import Pairwise  # noqa: E402

PHOTO = ROOT / "assets" / "examples" / "chelsea.jpg"
CLASSIFIERS = ["seresnet50", "cbam_resnet50", "bam_resnet50", "ecaresnet50d", "gcresnet50t",
               "skresnet34", "resnest50d", "botnet26t_256", "tiny_cbam", "tiny_nl"]
CLICKABLE = ["botnet26t_256", "tiny_nl", "nonlocal_r50_d8_ade20k"]


def med(fn, reps):
    return statistics.median(timed(fn) for _ in range(reps))


def plain_forward(name):
    model = zoo.load(name, pretrained=zoo.get(name).availability() == "bundled")
    x, _ = prepare(visattn.load_image(PHOTO), zoo.get(name).preprocess)

    def run():
        with torch.inference_mode():
            model(x)
    return model, x, run


def peak_rss_growth_mb(fn) -> float:
    """Peak RSS during fn minus RSS before it (Linux: reset the high-water mark first)."""
    def read(field):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    Path("/proc/self/clear_refs").write_text("5")
    before = read("VmRSS:")
    fn()
    return read("VmHWM:") - before


def section_a_b_e(names, reps):
    print("\n(a) hook overhead, (b) full analysis, (e) memory")
    print(f"{'network':24s} {'plain ms':>9s} {'(a) capt/plain':>15s} {'(b) full/plain':>15s} "
          f"{'trace KB':>9s} {'peak RSS MB':>12s}")
    for name in names:
        pretrained = zoo.get(name).availability() == "bundled"
        model, x, plain = plain_forward(name)
        captured = lambda: capture.run(model, x)  # noqa: E731

        def full():
            ui.run_analysis.__wrapped__(str(PHOTO), name, pretrained=pretrained)  # + the gallery

        plain(), captured(), full()
        p, c, f = [], [], []
        for _ in range(reps):
            p.append(timed(plain))
            c.append(timed(captured))
            f.append(timed(full))
        mp = statistics.median(p)
        trace = visattn.analyze(PHOTO, name, pretrained=pretrained)
        rss = peak_rss_growth_mb(lambda: visattn.analyze(PHOTO, name, pretrained=pretrained))
        print(f"{name:24s} {mp * 1e3:9.1f} {statistics.median(c) / mp:15.3f} "
              f"{statistics.median(f) / mp:15.2f} {trace.nbytes / 1024:9.0f} {rss:12.1f}", flush=True)


def section_c(reps):
    print("\n(c) click: row + 768 px overlay + JPEG encode")
    print(f"{'network:layer':44s} {'grid':>7s} {'p50 ms':>7s} {'p95 ms':>7s} {'/ forward':>10s}")
    for name in CLICKABLE:
        pretrained = zoo.get(name).availability() == "bundled"
        _, _, plain = plain_forward(name)
        fwd = med(plain, max(1, reps // 2))
        trace = visattn.analyze(PHOTO, name, pretrained=pretrained)
        for rec in [r for r in trace if isinstance(r, Pairwise)]:
            n = rec.grid[0] * rec.grid[1]
            costs = []
            for i in np.random.default_rng(0).integers(0, n, 60):
                def click(i=int(i)):
                    img = render.affinity_view(trace, rec, i)
                    Image.fromarray(img).save(io.BytesIO(), "JPEG", quality=90)
                costs.append(timed(click))
            p50, p95 = np.percentile(costs, 50), np.percentile(costs, 95)
            print(f"{(name + ':' + rec.name)[:44]:44s} {rec.grid[0]:3d}x{rec.grid[1]:<3d} "
                  f"{p50 * 1e3:7.1f} {p95 * 1e3:7.1f} {p50 / fwd:10.4f}", flush=True)


def section_d(reps):
    print("\n(d) full analysis / one Grad-CAM (pytorch-grad-cam)")
    try:
        from pytorch_grad_cam import GradCAM
    except ImportError:
        print("pytorch_grad_cam is not installed (pip install -r requirements.txt): skipped")
        return
    for name, layer in [("cbam_resnet50", "features.stage4"), ("seresnet50", "layer4")]:
        model, x, _ = plain_forward(name)
        target = model.get_submodule(layer)
        cam = GradCAM(model=model, target_layers=[target])
        one_cam = lambda: cam(input_tensor=x.clone(), targets=None)  # predicted class; noqa: E731
        ours = lambda: visattn.analyze(PHOTO, name, pretrained=False)  # noqa: E731
        one_cam(), ours()
        g, o = [], []
        for _ in range(reps):
            g.append(timed(one_cam))
            o.append(timed(ours))
        print(f"{name:24s} Grad-CAM {statistics.median(g) * 1e3:7.1f} ms, ours "
              f"{statistics.median(o) * 1e3:7.1f} ms, ratio {statistics.median(o) / statistics.median(g):.2f}")


def section_f(n_images=16):
    print("\n(f) command line vs a plain forward loop")
    name = "tiny_cbam"
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for k in range(n_images):
            p = Path(tmp) / f"p{k}.jpg"
            Image.open(PHOTO).rotate(k * 7).save(p)
            paths.append(str(p))
        model = zoo.load(name)

        def loop():
            for p in paths:
                x, _ = prepare(visattn.load_image(p), zoo.get(name).preprocess)
                with torch.inference_mode():
                    model(x)

        def cli():
            subprocess.run([sys.executable, "-m", "visattn", "analyze", *paths, "--model", name,
                            "--out", str(Path(tmp) / "out"), "--quiet"], check=True,
                           capture_output=True, cwd=ROOT)
        def start():
            subprocess.run([sys.executable, "-c", "import visattn.cli, visattn.export, "
                            "visattn.pipeline; visattn.zoo.load('tiny_cbam')"], check=True, cwd=ROOT)
        loop()
        t_loop, t_cli, t_start = timed(loop), timed(cli), timed(start)
    per_image = (t_cli - t_start) / n_images
    print(f"{name}: plain loop {n_images / t_loop:.1f} images/s; command line {n_images / t_cli:.1f} "
          f"images/s with its {t_start:.1f} s start, {1 / per_image:.1f} images/s after it "
          f"(every map rendered and written); per image: command line / loop = "
          f"{per_image / (t_loop / n_images):.1f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="own models only")
    ap.add_argument("--sections", default="abcdef", help="which of (a)-(f) to run, e.g. 'd'")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, photo {PHOTO.name}; networks "
          "without cached weights run with random weights (same cost)")
    if set("abe") & set(args.sections):
        section_a_b_e(["tiny_cbam", "tiny_nl"] if args.quick else CLASSIFIERS, args.reps)
    if "c" in args.sections:
        section_c(args.reps)
    if "d" in args.sections:
        section_d(args.reps)
    if "f" in args.sections:
        section_f()


if __name__ == "__main__":
    main()
