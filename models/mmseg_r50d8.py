"""mmsegmentation's R-50-D8 segmentation networks in plain PyTorch (no mmcv at run time):
NonLocalNet (embedded Gaussian), DNLNet (disentangled Non-local: whitened pairwise + unary),
CCNet (criss-cross, 2 recurrences) and DANet (position and channel attention), written
from the papers and mmseg's documented layout, keeping mmseg's module names so its
published state dicts load with at most prefix handling.

Backbone: ResNetV1c-50 (deep stem 3 x 3 convs 32-32-64), strides (1, 2, 1, 1), dilations
(1, 1, 2, 4) with contracted dilation (the first block of a dilated layer uses half the
dilation), output stride 8. Heads: FCN-style on the last stage (2048 -> 512 channels),
150 ADE20K classes; logits at 1/8 resolution, upsampled bilinearly to the input size.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

NUM_CLASSES = 150


class ConvModule(nn.Module):
    """mmcv's ConvModule as these configs use it: conv (no bias when normed) + BN + ReLU."""

    def __init__(self, cin: int, cout: int, k: int, padding: int = 0, norm: bool = True,
                 act: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, padding=padding, bias=not norm)
        self.bn = nn.BatchNorm2d(cout) if norm else None
        self.activate = nn.ReLU(inplace=True) if act else None

    def forward(self, x):
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        return self.activate(x) if self.activate is not None else x


class Scale(nn.Module):
    """A learned scalar (mmcv Scale): x * scale."""

    def __init__(self, value: float = 0.0):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(float(value)))

    def forward(self, x):
        return x * self.scale


# ----- backbone -------------------------------------------------------------------------

class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int, dilation: int, downsample):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, padding=dilation, dilation=dilation,
                               bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class ResNetV1c(nn.Module):
    def __init__(self, depths=(3, 4, 6, 3), strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4),
                 contract_dilation: bool = True):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 32, 3, 2, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU(inplace=True),
            nn.Conv2d(32, 32, 3, 1, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU(inplace=True),
            nn.Conv2d(32, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True))
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = 64
        for i, (n, s, d) in enumerate(zip(depths, strides, dilations)):
            planes = 64 * 2 ** i
            down = None
            if s != 1 or cin != planes * 4:
                down = nn.Sequential(nn.Conv2d(cin, planes * 4, 1, s, bias=False),
                                     nn.BatchNorm2d(planes * 4))
            first = d // 2 if (contract_dilation and d > 1) else d
            blocks = [Bottleneck(cin, planes, s, first, down)]
            cin = planes * 4
            blocks += [Bottleneck(cin, planes, 1, d, None) for _ in range(n - 1)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))

    def forward(self, x):
        x = self.maxpool(self.stem(x))
        outs = []
        for i in range(1, 5):
            x = getattr(self, f"layer{i}")(x)
            outs.append(x)
        return outs


# ----- attention blocks -----------------------------------------------------------------

