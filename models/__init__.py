"""Architectures no installed library provides, in plain PyTorch (one file per family).

Never imports visattn. Empty until the first such network arrives (mmsegmentation's
R50-D8 heads, Triplet, A2-Nets, GSoP).
"""
