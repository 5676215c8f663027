"""improved-diffusion and guided-diffusion checkpoints (`model*.pt`, `ema_*.pt`).

These are bare state dicts of OpenAI's `UNetModel`; dstab's UNet has the same
key names. What the weights fix (widths, levels, blocks, attention positions,
learned sigma, classes, scale-shift norm, resampling ResBlocks) is read from
them; what they cannot tell (image size, heads, attention order, the diffusion
schedule, timestep rescaling) comes from the original tool's flags: a preset,
a sidecar JSON (`<checkpoint>.json` or `flags.json` beside it) or the `flags`
hint. Flags that contradict the weights are refused. With no flags at all, a
file whose shapes equal a published model's gets that model's preset.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from .. import models
from ..bundle import Bundle, make_header
from ..diffusion import Diffusion
from ..errors import DstabError
from .state_dicts import Layout, has_keys, module_from_state, read_state_dict

SIGNATURE = ("time_embed.0.weight", "input_blocks.0.0.weight", "out.2.weight")

# Flags of the published models, as their READMEs give them, on top of each tool's defaults.
PRESETS = {
    # improved-diffusion README, "Unconditional CIFAR-10 with our L_hybrid objective" (cifar10_uncond_50M_500K.pt)
    "improved-diffusion-cifar10": {
        "codebase": "improved-diffusion",
        "image_size": 32,
        "num_channels": 128,
        "num_res_blocks": 3,
        "learn_sigma": True,
        "dropout": 0.3,
        "diffusion_steps": 4000,
        "noise_schedule": "cosine",
        "dataset": "cifar10",
    },
    # guided-diffusion README, ImageNet 128x128 conditional model (128x128_diffusion.pt)
    "guided-diffusion-imagenet128": {
        "codebase": "guided-diffusion",
        "attention_resolutions": "32,16,8",
        "class_cond": True,
        "diffusion_steps": 1000,
        "image_size": 128,
        "learn_sigma": True,
        "noise_schedule": "linear",
        "num_channels": 256,
        "num_heads": 4,
        "num_res_blocks": 2,
        "resblock_updown": True,
        "use_fp16": True,
        "use_scale_shift_norm": True,
        "dataset": "imagenet128",
    },
}

# model_and_diffusion_defaults() of each tool (script_util.py); they differ in rescale_timesteps
_COMMON_DEFAULTS = {
    "num_channels": 128,
    "num_res_blocks": 2,
    "num_heads": 4,
    "num_heads_upsample": -1,
    "num_head_channels": -1,
    "attention_resolutions": "16,8",
    "channel_mult": "",
    "dropout": 0.0,
    "learn_sigma": False,
    "class_cond": False,
    "use_scale_shift_norm": True,
    "resblock_updown": False,
    "use_new_attention_order": False,
    "diffusion_steps": 1000,
    "noise_schedule": "linear",
    "predict_xstart": False,
    "dataset": "unknown",
}
DEFAULTS = {
    # sigma_small=False: without learned sigma, p_mean_variance samples with FIXED_LARGE (beta_t)
    "improved-diffusion": {**_COMMON_DEFAULTS, "rescale_timesteps": True, "sigma_small": False},
    # no sigma_small: create_model_and_diffusion never passes it, so sampling is always FIXED_LARGE
    "guided-diffusion": {**_COMMON_DEFAULTS, "rescale_timesteps": False},
}
# scripts/image_sample.py's --clip_denoised (default True in both tools): x0 estimates clipped to [-1, 1]
SAMPLING_DEFAULTS = {"clip_denoised": True}
# flags that only guided-diffusion has: their presence names the codebase
GUIDED_ONLY = ("num_head_channels", "resblock_updown", "use_new_attention_order", "use_fp16", "channel_mult")
# flags that change nothing dstab computes in eval mode (training, memory or sampling options)
IGNORED = ("use_fp16", "use_checkpoint", "timestep_respacing", "use_kl", "rescale_learned_sigmas")
# channel_mult by image size when the flag is empty (script_util.create_model)
CHANNEL_MULT = {256: [1, 1, 2, 2, 4, 4], 128: [1, 1, 2, 3, 4], 64: [1, 2, 3, 4], 32: [1, 2, 2, 2]}
NUM_CLASSES = 1000  # both tools' class-conditional models are ImageNet's


def _parsed(value):
    """Flag values as the tools' argparse reads them: 'True', '16,8', '0.3' ..."""
    if not isinstance(value, str):
        return value
    if value in ("True", "true", "False", "false"):
        return value.lower() == "true"
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value


