"""Architectures no installed library provides, in plain PyTorch, one file per family:
mmsegmentation's R-50-D8 NonLocalNet / CCNet / DANet (mmseg_r50d8), Triplet attention
(triplet), A^2 double attention (a2net), GSoP (gsop), and VisAttn's own tiny attention
ResNets (tiny_resnet). Never imports visattn."""
