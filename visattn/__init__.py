"""VisAttn: see what the attention modules inside CNNs do.

    import visattn
    trace = visattn.analyze("cat.jpg", "cbam_resnet50")
    for rec in trace:            # records in network order
        print(rec.key, rec.grid)
    row = trace.select(visattn.Affinity)[0].row(0)   # where cell 0 looks
"""
from .geometry import Geometry
from .image import ImageError, load_image
from .pipeline import analyze
from .preprocess import Preprocess, prepare
from .records import (Affinity, BranchWeights, ChannelWeights, Prediction, Record, SpatialMap,
                      Trace)

__all__ = ["analyze", "load_image", "ImageError", "Geometry", "Preprocess", "prepare",
           "Record", "ChannelWeights", "SpatialMap", "BranchWeights", "Affinity", "Prediction",
           "Trace"]
