"""Where Gradio shows an event's progress: never on the hover view or on a layout block.

Gradio 6's page keeps a loading status for every component an event has ever shown progress
on, and at every status change of any event it reads each such component's value back (a
deep copy; for a layout block, of every component inside it). The hover view's value is an
analysis' payload (the photo and layer inputs: up to MBs) and the tabs hold every view, so
one event showing progress there made every later event copy them again and again: about
half of what a visitor waited for after Analyse (bench/page_speed.py). Such events show
their progress on their other outputs (none, where they have no other)."""
from __future__ import annotations

import gradio as gr
from gradio.blocks import BlockContext


def heavy(block) -> bool:
    """Is reading this block's value back costly: a layout block, or an HTML view?"""
    return isinstance(block, (BlockContext, gr.HTML))


def spare_heavy_views(demo: gr.Blocks) -> int:
    """Every event of `demo` shows its progress on its outputs that are not `heavy`.
    Returns how many events changed."""
    changed = 0
    for fn in demo.fns.values():
        targets = fn.outputs if fn.show_progress_on is None else fn.show_progress_on
        light = [block for block in targets if not heavy(block)]
        if len(light) < len(targets):
            fn.show_progress_on = light
            changed += 1
    return changed
