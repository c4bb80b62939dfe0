"""The Overview's maps as JPEG files Gradio serves as they are (ui.maps)."""
import os
import time

import numpy as np
from gradio.utils import is_static_file
from PIL import Image

import visattn
from visattn import render
from visattn.ui import maps
from visattn.ui.inputs import EXAMPLES



def test_maps_are_the_gallery_pictures_in_rgb_served_as_static_files():
    trace = visattn.analyze(str(EXAMPLES[-1]), "tiny_cbam")  # smooth: JPEG keeps it close
    want = render.gallery(trace, alpha=0.4, cmap="viridis")
    got = maps.gallery_files(trace, alpha=0.4, cmap="viridis")
    assert [c for _, c in got] == [c for _, c in want] and len(got) == 10
    as_rgb = as_bgr = 0.0
    for (path, _), (rgb, _) in zip(got, want):
        assert os.path.dirname(path) == str(maps.FOLDER) and is_static_file(path)
        back = np.asarray(Image.open(path).convert("RGB")).astype(int)
        assert back.shape == rgb.shape
        as_rgb += np.abs(back - rgb).mean()
        as_bgr += np.abs(back[..., ::-1] - rgb).mean()
        assert np.abs(back - rgb).mean() < 10  # JPEG at 90 on sharp coloured edges: up to ~7
    assert as_bgr > 3 * as_rgb  # the colours are where they were (no BGR swap)


def test_the_maps_folder_is_the_first_static_path_gradio_tries(tmp_path):
    """Gradio checks each file of each answer against its static paths in order (resolving
    both): the maps' folder goes first, before the icons `import gradio` registers."""
    import gradio as gr
    from gradio.data_classes import _StaticFiles
    gr.set_static_paths([tmp_path])  # one more, as another part of an app might add
    maps._state["served"] = False
    maps.serve()
    assert _StaticFiles.all_paths[0] == maps.FOLDER.resolve()
    assert len(_StaticFiles.all_paths) == len(set(_StaticFiles.all_paths))


def test_old_maps_are_swept():
    maps.FOLDER.mkdir(parents=True, exist_ok=True)
    old, new = maps.FOLDER / "old-000.jpg", maps.FOLDER / "new-000.jpg"
    for path in (old, new):
        path.write_bytes(b"x")
    now = time.time()
    os.utime(old, (now - 100, now - 100))
    assert maps.sweep(now, keep_s=50) >= 1
    assert not old.exists() and new.exists()
    new.unlink()


def test_maps_survive_the_sweep_of_served_downloads_and_a_missing_folder(tmp_path):
    """visitors.sweep deletes old "visattn-*" folders (served downloads): never the maps'.
    A maps folder taken away (a temp cleaner) is made again."""
    import shutil
    from visattn import visitors
    trace = visattn.analyze(str(EXAMPLES[-1]), "tiny_cbam")
    first = maps.gallery_files(trace)
    visitors.sweep(older_than_s=-1)
    assert all(os.path.exists(path) for path, _ in first)
    shutil.rmtree(maps.FOLDER)
    again = maps.gallery_files(trace)
    assert len(again) == 10 and all(os.path.exists(path) for path, _ in again)
