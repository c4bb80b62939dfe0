"""VisAttn: see what the attention modules inside CNNs do.

    import visattn
    trace = visattn.analyze("cat.jpg", "cbam_resnet50")
    for rec in trace:            # records in network order
        print(rec.key, rec.grid)
    row = trace.select(visattn.Affinity)[0].row(0)   # where cell 0 looks

Your own attention module, in your own network:

    @visattn.register_attention(family="MyGate", kind="channel", tap="sigmoid")
    class MyGate(nn.Module): ...

    trace = visattn.analyze("cat.jpg", my_network)
    with visattn.attention_off(my_network):
        logits = my_network(x)           # every registered attention module neutral

One analysis in one file, read back exactly (arrays + a JSON header, no pickle):

    visattn.save(trace, "cat.npz");  trace = visattn.load("cat.npz")
"""
from .resources import mount_models

mount_models()  # visattn.models: the models/ folder, installed or in a checkout

from . import builtin  # noqa: E402,F401  (the project's own registry entries; imports no network library)
from . import builtin_video  # noqa: E402,F401  (space-time entries: mmcv's NonLocal3d)

from .ablation import AttentionError, AttentionLeftOn, attention_off
from .geometry import Geometry
from .image import ImageError, load_image
from .opener import Network, open_network
from .pipeline import analyze, analyze_video
from .preprocess import Preprocess, prepare
from .records import (Affinity, AxisGate, BranchWeights, ChannelAffinity, ChannelWeights, CrissCross,
                      Distribute,
                      Pairwise, Prediction, Record, RelativePosition, Segmentation, SpatialMap,
                      Trace, TwoHop)
from .registry import Family, register_attention
from .records_video import Clip, SpaceTimeAffinity
from .trace_file import load, save
from .video import VideoError, load_clip
from .version import __version__

__all__ = ["__version__", "analyze", "analyze_video", "load_clip", "VideoError", "Clip", "SpaceTimeAffinity", "open_network", "Network", "save", "load", "load_image", "ImageError", "Geometry", "Preprocess", "prepare",
           "register_attention", "attention_off", "Family", "AttentionLeftOn", "AttentionError",
           "Record", "ChannelWeights", "SpatialMap", "BranchWeights", "AxisGate", "ChannelAffinity",
           "Affinity",
           "CrissCross", "TwoHop", "Distribute", "RelativePosition", "Pairwise", "Prediction",
           "Segmentation", "Trace"]
