"""The Analyses tab: excitation statistics over many images, attention next to Grad-CAM,
and each stage's attention switched off."""
from __future__ import annotations

from typing import Optional

import gradio as gr

from .. import render, visitors, zoo
from ..export import safe_name
from ..image import ImageError
from ..opener import open_network
from ..pipeline import analyze
from ..records import SpatialMap
from .common import FAST, MODEL, Page, Session, md_text, need, readable
from .inputs import EXAMPLES


MAX_STATS_FILES = 32  # images per request (the examples included)
MAX_STATS_MEGAPIXELS = 200  # their pixels together, read from the headers before any decoding
STATS = dict(concurrency_id="stats", concurrency_limit=1)  # its own queue: Analyse never waits
STATS_CAPS = (f"At most {MAX_STATS_FILES} images and {MAX_STATS_MEGAPIXELS} megapixels in all per "
              "request; for a whole folder use `visattn stats` on your own machine.")


def check_stats_request(paths: list[str]) -> None:
    """Refuse a request over the caps before any image is decoded (sizes from headers)."""
    from PIL import Image
    if len(paths) > MAX_STATS_FILES:
        raise gr.Error(f"{len(paths)} images were sent; the limit is {MAX_STATS_FILES} per "
                       "request. Send fewer, or use `visattn stats` for a folder.")
    pixels = 0
    for path in paths:
        try:
            with Image.open(path) as img:
                pixels += img.size[0] * img.size[1]
        except Exception:  # noqa: BLE001 - unreadable: skipped (and counted) by the loader
            continue
    if pixels > MAX_STATS_MEGAPIXELS * 1e6:
        raise gr.Error(f"The images hold {pixels / 1e6:.0f} megapixels together; the limit is "
                       f"{MAX_STATS_MEGAPIXELS} per request. Send fewer or smaller images.")


@readable
def run_stats(files, use_examples: bool, model_name: str, pretrained: bool,
              progress: gr.Progress = gr.Progress()):
    """Excitation statistics over uploaded images (or the shipped examples), streamed;
    at most MAX_STATS_FILES images and MAX_STATS_MEGAPIXELS per request."""
    from ..excitation import ExcitationStats
    paths = [f if isinstance(f, str) else f.name for f in (files or [])]
    if use_examples or not paths:
        paths += [str(p) for p in EXAMPLES]
    check_stats_request(paths)
    card = zoo.get(model_name)
    stats = ExcitationStats(labels=list(card.class_names))
    skipped = 0
    for path in progress.tqdm(paths, desc="Images"):
        try:
            stats.add(analyze(path, model_name, pretrained=pretrained))
        except ImageError:
            skipped += 1
    if not stats.blocks():
        raise gr.Error(f"{model_name} has no channel gates; choose SE, ECA, CBAM, GSoP, ...")
    folder = visitors.temp_folder("stats")
    csv_path = folder / f"excitation_{safe_name(model_name)}.csv"
    csv_path.write_text(stats.to_csv())
    top = max(stats.blocks(), key=stats.divergence)
    text = (f"{stats.images} images ({skipped} skipped). Gates are most class-specific at "
            f"**{md_text(top)}** (divergence {stats.divergence(top):.2f}). The CSV holds every "
            "channel's mean and spread per block and predicted class.")
    return render.divergence_plot(stats), str(csv_path), text


@readable
def attention_vs_gradcam(session: Optional[Session], key: str, top_pct: float, alpha: float,
                         cmap: str):
    """The block's own attention next to Grad-CAM of the predicted class at that block
    (`gradcam.compare`, as `visattn cam` does); the pair is kept for restyling."""
    import json

    from ..gradcam import compare
    session = need(session)
    trace = session.trace
    if not key:
        raise gr.Error("This network has no spatial attention map to compare.")
    net = open_network(trace.model, pretrained=session.pretrained)
    if net.task != "classify":
        raise gr.Error("Grad-CAM explains a class score: choose a classifier.")
    found = compare(trace, net.module, key, top=top_pct / 100.0)
    session.gradcam = (found.attention, found.cam)  # kept: opacity and colour map redraw it
    report = visitors.temp_folder("gradcam") / "agreement.json"
    report.write_text(json.dumps(found.report(trace.model), indent=2))
    what = md_text(key if isinstance(trace[key], SpatialMap) else f"{key} (mean row)")
    if found.empty:
        text = f"Left: **{what}**. Right: " + found.sentence.replace(
            f"at {found.layer}", f"at {md_text(found.layer)}").replace(" is empty", " is **empty**", 1)
    else:
        text = (f"Left: **{what}**. Right: Grad-CAM of the predicted class at "
                f"{md_text(found.layer)}. Rank correlation **{found.scores['spearman']:.2f}**, "
                f"IoU of the top {top_pct:.0f} % **{found.scores['top_iou']:.2f}**.")
    return gradcam_view(session, alpha, cmap), text, str(report), session


