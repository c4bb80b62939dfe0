"""`visattn stats` throughput against a plain batched forward loop over the same images,
same network, batch size, DataLoader workers and device, measured side by side in one
run (rounds interleaved: these machines are noisy). Prints images/s of both and the ratio.

    python bench/stats_throughput.py [--images 2000] [--batch-size 64] [--workers 4]
        [--device cuda] [--models seresnet50 tiny_se] [--rounds 1] [--autocast bf16]
        [--processes 1 2]

--device cuda where no CUDA device is present says so and exits 0. --processes also times
`visattn stats` under torchrun with each process count (gloo on CPU, NCCL on GPUs), whole
command including start-up, next to the same command in one process.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import timed  # noqa: F401  (sets up threads and sys.path first)

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from visattn import folder_stats, zoo  # noqa: E402
from visattn.device import resolve  # noqa: E402
from visattn.folders import batches, image_files  # noqa: E402


def write_images(folder: Path, count: int, side: int = 320) -> None:
    """`count` JPEG photos of smooth random colour fields (decoding costs what a photo's does)."""
    rng = np.random.default_rng(0)
    for i in range(count):
        small = rng.integers(0, 256, (side // 16, side // 16, 3), dtype=np.uint8)
        Image.fromarray(small).resize((side, side), Image.BILINEAR).save(
            folder / f"img_{i:05d}.jpg", quality=90)


def plain(model, files, pre, batch: int, workers: int, device) -> float:
    """Images/s of a bare forward loop: the same DataLoader, no hooks, no statistics."""
    start = time.perf_counter()
    with torch.inference_mode():
        for b in batches(files, pre, batch, workers):
            model(b.x.to(device, non_blocking=True))
    if device.type == "cuda":
        torch.cuda.synchronize()
    return len(files) / (time.perf_counter() - start)


def rss_mb() -> float:
    """This process's resident memory (Linux), MB."""
    status = Path("/proc/self/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS")).split()[1]) / 1024


def stats(model, name, folder, pre, labels, batch: int, workers: int, out: Path) -> float:
    """Images/s of folder_stats.run (what `visattn stats` runs), in a fresh output folder;
    prints the resident memory at each quarter of the run (flat: it keeps sums, not images)."""
    samples, running = [], threading.Event()
    running.set()

    def sample() -> None:
        while running.is_set():
            samples.append(rss_mb())
            time.sleep(0.2)
    sampler = threading.Thread(target=sample, daemon=True)
    start = time.perf_counter()
    sampler.start()
    job = folder_stats.FolderStats(folder, out, model, name, pre, labels, "predicted", batch,
                                   workers, checkpoint_s=1e9, quiet=True)
    done = folder_stats.run(job).images
    elapsed = time.perf_counter() - start
    running.clear()
    sampler.join()
    quarters = [samples[min(len(samples) - 1, len(samples) * q // 4)] for q in (1, 2, 3, 4)]
    print(f"    resident memory at each quarter of the stats run: "
          f"{' / '.join(f'{m:.0f}' for m in quarters)} MB")
    return done / elapsed


def launched(name: str, folder: Path, out: Path, processes: int, batch: int, workers: int,
             device, autocast) -> float:
    """Images/s of the whole `visattn stats` command (start-up included) in `processes`
    processes (torchrun when more than one)."""
    args = ["-m", "visattn", "stats", str(folder), "--model", name, "--out", str(out), "--quiet",
            "--batch-size", str(batch), "--workers", str(workers), "--device", device.type]
    if autocast:
        args += ["--autocast", autocast]
    if processes > 1:
        args = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}", *args]
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(root), OMP_NUM_THREADS=str(max(1, (os.cpu_count() or 1) // processes)))
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], cwd=root, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return len(image_files(folder)) / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--device", default=None)
    ap.add_argument("--models", nargs="*", default=["seresnet50", "tiny_se"])
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--autocast", choices=["bf16", "fp16"], help="autocast for both loops")
    ap.add_argument("--processes", type=int, nargs="*", default=[],
                    help="also time the stats command in this many processes (torchrun)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if (args.device or "").startswith("cuda") and not torch.cuda.is_available():
        print(f"no CUDA device on this machine (torch {torch.__version__}); nothing measured. "
              "Run this on a CUDA machine, or with --device cpu.")
        return
    device = resolve(args.device)
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "no GPU"
    print(f"torch {torch.__version__}, device {device} ({gpu}), {torch.get_num_threads()} "
          f"threads, {os.cpu_count()} CPUs, {args.images} images, batch {args.batch_size}, "
          f"{args.workers} workers, {args.rounds} round(s)"
          f"{', autocast ' + args.autocast if args.autocast else ''}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "images"
        folder.mkdir()
        write_images(folder, args.images)
        files = image_files(folder)
        for name in args.models:
            card = zoo.get(name)
            model = zoo.build(card, pretrained=card.availability() == "bundled").to(device)
            pre = card.preprocess
            plain(model, files[:2 * args.batch_size], pre, args.batch_size, 0, device)  # warm-up
            rates = []
            dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(args.autocast, torch.float32)
            precision = torch.autocast(device.type, dtype, enabled=bool(args.autocast))
            for r in range(args.rounds):
                with precision:
                    p = plain(model, files, pre, args.batch_size, args.workers, device)
                    s = stats(model, name, folder, pre, card.class_names, args.batch_size,
                              args.workers, Path(tmp) / f"out_{name}_{r}")
                rates.append((p, s))
                print(f"  {name:12s} round {r + 1}: plain {p:8.1f} images/s, stats {s:8.1f} "
                      f"images/s, ratio {s / p:.3f}")
            ratio = float(np.median([s / p for p, s in rates]))
            print(f"{name:12s} stats / plain batched forward = {ratio:.3f} (median of "
                  f"{args.rounds}; device {device})")
            for n in args.processes:
                rate = launched(name, folder, Path(tmp) / f"cmd_{name}_{n}", n, args.batch_size,
                                args.workers, device, args.autocast)
                print(f"  {name:12s} visattn stats command, {n} process(es): {rate:8.1f} images/s "
                      f"(start-up included)")


if __name__ == "__main__":
    main()
