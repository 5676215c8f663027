"""An improved-diffusion style UNet (Nichol & Dhariwal 2021).

Module names and nesting follow improved-diffusion's `UNetModel` exactly
(`time_embed`, `input_blocks.i.j`, `middle_block`, `output_blocks`, `out`, and
inside a ResBlock `in_layers`, `emb_layers`, `out_layers`, `skip_connection`),
so that published state dicts load without renaming. The options of
guided-diffusion (Dhariwal & Nichol 2021: resampling ResBlocks, heads of fixed
width, the "new" qkv split order) extend it; their defaults keep the
improved-diffusion layout and outputs. The code is dstab's own.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import DstabError, is_int, require

UNET_DEFAULTS = {
    "arch": "unet",
    "image_size": 8,
    "in_channels": 1,
    "model_channels": 32,
    "num_res_blocks": 1,
    # image resolutions (not downsampling rates) that get self-attention,
    # as in improved-diffusion's --attention_resolutions flag
    "attention_resolutions": [4],
    "channel_mult": [1, 2],
    "dropout": 0.0,
    "num_heads": 1,
    "use_scale_shift_norm": True,  # improved-diffusion Sec. 3 / BigGAN-style FiLM
    "learn_sigma": False,  # improved-diffusion: output channels doubled for Sigma
    "num_classes": None,
    "norm_groups": 32,
    # multiplies t before the sinusoidal embedding; improved-diffusion's
    # rescale_timesteps feeds t * 1000 / T
    "time_scale": 1.0,
    # guided-diffusion (Dhariwal & Nichol 2021) options, off by default:
    # heads of this many channels instead of a fixed head count (-1: use num_heads)
    "num_head_channels": -1,
    # head count in the decoder's attention (-1: same as num_heads)
    "num_heads_upsample": -1,
    # split q, k, v before the heads (guided-diffusion's QKVAttention) rather than after
    "use_new_attention_order": False,
    # resample with parameter-free pooling/nearest inside a ResBlock (BigGAN-style)
    "resblock_updown": False,
}


def unet_config(config: dict) -> dict:
    full = {**UNET_DEFAULTS, **config}
    unknown = set(full) - set(UNET_DEFAULTS)
    require(not unknown, f"unknown UNet options {sorted(unknown)}")
    for key in ("model_channels", "norm_groups", "image_size", "in_channels", "num_res_blocks"):
        value = full[key]
        require(is_int(value) and value >= 1, f"UNet option {key} must be a positive integer, got {value!r}")
    full["channel_mult"] = [int(m) for m in full["channel_mult"]]
    full["attention_resolutions"] = [int(r) for r in full["attention_resolutions"]]
    size, mult = int(full["image_size"]), full["channel_mult"]
    require(size >= 1 and full["in_channels"] >= 1, "image_size and in_channels must be positive")
    require(len(mult) >= 1 and all(m >= 1 for m in mult), "channel_mult needs positive entries")
    require(full["num_res_blocks"] >= 1, "num_res_blocks must be at least 1")
    # a config is built (on the meta device) before its size is checked: bound the module count
    require(full["num_res_blocks"] <= 64 and len(mult) <= 16, "num_res_blocks must be <= 64, channel_mult <= 16 long")
    halvings = len(mult) - 1
    if size % (2**halvings):
        raise DstabError(
            f"image_size {size} cannot be halved {halvings} times "
            f"(channel_mult has {len(mult)} levels); use a size divisible by {2**halvings} "
            "or fewer levels"
        )
    groups = full["norm_groups"]
    widths = {full["model_channels"] * m for m in mult}
    bad = sorted(w for w in widths if w % groups)
    require(not bad, f"channel widths {bad} are not divisible by norm_groups={groups}")
    require(0.0 <= full["dropout"] < 1.0, "dropout must lie in [0, 1)")
    return full


def attention_heads(channels: int, num_heads: int, num_head_channels: int) -> int:
    """Head count of an attention block: fixed, or channels / num_head_channels."""
    if num_head_channels == -1:
        require(
            num_heads >= 1 and channels % num_heads == 0, f"{channels} channels do not split into {num_heads} heads"
        )
        return num_heads
    require(
        num_head_channels >= 1 and channels % num_head_channels == 0,
        f"{channels} channels do not split into heads of num_head_channels={num_head_channels}",
    )
    return channels // num_head_channels


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding [cos | sin] of (possibly fractional) timesteps."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


class GroupNorm32(nn.GroupNorm):
    """GroupNorm computed in float32 whatever the input dtype (stable under autocast)."""

    def forward(self, x):
        return super().forward(x.float()).type(x.dtype)


def _zeroed(module: nn.Module) -> nn.Module:
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


class TimestepSequential(nn.Sequential):
    """A Sequential whose ResBlocks also receive the timestep embedding."""

    def forward(self, x, emb):
        for layer in self:
            x = layer(x, emb) if isinstance(layer, ResBlock) else layer(x)
        return x


class ResBlock(nn.Module):
    """`resample` "up"/"down" resizes both paths between the input norm and conv
    (guided-diffusion's resblock_updown); it adds no parameters."""

    def __init__(self, channels, emb_channels, out_channels, dropout, groups, scale_shift, resample=None):
        super().__init__()
        self.scale_shift = scale_shift
        self.resample = resample
        self.in_layers = nn.Sequential(
            GroupNorm32(groups, channels), nn.SiLU(), nn.Conv2d(channels, out_channels, 3, padding=1)
        )
        self.emb_layers = nn.Sequential(
            nn.SiLU(), nn.Linear(emb_channels, 2 * out_channels if scale_shift else out_channels)
        )
        self.out_layers = nn.Sequential(
            GroupNorm32(groups, out_channels),
            nn.SiLU(),
            nn.Dropout(p=dropout),
            _zeroed(nn.Conv2d(out_channels, out_channels, 3, padding=1)),
        )
        self.skip_connection = nn.Identity() if out_channels == channels else nn.Conv2d(channels, out_channels, 1)

    def forward(self, x, emb):
        if self.resample:
            h = _resampled(self.in_layers[:-1](x), self.resample)
            x = _resampled(x, self.resample)
            h = self.in_layers[-1](h)
        else:
            h = self.in_layers(x)
        e = self.emb_layers(emb).type(h.dtype)[:, :, None, None]
        if self.scale_shift:
            scale, shift = e.chunk(2, dim=1)
            h = self.out_layers[0](h) * (1 + scale) + shift
            h = self.out_layers[1:](h)
        else:
            h = self.out_layers(h + e)
        return self.skip_connection(x) + h


def _resampled(x: torch.Tensor, how: str) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="nearest") if how == "up" else F.avg_pool2d(x, 2, 2)