POSITIVE = ("image_size", "num_channels", "num_res_blocks", "num_heads", "diffusion_steps")
MINUS_ONE_OR_POSITIVE = ("num_heads_upsample", "num_head_channels")  # -1: "as num_heads" / "use num_heads"
INT_LISTS = ("attention_resolutions", "channel_mult")


def _value_problem(name: str, value, default) -> str | None:
    """Why flag `name` cannot take `value` (its type follows the tool's default), or None."""
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if name in POSITIVE and not (is_int and value >= 1):
        return "must be a positive integer"
    if name in MINUS_ONE_OR_POSITIVE and not (is_int and (value == -1 or value >= 1)):
        return "must be -1 or a positive integer"
    if isinstance(default, bool) and not isinstance(value, bool):
        return "must be True or False"
    if name == "dropout" and not (isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 1):
        return "must be a number in [0, 1)"
    if name in INT_LISTS:
        try:
            if any(v < 1 for v in _int_list(value)):
                return "must list positive integers, e.g. 16,8"
        except (TypeError, ValueError):
            return "must list positive integers, e.g. 16,8"
    return None


def _int_list(value) -> list[int]:
    if isinstance(value, (list, tuple)):
        return [int(v) for v in value]
    return [int(v) for v in str(value).split(",") if v.strip()]


def full_flags(flags: dict) -> dict:
    """The given flags completed with the defaults of the codebase they come from."""
    flags = {k: _parsed(v) for k, v in flags.items()}
    codebase = flags.get("codebase") or (
        "guided-diffusion" if any(k in flags for k in GUIDED_ONLY) else "improved-diffusion"
    )
    if codebase not in DEFAULTS:
        raise DstabError(f"unknown codebase {codebase!r}; choose one of {sorted(DEFAULTS)}")
    known = set(DEFAULTS[codebase]) | set(IGNORED) | set(SAMPLING_DEFAULTS) | {"codebase", "image_size"}
    if codebase == "guided-diffusion" and "sigma_small" in flags:
        raise DstabError(
            "guided-diffusion has no sigma_small flag: its create_model_and_diffusion always samples with the "
            "large variance beta_t (or the learned one with learn_sigma=True); drop the flag"
        )
    unknown = sorted(set(flags) - known)
    if unknown:
        raise DstabError(f"unknown {codebase} flags {unknown}; known flags are {sorted(known)}")
    defaults = {**DEFAULTS[codebase], **SAMPLING_DEFAULTS}
    for name, value in flags.items():
        if problem := _value_problem(name, value, defaults.get(name)):
            raise DstabError(
                f"flag {name}={value!r} {problem}; correct it where the flags come from "
                "(--flag, the JSON beside the checkpoint, or --preset)"
            )
    return {**defaults, **flags, "codebase": codebase}


def arch_from_flags(flags: dict) -> dict:
    """dstab UNet config for a model built by the original tool with these flags."""
    f = full_flags(flags)
    if "image_size" not in f:
        raise DstabError("the flags need image_size (the weights cannot tell it: the UNet is convolutional)")
    size = int(f["image_size"])
    mult = _int_list(f["channel_mult"]) if f["channel_mult"] != "" else CHANNEL_MULT.get(size)
    if mult is None:
        raise DstabError(f"no default channel_mult for image_size {size}; pass channel_mult (e.g. '1,2,2,2')")
    return {
        "arch": "unet",
        "image_size": size,
        "in_channels": 3,
        "model_channels": int(f["num_channels"]),
        "num_res_blocks": int(f["num_res_blocks"]),
        "attention_resolutions": _int_list(f["attention_resolutions"]),
        "channel_mult": mult,
        "dropout": float(f["dropout"]),
        "num_heads": int(f["num_heads"]),
        "num_heads_upsample": int(f["num_heads_upsample"]),
        "num_head_channels": int(f["num_head_channels"]),
        "use_new_attention_order": bool(f["use_new_attention_order"]),
        "use_scale_shift_norm": bool(f["use_scale_shift_norm"]),
        "resblock_updown": bool(f["resblock_updown"]),
        "learn_sigma": bool(f["learn_sigma"]),
        "num_classes": NUM_CLASSES if f["class_cond"] else None,
        "norm_groups": 32,
        # rescale_timesteps feeds the network t * 1000 / T
        "time_scale": 1000.0 / int(f["diffusion_steps"]) if f["rescale_timesteps"] else 1.0,
    }


def diffusion_from_flags(flags: dict) -> Diffusion:
    """The schedule and the sampling of gaussian_diffusion.p_mean_variance for these flags."""
    f = full_flags(flags)
    learned = bool(f["learn_sigma"])
    small = bool(f.get("sigma_small", False))  # guided-diffusion: never small
    return Diffusion(
        schedule=f["noise_schedule"],
        T=int(f["diffusion_steps"]),
        prediction="x0" if f["predict_xstart"] else "eps",
        learn_sigma=learned,
        fixed_variance="small" if learned or small else "large",  # with learned sigma it is unused
        clip_denoised=bool(f["clip_denoised"]),
    )


