"""The page, top to bottom: photo and network, opacity and colour map, then one tab per view.
Each tab's builder makes its components and wires its own events; this file wires what
connects them: a new analysis refreshes every tab, a new style redraws the open one."""
from __future__ import annotations

from collections.abc import Mapping

import gradio as gr

from .. import guard, hover, visitors, zoo
from ..image import DEFAULT_MAX_BYTES
from .analyse_button import prediction_label, run_analysis
from .analyse_page import input_extras, is_segmenter_with_sizes, wire_analyse
from .tab_analyses import build_analyses_tab
from .tab_channel import build_channel_tab
from .common import (COLORMAPS, FAST, MODEL, QUIET, Page, guarded_preprocess, readable,
                     session_closed)
from .tab_compare import build_compare_tab
from .tab_export import build_export_tab
from . import mcp_tools
from .maps import gallery_files
from .tab_families import build_families_tab
from .inputs import (EXAMPLES, SEG_CHOICES, SEG_DEFAULT, default_model, model_choices, photo_input,
                     photo_upload,
                     picker, pretrained_box, published, start_example)
from .progress import spare_heavy_views
from .tab_nonlocal import build_nonlocal_tab
from .clip_input import CLIP_NOTE, run_video_analysis, video_input, wire_inputs
from .tab_spatial import build_spatial_tab

TITLE = "VisAttn — see what attention modules inside CNNs do"
INTRO = ("Upload a photo, choose a network, and see every attention map it computes: "
         "channel gates, spatial maps, branch weights and self-attention rows, in network "
         "order. On the **Non-local** tab, point anywhere on the photo to see where that "
         "pixel looks.")


def build_inputs(start: str, note: str):
    """Photo (left) and network, weights, size, Analyse, prediction, summary (right)."""
    with gr.Row():
        with gr.Column(scale=3):
            with gr.Row():
                image = photo_upload(label="Photo", elem_id="photo", height=340,
                                     value=start_example(start))
                clip = video_input()
            gr.Markdown(CLIP_NOTE, elem_id="clip-note")
            if EXAMPLES:
                gr.Examples([[str(p)] for p in EXAMPLES], [image], label="Examples",
                            examples_per_page=14)
        with gr.Column(scale=2):
            model = gr.Dropdown(model_choices(), value=start, label="Network", elem_id="model")
            start_note = gr.Markdown(note, visible=bool(note), elem_id="start-note")
            pretrained = gr.Checkbox(value=True, label="Pretrained weights", visible=published(start),
                                     info="Untick to see the architecture with random weights "
                                          "(no download).", elem_id="pretrained")
            seg_size = gr.Radio(SEG_CHOICES, value=SEG_DEFAULT, label="Processing size "
                                "(segmentation networks, short side)", elem_id="seg-size",
                                visible=is_segmenter_with_sizes(start))
            go = gr.Button("Analyse", variant="primary", elem_id="analyse")
            queue_note = gr.Markdown(elem_id="queue-note")
            summary = gr.Markdown(elem_id="summary")
            top5 = gr.Label(num_top_classes=5, label="Prediction", elem_id="top5")
    return image, model, pretrained, seg_size, go, top5, summary, start_note, queue_note, clip


@readable
def restyle_gallery(session, alpha: float, cmap: str):
    return gallery_files(session.trace, alpha=alpha, cmap=cmap) if session else []


def open_overview(session, alpha: float, cmap: str):
    """The Overview opened: it is the open tab, and its gallery is drawn now (one event)."""
    return "overview", restyle_gallery(session, alpha, cmap)