class NonLocal2d(nn.Module):
    """Embedded-Gaussian Non-local block (Wang et al. 2018; mmcv layout):
    y = x + BN(W (softmax(theta^T phi / sqrt(C')) g)), rows are queries."""

    def __init__(self, channels: int, reduction: int = 2):
        super().__init__()
        self.inter_channels = channels // reduction
        self.g = ConvModule(channels, self.inter_channels, 1, norm=False, act=False)
        self.theta = ConvModule(channels, self.inter_channels, 1, norm=False, act=False)
        self.phi = ConvModule(channels, self.inter_channels, 1, norm=False, act=False)
        self.conv_out = ConvModule(self.inter_channels, channels, 1, act=False)

    def pairwise(self, theta: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
        """theta (n, HW, C'), phi (n, C', HW) -> attention (n, HW queries, HW keys)."""
        return torch.softmax(theta @ phi / self.inter_channels ** 0.5, dim=-1)

    def unary(self, x: torch.Tensor, g: torch.Tensor):
        """A term added to every position's context (n, C', 1, 1); none here."""
        return 0.0

    def forward(self, x):
        n, _, h, w = x.shape
        g = self.g(x).flatten(2).transpose(1, 2)  # (n, HW, C')
        theta = self.theta(x).flatten(2).transpose(1, 2)  # (n, HW, C')
        phi = self.phi(x).flatten(2)  # (n, C', HW)
        y = (self.pairwise(theta, phi) @ g).transpose(1, 2).reshape(n, self.inter_channels, h, w)
        return x + self.conv_out(y + self.unary(x, g))


class DisentangledNonLocal2d(NonLocal2d):
    """Disentangled Non-local block (Yin et al. 2020, DNLNet; mmseg layout): a whitened
    pairwise term, softmax((theta - mean theta)^T (phi - mean phi) [/ sqrt(C')] / T) with
    means over positions, plus a unary term, the values g pooled by softmax(conv_mask(x))
    over positions and added at every position: y = x + BN(W (pairwise g + unary g))."""

    def __init__(self, channels: int, reduction: int = 2, temperature: float = 0.05,
                 use_scale: bool = True):
        super().__init__(channels, reduction)
        self.temperature = temperature
        self.use_scale = use_scale
        self.conv_mask = nn.Conv2d(channels, 1, 1)

    def pairwise(self, theta: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
        theta = theta - theta.mean(dim=1, keepdim=True)
        phi = phi - phi.mean(dim=2, keepdim=True)
        logits = theta @ phi
        if self.use_scale:
            logits = logits / self.inter_channels ** 0.5
        return torch.softmax(logits / self.temperature, dim=-1)

    def unary(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        mask = torch.softmax(self.conv_mask(x).flatten(1), dim=-1)  # (n, HW)
        return (mask[:, None, :] @ g).transpose(1, 2)[..., None]  # (n, C', 1, 1)


class CrissCrossAttention(nn.Module):
    """Criss-cross attention (Huang et al. 2019; mmcv >= 1.3.13 semantics): each position
    attends over its column (itself excluded) and its row (itself included), one softmax
    over the H + W energies, no scaling; out = gamma * attended values + x."""

    def __init__(self, channels: int):
        super().__init__()
        self.query_conv = nn.Conv2d(channels, channels // 8, 1)
        self.key_conv = nn.Conv2d(channels, channels // 8, 1)
        self.value_conv = nn.Conv2d(channels, channels, 1)
        self.gamma = Scale(0.0)

    def forward(self, x):
        _, _, h, w = x.shape
        q, k, v = self.query_conv(x), self.key_conv(x), self.value_conv(x)
        self_mask = torch.diag(torch.full((h,), float("-inf"), device=x.device))
        energy_h = torch.einsum("bchw,bciw->bhwi", q, k) + self_mask[:, None, :]  # column
        energy_w = torch.einsum("bchw,bchj->bhwj", q, k)  # row
        attn = torch.softmax(torch.cat([energy_h, energy_w], dim=-1), dim=-1)
        out = torch.einsum("bciw,bhwi->bchw", v, attn[..., :h])
        out = out + torch.einsum("bchj,bhwj->bchw", v, attn[..., h:])
        return self.gamma(out) + x


class PAM(nn.Module):
    """DANet position attention (Fu et al. 2019; mmseg layout): softmax(q^T k) over all
    positions, no scaling; out = gamma * attended values + x."""

    def __init__(self, channels: int, inner: int):
        super().__init__()
        self.query_project = nn.Conv2d(channels, inner, 1)
        self.key_project = nn.Conv2d(channels, inner, 1)
        self.value_project = nn.Conv2d(channels, channels, 1)
        self.gamma = Scale(0.0)

    def forward(self, x):
        n, c, h, w = x.shape
        q = self.query_project(x).flatten(2).transpose(1, 2)  # (n, HW, inner)
        k = self.key_project(x).flatten(2)  # (n, inner, HW)
        v = self.value_project(x).flatten(2).transpose(1, 2)  # (n, HW, C)
        attn = torch.softmax(q @ k, dim=-1)
        context = (attn @ v).transpose(1, 2).reshape(n, c, h, w)
        return self.gamma(context) + x


class CAM(nn.Module):
    """DANet channel attention: softmax over (max energy - energy) of the channel Gram."""

    def __init__(self):
        super().__init__()
        self.gamma = Scale(0.0)

    def forward(self, x):
        n, c, h, w = x.shape
        flat = x.reshape(n, c, -1)
        energy = flat @ flat.transpose(1, 2)
        energy = energy.max(-1, keepdim=True)[0].expand_as(energy) - energy
        out = (torch.softmax(energy, dim=-1) @ flat).reshape(n, c, h, w)
        return self.gamma(out) + x


# ----- heads ------------------------------------------------------------------------------

class _Head(nn.Module):
    def __init__(self, channels: int = 512):
        super().__init__()
        self.dropout = nn.Dropout2d(0.1)
        self.conv_seg = nn.Conv2d(channels, NUM_CLASSES, 1)

    def cls_seg(self, x):
        return self.conv_seg(self.dropout(x))


class NLHead(_Head):
    """FCN head (two 3 x 3 convs, input concatenated) with a Non-local block between the convs."""
    block_name = "nl_block"

    def __init__(self, cin: int = 2048, channels: int = 512):
        super().__init__(channels)
        self.convs = nn.Sequential(ConvModule(cin, channels, 3, 1), ConvModule(channels, channels, 3, 1))
        setattr(self, self.block_name, self.make_block(channels))
        self.conv_cat = ConvModule(cin + channels, channels, 3, 1)

    def make_block(self, channels: int) -> nn.Module:
        return NonLocal2d(channels)

    def forward(self, feats):
        x = feats[3]
        y = self.convs[1](getattr(self, self.block_name)(self.convs[0](x)))
        return self.cls_seg(self.conv_cat(torch.cat([x, y], dim=1)))


class DNLHead(NLHead):
    """DNLNet's head: the same FCN head with the disentangled block (mmseg's defaults:
    reduction 2, scaled, temperature 0.05)."""
    block_name = "dnl_block"

    def make_block(self, channels: int) -> nn.Module:
        return DisentangledNonLocal2d(channels)


class CCHead(_Head):
    def __init__(self, cin: int = 2048, channels: int = 512, recurrence: int = 2):
        super().__init__(channels)
        self.recurrence = recurrence
        self.convs = nn.Sequential(ConvModule(cin, channels, 3, 1), ConvModule(channels, channels, 3, 1))
        self.cca = CrissCrossAttention(channels)
        self.conv_cat = ConvModule(cin + channels, channels, 3, 1)

    def forward(self, feats):
        x = feats[3]
        y = self.convs[0](x)
        for _ in range(self.recurrence):
            y = self.cca(y)
        y = self.convs[1](y)
        return self.cls_seg(self.conv_cat(torch.cat([x, y], dim=1)))


class DAHead(_Head):
    def __init__(self, cin: int = 2048, channels: int = 512):
        super().__init__(channels)
        self.pam_in_conv = ConvModule(cin, channels, 3, 1)
        self.pam = PAM(channels, channels // 8)
        self.pam_out_conv = ConvModule(channels, channels, 3, 1)
        self.pam_conv_seg = nn.Conv2d(channels, NUM_CLASSES, 1)  # training-only outputs
        self.cam_in_conv = ConvModule(cin, channels, 3, 1)
        self.cam = CAM()
        self.cam_out_conv = ConvModule(channels, channels, 3, 1)
        self.cam_conv_seg = nn.Conv2d(channels, NUM_CLASSES, 1)

    def forward(self, feats):
        x = feats[3]
        pam = self.pam_out_conv(self.pam(self.pam_in_conv(x)))
        cam = self.cam_out_conv(self.cam(self.cam_in_conv(x)))
        return self.cls_seg(pam + cam)


HEADS = {"nonlocal": NLHead, "ccnet": CCHead, "danet": DAHead, "dnl": DNLHead}


class SegmentorR50D8(nn.Module):
    """backbone + decode_head, as mmseg's EncoderDecoder names them. forward(img) gives
    (1, 150, H, W) logits at the input's size."""

    def __init__(self, head: str, contract_dilation: bool = True):
        super().__init__()
        self.backbone = ResNetV1c(contract_dilation=contract_dilation)
        self.decode_head = HEADS[head]()

    def forward(self, img):
        logits = self.decode_head(self.backbone(img))
        return F.interpolate(logits, size=img.shape[2:], mode="bilinear", align_corners=False)


def adapt_state_dict(state: dict) -> dict:
    """mmseg checkpoint -> this model: strip a `module.` prefix, drop the auxiliary head
    (training only) and BN step counters; nothing else is renamed."""
    out = {}
    for key, value in state.items():
        key = key[len("module."):] if key.startswith("module.") else key
        if key.startswith("auxiliary_head.") or key.endswith("num_batches_tracked"):
            continue
        out[key] = value
    return out