def _level_blocks(state: dict) -> tuple[int, int]:
    """(levels, res blocks per level) from the decoder: L * (n + 1) blocks, L - 1 of them upsample."""
    count = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("output_blocks."))
    ups = 0
    for i in range(count):
        inner = {int(k.split(".")[2]) for k in state if k.startswith(f"output_blocks.{i}.")}
        ups += any(
            f"output_blocks.{i}.{j}.conv.weight" in state or f"output_blocks.{i}.{j}.in_layers.0.weight" in state
            for j in inner - {0}
        )
    levels = ups + 1
    if count % levels:
        raise DstabError(f"{count} decoder blocks do not split into {levels} levels: not an OpenAI UNet layout")
    return levels, count // levels - 1


def weight_facts(state: dict) -> dict:
    """Everything about the architecture that the weights determine, as flag names."""
    mc = state["time_embed.0.weight"].shape[1]
    stem_out, in_channels = state["input_blocks.0.0.weight"].shape[:2]
    levels, per_level = _level_blocks(state)
    mult, attn_rates, idx, rate, updown = [], [], 1, 1, False
    for level in range(levels):
        for _ in range(per_level):
            mult.append(state[f"input_blocks.{idx}.0.out_layers.3.weight"].shape[0] // mc)
            if f"input_blocks.{idx}.1.qkv.weight" in state and rate not in attn_rates:
                attn_rates.append(rate)
            idx += 1
        if level != levels - 1:
            updown = f"input_blocks.{idx}.0.in_layers.0.weight" in state
            idx, rate = idx + 1, rate * 2
    width = state["input_blocks.1.0.out_layers.3.weight"].shape[0]
    return {
        "num_channels": mc,
        "in_channels": in_channels,
        "stem_channels": stem_out,
        "num_res_blocks": per_level,
        "channel_mult": mult[::per_level],
        "attention_rates": attn_rates,
        "learn_sigma": state["out.2.weight"].shape[0] == 2 * in_channels,
        "class_cond": "label_emb.weight" in state,
        "num_classes": state["label_emb.weight"].shape[0] if "label_emb.weight" in state else None,
        "use_scale_shift_norm": state["input_blocks.1.0.emb_layers.1.weight"].shape[0] == 2 * width,
        "resblock_updown": updown and levels > 1,
    }


INFERABLE = ("num_channels", "num_res_blocks", "learn_sigma", "class_cond", "use_scale_shift_norm", "resblock_updown")


def _contradictions(full: dict, facts: dict) -> list[str]:
    """Flags (completed) that disagree with what the weights say."""
    wrong = [f"{k}={full[k]} but the weights have {facts[k]}" for k in INFERABLE if _parsed(full[k]) != facts[k]]
    arch = arch_from_flags(full)
    if arch["channel_mult"] != facts["channel_mult"]:
        wrong.append(f"channel_mult={arch['channel_mult']} but the weights have {facts['channel_mult']}")
    rates = sorted(arch["image_size"] // r for r in arch["attention_resolutions"] if r > 0)
    if rates != sorted(facts["attention_rates"]):
        seen = sorted((arch["image_size"] // r for r in facts["attention_rates"]), reverse=True)
        wrong.append(f"attention_resolutions={arch['attention_resolutions']} but the weights attend at {seen}")
    return wrong


def completed(given: dict, facts: dict) -> dict:
    """Given flags, then what the weights say for flags not given, then the codebase's defaults."""
    given = dict(given)
    if facts["resblock_updown"]:
        given.setdefault("codebase", "guided-diffusion")  # improved-diffusion has no resampling ResBlocks
    full = full_flags(given)
    for key in INFERABLE:
        if key not in given:
            full[key] = facts[key]
    if "channel_mult" not in given:
        full["channel_mult"] = ",".join(str(m) for m in facts["channel_mult"])
    if "attention_resolutions" not in given and "image_size" in full:
        full["attention_resolutions"] = ",".join(str(int(full["image_size"]) // r) for r in facts["attention_rates"])
    return full


def _matching_preset(facts: dict) -> str | None:
    for name, flags in PRESETS.items():
        if not _contradictions(full_flags(flags), facts):
            return name
    return None


def _sidecar_flags(path: Path) -> tuple[dict, str] | None:
    for candidate in (path.with_suffix(".json"), path.parent / "flags.json"):
        if candidate.is_file():
            try:
                flags = json.loads(candidate.read_text())
            except json.JSONDecodeError as exc:
                raise DstabError(f"{candidate}: not valid JSON ({exc}); it should map flag names to values") from None
            if not isinstance(flags, dict):
                raise DstabError(f"{candidate}: should be a JSON object mapping flag names to values")
            return flags, str(candidate)
    return None


def resolve_flags(path: Path, facts: dict, preset: str | None = None, flags: dict | None = None) -> tuple[dict, str]:
    """Flags for this file and where they came from: the preset (or else a sidecar JSON, or else the
    preset whose shapes the weights have), with `flags` on top."""
    if preset is not None and preset not in PRESETS:
        raise DstabError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    base, source = (dict(PRESETS[preset]), f"preset {preset}") if preset else ({}, "")
    sidecar = None if preset else _sidecar_flags(path)
    if sidecar:
        base, source = sidecar[0], f"sidecar {sidecar[1]}"
    if flags:
        base, source = {**base, **flags}, (source + " + " if source else "") + "given flags"
    if not source:
        matched = _matching_preset(facts)
        if matched is None:
            raise DstabError(
                f"{path}: the weights do not say the image size or the diffusion schedule; convert it with "
                f"`python -m dstab convert {path.name} -o out.safetensors` and a preset ({', '.join(PRESETS)}) or "
                f"its training flags (--flag image_size=64 --flag diffusion_steps=4000 ...), or put the flags "
                f"in {path.with_suffix('.json').name}"
            )
        base, source = dict(PRESETS[matched]), f"preset {matched} {SHAPE_MATCH}"
    return base, source


SHAPE_MATCH = "(matched by weight shapes)"


def assumption(source: str, full: dict) -> str | None:
    """The sentence `convert` prints when the schedule was taken from a shape match, else None."""
    if not source.endswith(SHAPE_MATCH):
        return None
    return (
        f"the schedule was not given: {source} assumes noise_schedule={full['noise_schedule']}, "
        f"diffusion_steps={full['diffusion_steps']}, image_size={full['image_size']}; a model of these shapes "
        f"trained otherwise needs its flags, e.g. --flag noise_schedule=linear --flag diffusion_steps=1000"
    )


def _step_and_ema(path: Path) -> tuple[int, float | None]:
    """improved-diffusion names checkpoints model{step}.pt and ema_{rate}_{step}.pt."""
    ema = re.fullmatch(r"ema_([0-9.]+)_(\d+)", path.stem)
    if ema:
        return int(ema.group(2)), float(ema.group(1))
    plain = re.fullmatch(r"model(\d+)", path.stem)
    return (int(plain.group(1)) if plain else 0), None


def load(
    path: Path, preset: str | None = None, flags: dict | None = None, dataset: str | None = None, **_hints
) -> Bundle:
    state = read_state_dict(path)
    try:
        facts = weight_facts(state)
    except KeyError as exc:  # the signature keys are there, the rest is not
        raise DstabError(
            f"{path}: its keys look like an improved/guided-diffusion UNet, but the blocks are incomplete: "
            f"no {exc} ({len(state)} keys); is the file truncated or a partial state dict?"
        ) from None
    chosen, source = resolve_flags(path, facts, preset, flags)
    full = completed(chosen, facts)
    wrong = _contradictions(full, facts)
    if wrong:
        raise DstabError(f"{path}: flags from {source} contradict the weights: " + "; ".join(wrong))
    arch = models.normalise({**arch_from_flags(full), "in_channels": facts["in_channels"]})
    arch["num_classes"] = facts["num_classes"]
    model = module_from_state(arch, state, path)
    diffusion = diffusion_from_flags(full)
    step, ema_rate = _step_and_ema(path)
    header = make_header(
        "dm",
        arch,
        dataset=dataset or str(full["dataset"]),
        step=step,
        seed=-1,  # not recorded by the original tools
        diffusion=diffusion.to_config(),
        name=path.stem,
        imported_from={
            "format": full["codebase"],
            "file": path.name,
            "flags_from": source,
            "flags": {k: v for k, v in full.items() if k != "dataset"},
            "ema_rate": ema_rate,
            **({"assumed": note} if (note := assumption(source, full)) else {}),
        },
    )
    return Bundle(header=header, modules={"model": model}, path=path, diffusion=diffusion)


def detect(path: Path) -> bool:
    return has_keys(path, SIGNATURE)


LAYOUT = Layout(
    "improved/guided-diffusion UNet",
    SIGNATURE,
    r"(time_embed|label_emb|input_blocks|middle_block|output_blocks|out)\.",
    r"[\w.]*(weight|bias)$",
    "Load it with --preset or --flag as README 'Use your own checkpoints' shows.",
)
