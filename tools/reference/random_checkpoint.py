#!/usr/bin/python3
"""Random tiny DeepSeek checkpoints (tiny-v3, tiny-v2) in F32, BF16 or FP8, for developing the reference.

The real fixtures use `whale init`; this writer exists so the reference can be exercised on its own and
so its tests do not depend on whale. One float32 "master" draw per (preset, seed) feeds all three
dtypes, so the BF16 and FP8 files are roundings of the F32 one (spec 3.2 decides which tensors stay
BF16/F32 in an FP8 checkpoint):
  f32:  every tensor F32;
  bf16: every tensor BF16 (round to nearest even) except e_score_correction_bias (F32);
  fp8:  attention/MLP/expert projections F8_E4M3 with F32 `<name>_scale_inv` 128x128 block multipliers
        (scale = amax / 448, round to nearest even); router gate, embeddings, heads, norms and eh_proj BF16;
        e_score_correction_bias F32.
"""

import argparse
import copy
import json
import os
import re
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_np import encode_bf16, quantize_fp8, write_safetensors  # noqa: E402

_COMMON = {
    "hidden_act": "silu",
    "attention_bias": False,
    "tie_word_embeddings": False,
    "bos_token_id": 0,
    "eos_token_id": 1,
    "moe_layer_freq": 1,
    "rms_norm_eps": 1e-6,
    "rope_theta": 10000,
    "max_position_embeddings": 1024,
}

PRESETS = {
    "tiny-v3": dict(
        _COMMON,
        architectures=["DeepseekV3ForCausalLM"],
        model_type="deepseek_v3",
        vocab_size=512,
        hidden_size=200,
        intermediate_size=320,
        moe_intermediate_size=64,
        num_hidden_layers=3,
        first_k_dense_replace=1,
        num_nextn_predict_layers=1,
        num_attention_heads=4,
        num_key_value_heads=4,
        q_lora_rank=96,
        kv_lora_rank=64,
        qk_nope_head_dim=32,
        qk_rope_head_dim=16,
        v_head_dim=32,
        n_routed_experts=16,
        n_shared_experts=1,
        num_experts_per_tok=4,
        n_group=4,
        topk_group=2,
        topk_method="noaux_tc",
        scoring_func="sigmoid",
        norm_topk_prob=True,
        routed_scaling_factor=2.5,
        rope_scaling={
            "type": "yarn",
            "factor": 4,
            "original_max_position_embeddings": 256,
            "beta_fast": 32,
            "beta_slow": 1,
            "mscale": 1.0,
            "mscale_all_dim": 1.0,
        },
    ),
    "tiny-v2": dict(
        _COMMON,
        architectures=["DeepseekV2ForCausalLM"],
        model_type="deepseek_v2",
        vocab_size=512,
        hidden_size=160,
        intermediate_size=256,
        moe_intermediate_size=48,
        num_hidden_layers=3,
        first_k_dense_replace=1,
        num_attention_heads=4,
        num_key_value_heads=4,
        q_lora_rank=None,
        kv_lora_rank=64,
        qk_nope_head_dim=32,
        qk_rope_head_dim=16,
        v_head_dim=32,
        n_routed_experts=8,
        n_shared_experts=2,
        num_experts_per_tok=3,
        n_group=4,
        topk_group=2,
        topk_method="group_limited_greedy",
        scoring_func="softmax",
        norm_topk_prob=False,
        routed_scaling_factor=1.5,
        rope_scaling={
            "type": "yarn",
            "factor": 4,
            "original_max_position_embeddings": 256,
            "beta_fast": 32,
            "beta_slow": 1,
            "mscale": 0.707,
            "mscale_all_dim": 0.707,
        },
    ),
}

FP8_QUANTIZATION = {"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8", "weight_block_size": [128, 128]}

# Projections stored as FP8 in an FP8 checkpoint (spec 3.2); every other tensor keeps BF16 (or F32 for the bias).
_FP8_NAME = re.compile(
    r"^model\.layers\.\d+\.(self_attn\.(q_a_proj|q_b_proj|q_proj|kv_a_proj_with_mqa|kv_b_proj|o_proj)"
    r"|mlp\.(gate_proj|up_proj|down_proj)"
    r"|mlp\.experts\.\d+\.(gate_proj|up_proj|down_proj)"
    r"|mlp\.shared_experts\.(gate_proj|up_proj|down_proj))\.weight$"
)


def stored_dtype(name, dtype):
    """The dtype tensor `name` has in a checkpoint of kind dtype ('f32', 'bf16', 'fp8')."""
    if dtype == "f32" or name.endswith("e_score_correction_bias"):
        return "F32"
    if dtype == "fp8" and _FP8_NAME.match(name):
        return "F8_E4M3"
    return "BF16"