class AttentionBlock(nn.Module):
    """Spatial self-attention. Legacy order (improved-diffusion): heads split from
    the fused qkv, then q, k, v per head; new order: q, k, v first, then heads."""

    def __init__(self, channels, num_heads, groups, new_order=False):
        super().__init__()
        require(channels % num_heads == 0, f"{channels} channels do not split into {num_heads} heads")
        self.num_heads = num_heads
        self.new_order = new_order
        self.norm = GroupNorm32(groups, channels)
        self.qkv = nn.Conv1d(channels, 3 * channels, 1)
        self.proj_out = _zeroed(nn.Conv1d(channels, channels, 1))

    def forward(self, x):
        b, c, *spatial = x.shape
        x = x.reshape(b, c, -1)
        qkv = self.qkv(self.norm(x))
        if self.new_order:
            q, k, v = (part.reshape(b * self.num_heads, -1, qkv.shape[-1]) for part in qkv.chunk(3, dim=1))
        else:
            q, k, v = qkv.reshape(b * self.num_heads, -1, qkv.shape[-1]).chunk(3, dim=1)
        scale = 1.0 / math.sqrt(math.sqrt(q.shape[1]))
        weight = torch.einsum("bct,bcs->bts", q * scale, k * scale)
        weight = torch.softmax(weight.float(), dim=-1).type(weight.dtype)
        h = torch.einsum("bts,bcs->bct", weight, v).reshape(b, -1, x.shape[-1])
        return (x + self.proj_out(h)).reshape(b, c, *spatial)


