"""Clip analysis against a plain forward, side by side in one run (issue 23), and the bytes
a space-time layer's row inputs would take in the page (float32 / float16).

    python bench/clip_analysis.py [--repeats 5] [--i3d-frames 8] [--i3d-size 224]

analyze_video = decoding (an array here) + per-frame preprocessing + a forward with the
space-time probes + records; plain = the same network's forward on the same prepared
tensor, no hooks. I3D-NL runs with random weights (the timing does not depend on them).
"""
import argparse
import statistics

from common import timed  # noqa: F401  (sets OMP_WAIT_POLICY, the repository on sys.path)

import numpy as np
import torch

import visattn
from visattn import scenes, video, zoo_video
from visattn.preprocess import prepare
from visattn.records_video import SpaceTimeAffinity


def compare(name: str, frames: np.ndarray, repeats: int, **kwargs) -> None:
    net = visattn.open_network(name, pretrained=kwargs.pop("pretrained", True),
                               preprocess=kwargs.get("preprocess"))
    clip = video.load_clip(frames, kwargs.get("sampling") or video.sampling_for(name))
    x = torch.stack([prepare(f, net.preprocess)[0] for f in clip.frames], dim=2)
    with torch.inference_mode():
        net.module(x)  # warm
    plain, full = [], []
    for _ in range(repeats):  # interleaved, so both see the same machine
        with torch.inference_mode():
            plain.append(timed(lambda: net.module(x)))
        full.append(timed(lambda: visattn.analyze_video(frames, net, **kwargs)))
    trace = visattn.analyze_video(frames, net, **kwargs)
    p, f = statistics.median(plain), statistics.median(full)
    print(f"{name}: input {tuple(x.shape)}  plain {p * 1e3:.0f} ms  analyze_video "
          f"{f * 1e3:.0f} ms  ratio {f / p:.2f}")
    for rec in trace.select(SpaceTimeAffinity):
        n = sum(a.size for a in rec.arrays().values())
        print(f"  {rec.key}: grid {rec.grid} keys {rec.key_grid}  row inputs "
              f"{n * 4 / 1e6:.2f} MB float32, {n * 2 / 1e6:.2f} MB float16")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--i3d-frames", type=int, default=8)
    p.add_argument("--i3d-size", type=int, default=224)
    args = p.parse_args()
    torch.set_num_threads(2)
    zoo_video.ensure_cards()
    compare("tiny_nl_clips", scenes.moving_clip(7).frames, args.repeats)
    rng = np.random.default_rng(0)
    frames = (rng.random((2 * args.i3d_frames, 256, 340, 3)) * 255).astype(np.uint8)
    s = args.i3d_size
    compare(zoo_video.I3D_NAME, frames, args.repeats, pretrained=False,
            sampling=video.Sampling(args.i3d_frames, 2),
            preprocess={"size": (s, s), "crop_pct": s / 256 if s == 224 else 0.875})


if __name__ == "__main__":
    main()