def build() -> gr.Blocks:
    visitors.limit_heaps()  # freed session memory must go back to the system
    start, note = default_model()
    first_tab = "nonlocal" if zoo.get(start).family == "Non-local" else "overview"
    with gr.Blocks(title="VisAttn", analytics_enabled=False,
                   delete_cache=(600, int(visitors.TTL_S))) as demo:
        session = gr.State(None, time_to_live=visitors.TTL_S, delete_callback=visitors.session_ended)
        gr.Markdown(f"# {TITLE}\n{INTRO}")
        image, model, pretrained, seg_size, go, top5, summary, start_note, queue_note, clip = \
            build_inputs(start, note)
        source = gr.State("photo")  # the input given last
        with gr.Row():
            alpha = gr.Slider(0.0, 1.0, 0.5, step=0.05, label="Overlay opacity", elem_id="alpha")
            cmap = gr.Radio(COLORMAPS, value="jet", label="Colour map", elem_id="cmap")
        page = Page(session, gr.State(first_tab), image, model, pretrained, seg_size, alpha, cmap,
                    top5, clip, source)
        analysed_model = gr.Textbox(visible=False)  # /analyze's 4th answer: the network's name
        with gr.Tabs(selected=first_tab, elem_id="views") as tabs:
            with gr.Tab("Overview", id="overview") as overview:
                maps = gr.Gallery(label="Every captured map, in network order", columns=4,
                                  height="auto", object_fit="contain", format="jpeg", elem_id="maps")
            for build_tab in (build_nonlocal_tab, build_spatial_tab, build_channel_tab,
                              build_compare_tab):
                build_tab(page)
            analysed = [*build_families_tab(page, [session, top5, summary, maps], tabs)]
            build_analyses_tab(page)
            build_export_tab(page)
        mcp_tools.register()  # list_networks, analyze_photo, attention_row (MCP tools)
        page.on_restyle("overview", restyle_gallery, [session, alpha, cmap], [maps])
        overview.select(open_overview, [session, alpha, cmap], [page.tab_open, maps], **FAST)
        with gr.Row(visible=False):  # /analyze for API clients (the page's Analyse is its own)
            api_go = gr.Button("analyze")
        analysed.append(api_go.click(run_analysis, [image, model, pretrained, seg_size, alpha, cmap],
                                     [session, top5, summary, maps, analysed_model],
                                     api_name="analyze", **MODEL))
        with gr.Row(visible=False):  # /analyze_video for API clients (any clip network's name)
            api_clip_go, api_clip_model = gr.Button("analyze_video"), gr.Textbox(label="model")
            api_clip_pretrained = gr.Checkbox(True, label="pretrained")
        analysed.append(api_clip_go.click(run_video_analysis, [clip, api_clip_model,
                                                               api_clip_pretrained, alpha, cmap],
                                          [session, top5, summary, maps, analysed_model],
                                          api_name="analyze_video", **MODEL))
        wire_inputs(page)
        wire(page, analysed, [alpha.input, cmap.input])
        wire_analyse(page, go, tabs, summary, maps, analysed_model, queue_note)  # the picker too
        model.input(lambda m: input_extras(m, start), [model], [seg_size, start_note, queue_note],
                    **QUIET)
        for trigger in (model.input, pretrained.input):
            trigger(pretrained_box, [model, pretrained], [pretrained], **QUIET).then(
                picker, [model, pretrained], [model], **QUIET)
        spare_heavy_views(demo)  # every event is wired: the page's config is made on leaving
    demo.unload(session_closed)
    demo.queue(default_concurrency_limit=1, max_size=64)
    for block in demo.blocks.values():  # Gradio's own input checks: short sentences
        if isinstance(block, gr.components.Component) and not isinstance(block, gr.State) \
                and block.preprocess is not photo_input:
            guarded_preprocess(block)
    return demo


def wire(page: Page, analysed: list, style_triggers: list) -> None:
    """Every tab's refresher after every analysis; every restyler on every style change."""
    for event in analysed:
        event.success(picker, [page.model, page.pretrained], [page.model], **QUIET)
        event.success(prediction_label, [page.session], [page.top5], **QUIET)
        for fn, inputs, outputs in page.refreshers:
            event.success(fn, inputs, outputs, **QUIET)
    for trigger in style_triggers:
        for fn, inputs, outputs in page.restylers:
            trigger(fn, inputs, outputs, trigger_mode="always_last", **FAST)


MAX_UPLOAD = f"{DEFAULT_MAX_BYTES // 2**20}mb"  # refused by the server before anything is decoded


class _LaunchOptions(Mapping):
    """`launch(**LAUNCH_OPTIONS)`: a fresh `app_kwargs` at every use (Gradio adds its own
    entries to the dict it is given), putting guard.RequestGuard in front of every route:
    request bodies over the cap refused unread, a full disk said in a sentence."""

    def __init__(self, **fixed):
        self._fixed = fixed

    def __getitem__(self, key):
        return guard.app_kwargs() if key == "app_kwargs" else self._fixed[key]

    def __iter__(self):
        return iter([*self._fixed, "app_kwargs"])

    def __len__(self):
        return len(self._fixed) + 1


LAUNCH_OPTIONS = _LaunchOptions(max_file_size=MAX_UPLOAD,
                                state_session_capacity=visitors.MAX_SESSIONS,
                                css=hover.asset("page.css"),
                                js="() => {\n" + hover.asset("page.js") + "\n}")
