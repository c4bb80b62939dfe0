"""Where Gradio shows an event's progress: never on the hover view or on a layout block,
and on nothing for events whose progress is hidden.

Gradio 6's page keeps a loading status for every component an event has ever shown progress
on, and at every status change of any event it reads each such component's value back (a
deep copy; for a layout block, of every component inside it). The hover view's value is an
analysis' payload (the photo and layer inputs: up to MBs) and the tabs hold every view, so
one event showing progress there made every later event copy them again and again: about
half of what a visitor waited for after Analyse (bench/page_speed.py). Such events show
their progress on their other outputs (none, where they have no other). An event whose
progress is hidden (common.QUIET: the refreshes after each analysis) tracks none: with its
outputs as targets, each of them would be copied at every later status change for
nothing (update_loading_stati_state: 27 of the ~250 ms of page work after Analyse for
botnet26t_256, from 43 tracked components to 2)."""
from __future__ import annotations

import gradio as gr
from gradio.blocks import BlockContext


def heavy(block) -> bool:
    """Is reading this block's value back costly: a layout block, or an HTML view?"""
    return isinstance(block, (BlockContext, gr.HTML))


def spare_heavy_views(demo: gr.Blocks) -> int:
    """Every event of `demo` shows its progress on its outputs that are not `heavy`; one
    whose progress is hidden, on none. Returns how many events changed."""
    changed = 0
    for fn in demo.fns.values():
        targets = fn.outputs if fn.show_progress_on is None else fn.show_progress_on
        light = [] if fn.show_progress == "hidden" else [b for b in targets if not heavy(b)]
        if len(light) < len(targets):
            fn.show_progress_on = light
            changed += 1
    return changed