def master_weights(cfg, seed):
    """{name: float32 array} for every tensor of the architecture, HF names and [out, in] shapes."""
    rng = np.random.default_rng(seed)
    D, V, H = cfg["hidden_size"], cfg["vocab_size"], cfg["num_attention_heads"]
    dn, dr, dv = cfg["qk_nope_head_dim"], cfg["qk_rope_head_dim"], cfg["v_head_dim"]
    r, rq = cfg["kv_lora_rank"], cfg["q_lora_rank"]
    w = {}

    def linear(name, out_features, in_features):
        w[name] = (rng.standard_normal((out_features, in_features)) / np.sqrt(in_features)).astype(np.float32)

    def norm(name, size):
        w[name] = rng.uniform(0.75, 1.25, size).astype(np.float32)  # not all ones, so the weight multiply counts

    def block(layer):
        p = f"model.layers.{layer}."
        norm(p + "input_layernorm.weight", D)
        norm(p + "post_attention_layernorm.weight", D)
        if rq:
            linear(p + "self_attn.q_a_proj.weight", rq, D)
            norm(p + "self_attn.q_a_layernorm.weight", rq)
            linear(p + "self_attn.q_b_proj.weight", H * (dn + dr), rq)
        else:
            linear(p + "self_attn.q_proj.weight", H * (dn + dr), D)
        linear(p + "self_attn.kv_a_proj_with_mqa.weight", r + dr, D)
        norm(p + "self_attn.kv_a_layernorm.weight", r)
        linear(p + "self_attn.kv_b_proj.weight", H * (dn + dv), r)
        linear(p + "self_attn.o_proj.weight", D, H * dv)
        if layer >= cfg["first_k_dense_replace"] and layer % cfg["moe_layer_freq"] == 0:
            E, Im = cfg["n_routed_experts"], cfg["moe_intermediate_size"]
            linear(p + "mlp.gate.weight", E, D)
            if cfg["topk_method"] == "noaux_tc":
                # Mixed signs so a negative bias can pull an expert below zero (spec 5.2 mask note).
                w[p + "mlp.gate.e_score_correction_bias"] = rng.normal(0.0, 0.1, E).astype(np.float32)
            for e in range(E):
                linear(f"{p}mlp.experts.{e}.gate_proj.weight", Im, D)
                linear(f"{p}mlp.experts.{e}.up_proj.weight", Im, D)
                linear(f"{p}mlp.experts.{e}.down_proj.weight", D, Im)
            Is = cfg["n_shared_experts"] * Im
            if Is:
                linear(p + "mlp.shared_experts.gate_proj.weight", Is, D)
                linear(p + "mlp.shared_experts.up_proj.weight", Is, D)
                linear(p + "mlp.shared_experts.down_proj.weight", D, Is)
        else:
            I = cfg["intermediate_size"]
            linear(p + "mlp.gate_proj.weight", I, D)
            linear(p + "mlp.up_proj.weight", I, D)
            linear(p + "mlp.down_proj.weight", D, I)

    w["model.embed_tokens.weight"] = rng.standard_normal((V, D)).astype(np.float32)
    norm("model.norm.weight", D)
    linear("lm_head.weight", V, D)
    for layer in range(cfg["num_hidden_layers"]):
        block(layer)
    if cfg.get("num_nextn_predict_layers", 0):
        n = cfg["num_hidden_layers"]
        p = f"model.layers.{n}."
        block(n)
        w[p + "embed_tokens.weight"] = w["model.embed_tokens.weight"].copy()  # stored copies (spec 3.2)
        w[p + "shared_head.head.weight"] = w["lm_head.weight"].copy()
        norm(p + "enorm.weight", D)
        norm(p + "hnorm.weight", D)
        linear(p + "eh_proj.weight", D, 2 * D)
        norm(p + "shared_head.norm.weight", D)
    return w


def write_checkpoint(out_dir, preset, dtype, seed, shards=1):
    cfg = copy.deepcopy(PRESETS[preset])
    if dtype == "fp8":
        cfg["quantization_config"] = FP8_QUANTIZATION
    cfg["torch_dtype"] = {"f32": "float32", "bf16": "bfloat16", "fp8": "bfloat16"}[dtype]
    stored = {}
    for name, value in master_weights(cfg, seed).items():
        kind = stored_dtype(name, dtype)
        if kind == "F32":
            stored[name] = ("F32", value)
        elif kind == "BF16":
            stored[name] = ("BF16", encode_bf16(value))
        else:
            codes, scale = quantize_fp8(value)
            stored[name] = ("F8_E4M3", codes)
            stored[name + "_scale_inv"] = ("F32", scale)
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    names = sorted(stored)
    if shards == 1:
        write_safetensors(os.path.join(out_dir, "model.safetensors"), stored, {"format": "pt"})
        return
    weight_map = {}
    for s in range(shards):
        file = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        part = {n: stored[n] for n in names[s::shards]}
        write_safetensors(os.path.join(out_dir, file), part, {"format": "pt"})
        weight_map.update({n: file for n in part})
    total = sum(np.asarray(a).nbytes for _, a in stored.values())
    with open(os.path.join(out_dir, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=1)


def main():
    parser = argparse.ArgumentParser(description="write a random tiny DeepSeek checkpoint")
    parser.add_argument("--preset", choices=sorted(PRESETS), required=True)
    parser.add_argument("--dtype", choices=["f32", "bf16", "fp8"], required=True)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--shards", type=int, default=1)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    write_checkpoint(args.out, args.preset, args.dtype, args.seed, args.shards)


if __name__ == "__main__":
    main()
