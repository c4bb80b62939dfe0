"""The Gradio page (the only package that imports gradio): one small builder per tab, each
wiring its own events; `page.build()` puts them together.

Per-user state is one `Session` in a gr.State (with a time-to-live): the Trace of the last
analysis (records with cached embeddings) and the queries pinned since. Pointing at the
photo never reaches the server; nothing here ever re-runs a network to redraw a view.
"""
from .analyse_button import prediction_label, run_analysis, summary
from .tab_analyses import attention_vs_gradcam, run_ablation, run_stats
from .tab_channel import show_channels
from .common import COLORMAPS, MEAN_OF_HEADS, Session, need, readable, session_closed, weights_message
from .tab_compare import compare, compared_tiles, default_networks
from .tab_export import export
from .tab_families import family_row, open_family
from .inputs import (EXAMPLES, PREFERRED_OWN, default_model, model_choices, photo_input,
                     uses_pretrained)
from .tab_nonlocal import (NONLOCAL_NOTES, UNARY_NOTE, affinity_api, nonlocal_tab, pin_query,
                           show_affinity)
from .page import LAUNCH_OPTIONS, MAX_UPLOAD, build
from .tab_spatial import show_spatial

__all__ = ["build", "LAUNCH_OPTIONS", "MAX_UPLOAD", "run_analysis", "summary", "prediction_label", "show_affinity",
           "affinity_api", "pin_query", "nonlocal_tab", "show_spatial", "show_channels", "compare",
           "compared_tiles", "default_networks", "export", "run_stats", "attention_vs_gradcam",
           "run_ablation", "family_row", "open_family", "default_model", "model_choices",
           "photo_input", "uses_pretrained", "Session", "need", "readable", "session_closed",
           "weights_message", "EXAMPLES", "PREFERRED_OWN", "COLORMAPS", "MEAN_OF_HEADS",
           "NONLOCAL_NOTES", "UNARY_NOTE"]