class Downsample(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.op = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x):
        return self.op(x)


class Upsample(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class UNet(nn.Module):
    """eps(x_t, t) or x0(x_t, t); the prediction type lives in the checkpoint header."""

    def __init__(self, config: dict):
        super().__init__()
        cfg = unet_config(config)
        self.config = cfg
        mc, groups, drop = cfg["model_channels"], cfg["norm_groups"], cfg["dropout"]
        ss, updown = cfg["use_scale_shift_norm"], cfg["resblock_updown"]
        emb_dim = 4 * mc
        attn_rates = {cfg["image_size"] // r for r in cfg["attention_resolutions"] if r > 0}
        self.out_channels = cfg["in_channels"] * (2 if cfg["learn_sigma"] else 1)
        heads_up = cfg["num_heads"] if cfg["num_heads_upsample"] == -1 else cfg["num_heads_upsample"]

        self.time_embed = nn.Sequential(nn.Linear(mc, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        if cfg["num_classes"]:
            self.label_emb = nn.Embedding(cfg["num_classes"], emb_dim)

        def res(cin, cout, resample=None):
            return ResBlock(cin, emb_dim, cout, drop, groups, ss, resample)

        def attn(ch, num_heads):
            heads = attention_heads(ch, num_heads, cfg["num_head_channels"])
            return AttentionBlock(ch, heads, groups, cfg["use_new_attention_order"])

        mult = cfg["channel_mult"]
        ch = mult[0] * mc  # guided-diffusion's input_ch: the stem already has the first level's width
        self.input_blocks = nn.ModuleList([TimestepSequential(nn.Conv2d(cfg["in_channels"], ch, 3, padding=1))])
        skip_chans, rate = [ch], 1
        for level, m in enumerate(mult):
            for _ in range(cfg["num_res_blocks"]):
                layers = [res(ch, m * mc)]
                ch = m * mc
                if rate in attn_rates:
                    layers.append(attn(ch, cfg["num_heads"]))
                self.input_blocks.append(TimestepSequential(*layers))
                skip_chans.append(ch)
            if level != len(mult) - 1:
                self.input_blocks.append(TimestepSequential(res(ch, ch, "down") if updown else Downsample(ch)))
                skip_chans.append(ch)
                rate *= 2
        self.middle_block = TimestepSequential(res(ch, ch), attn(ch, cfg["num_heads"]), res(ch, ch))
        self.output_blocks = nn.ModuleList()
        for level, m in reversed(list(enumerate(mult))):
            for i in range(cfg["num_res_blocks"] + 1):
                layers = [res(ch + skip_chans.pop(), m * mc)]
                ch = m * mc
                if rate in attn_rates:
                    layers.append(attn(ch, heads_up))
                if level and i == cfg["num_res_blocks"]:
                    layers.append(res(ch, ch, "up") if updown else Upsample(ch))
                    rate //= 2
                self.output_blocks.append(TimestepSequential(*layers))
        self.out = nn.Sequential(
            GroupNorm32(groups, ch), nn.SiLU(), _zeroed(nn.Conv2d(ch, self.out_channels, 3, padding=1))
        )

    def forward(self, x, t, y=None):
        emb = self.time_embed(timestep_embedding(t * self.config["time_scale"], self.config["model_channels"]))
        if self.config["num_classes"]:
            if y is None:
                raise DstabError("this UNet is class-conditional: pass class labels y")
            emb = emb + self.label_emb(y)
        skips, h = [], x
        for block in self.input_blocks:
            h = block(h, emb)
            skips.append(h)
        h = self.middle_block(h, emb)
        for block in self.output_blocks:
            h = block(torch.cat([h, skips.pop()], dim=1), emb)
        return self.out(h.type(x.dtype))