@readable
def run_ablation(session: Optional[Session]):
    """Top-1 with each stage's attention switched off (hooks; the network is unchanged)."""
    from ..ablation import stage_ablation
    session = need(session)
    trace = session.trace
    net = open_network(trace.model, pretrained=session.pretrained)
    if net.task != "classify":
        raise gr.Error("Switching attention off compares class predictions: choose a classifier.")
    rows = stage_ablation(net.module, trace.image, trace.preprocess, net.labels)
    table = []
    for row in rows:
        label, p = row.top[0]
        table.append([row.what, row.switched, label, round(p, 4), "yes" if row.same_top1 else "NO",
                      round(row.baseline_prob_of_top1, 4)])
    left_on = sorted({sentence for row in rows for sentence in row.left_on})
    note = ("Left on (no neutral value is known for them): " + " ".join(left_on)) if left_on else ""
    return table, note



def gradcam_view(session: Optional[Session], alpha: float, cmap: str):
    """The kept attention / Grad-CAM pair drawn with the current opacity and colour map."""
    if session is None or session.gradcam is None:
        return None
    return render.attention_beside_cam(session.trace, *session.gradcam, alpha, cmap)


def refresh(session: Optional[Session]):
    """A new analysis: the maps Grad-CAM can be compared with; old results cleared."""
    from ..gradcam import comparable
    found = [r.key for r in comparable(session.trace)] if session else []
    return gr.Dropdown(choices=found, value=found[0] if found else None), None, "", None, None


def build_analyses_tab(page: Page) -> gr.Tab:
    with gr.Tab("Analyses", id="analyses") as tab:
        gr.Markdown("### Excitation statistics over many images\nThe mean and spread of "
                    "every channel gate per block and predicted class, and where gates "
                    "become class-specific (SENet's excitation plots). " + STATS_CAPS,
                    elem_id="st-caps")
        with gr.Row():
            st_files = gr.File(file_count="multiple", file_types=["image"],
                               label="Images (or use the examples)", elem_id="st-files")
            st_examples = gr.Checkbox(value=True, label="Add the example images")
        st_go = gr.Button("Gather statistics with the chosen network", elem_id="st-go")
        st_text = gr.Markdown(elem_id="st-text")
        st_plot = gr.Image(label="Class divergence per block", interactive=False, elem_id="st-plot")
        st_csv = gr.File(label="excitation.csv", elem_id="st-csv")
        gr.Markdown("### Attention vs Grad-CAM\nThe block's own spatial attention next "
                    "to Grad-CAM of the predicted class at the same block.")
        with gr.Row():
            gc_record = gr.Dropdown([], label="Attention map", elem_id="gc-record")
            gc_top = gr.Slider(5, 50, 20, step=5, label="Top % for the IoU")
        gc_go = gr.Button("Compare with Grad-CAM", elem_id="gc-go")
        gc_text = gr.Markdown(elem_id="gc-text")
        gc_view = gr.Image(interactive=False, format="jpeg", elem_id="gc-view")
        gc_file = gr.File(label="agreement.json")
        gr.Markdown("### Switching attention off\nEach stage's attention set to neutral "
                    "(gates 1, BAM 0, Non-local branches off) with hooks; the network "
                    "itself is never changed.")
        ab_go = gr.Button("Switch attention off, stage by stage", elem_id="ab-go")
        ab_table = gr.Dataframe(headers=["attention off", "modules", "top-1", "probability",
                                         "same top-1?", "p(original top-1)"], elem_id="ab-table")
        ab_note = gr.Markdown(elem_id="ab-note")
    st_go.click(run_stats, [st_files, st_examples, page.model, page.pretrained],
                [st_plot, st_csv, st_text], api_visibility="private", **STATS)
    gc_go.click(attention_vs_gradcam, [page.session, gc_record, gc_top, page.alpha, page.cmap],
                [gc_view, gc_text, gc_file, page.session], api_visibility="private", **MODEL)
    ab_go.click(run_ablation, [page.session], [ab_table, ab_note], api_visibility="private", **MODEL)
    page.after_analysis(refresh, [page.session], [gc_record, gc_view, gc_text, gc_file, ab_table])
    page.on_restyle("analyses", gradcam_view, [page.session, page.alpha, page.cmap], [gc_view])
    tab.select(lambda: "analyses", None, page.tab_open, **FAST).then(
        gradcam_view, [page.session, page.alpha, page.cmap], [gc_view], **FAST)
    return tab
