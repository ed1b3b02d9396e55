"""DeepSeek-V2/V3 config.json: parsed once, validated, derived sizes as properties (spec section 2)."""

import json
import math
from dataclasses import dataclass
from typing import Optional


class ConfigError(Exception):
    pass


@dataclass(frozen=True)
class RopeScaling:
    """YaRN parameters (spec 4.5). factor 1 with no YaRN means plain RoPE."""

    factor: float
    original_max_position_embeddings: int
    beta_fast: float
    beta_slow: float
    mscale_all_dim: float


@dataclass(frozen=True)
class DeepSeekConfig:
    path: str
    model_type: str
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    moe_intermediate_size: int
    num_hidden_layers: int
    first_k_dense_replace: int
    moe_layer_freq: int
    num_attention_heads: int
    q_lora_rank: int  # 0: a single q_proj (V2-Lite)
    kv_lora_rank: int
    qk_nope_head_dim: int
    qk_rope_head_dim: int
    v_head_dim: int
    n_routed_experts: int  # 0: every layer is dense
    n_shared_experts: int
    num_experts_per_tok: int
    n_group: int
    topk_group: int
    topk_method: str
    scoring_func: str
    norm_topk_prob: bool
    routed_scaling_factor: float
    rms_norm_eps: float
    rope_theta: float
    rope_scaling: Optional[RopeScaling]
    num_nextn_predict_layers: int
    tie_word_embeddings: bool
    quantization_block: Optional[tuple]

    @property
    def qk_head_dim(self):
        return self.qk_nope_head_dim + self.qk_rope_head_dim

    @property
    def softmax_scale(self):
        """(qk_nope + qk_rope)^-1/2 * mscale(factor, mscale_all_dim)^2 when YaRN is configured (spec 4.5)."""
        scale = self.qk_head_dim**-0.5
        if self.rope_scaling is not None:
            m = yarn_get_mscale(self.rope_scaling.factor, self.rope_scaling.mscale_all_dim)
            scale *= m * m
        return scale

    def is_moe_layer(self, layer):
        return self.n_routed_experts > 0 and layer >= self.first_k_dense_replace and layer % self.moe_layer_freq == 0

    @property
    def has_mtp(self):
        return self.num_nextn_predict_layers > 0

    @property
    def experts_per_group(self):
        return self.n_routed_experts // self.n_group


def yarn_get_mscale(factor, m):
    return 1.0 if factor <= 1 else 0.1 * m * math.log(factor) + 1.0


def _field(path, cfg, name, kind, default=None, required=True, minimum=None):
    if name not in cfg or cfg[name] is None:
        if required and default is None:
            raise ConfigError(f"{path}: field {name} is missing, expected {kind.__name__}")
        return default
    value = cfg[name]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if kind is int and isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"{path}: field {name} is {value!r}, expected {kind.__name__}")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{path}: field {name} is {value!r}, expected >= {minimum}")
    return value


def load_config(path):
    with open(path) as f:
        try:
            cfg = json.load(f)
        except json.JSONDecodeError as e:
            raise ConfigError(f"{path}: not valid JSON: {e}") from None
    return parse_config(cfg, path)


def parse_config(cfg, path="<config>"):
    """cfg: the decoded config.json object; path names it in error messages."""
    if not isinstance(cfg, dict):
        raise ConfigError(f"{path}: expected a JSON object")
    model_type = _field(path, cfg, "model_type", str)
    if model_type not in ("deepseek_v2", "deepseek_v3"):
        raise ConfigError(f"{path}: field model_type is {model_type!r}, expected deepseek_v2 or deepseek_v3")
    if cfg.get("hidden_act", "silu") != "silu":
        raise ConfigError(f"{path}: field hidden_act is {cfg['hidden_act']!r}, expected silu")
    if cfg.get("attention_bias", False):
        raise ConfigError(f"{path}: field attention_bias is true, expected false (DeepSeek MLA has no biases)")

    n_routed = _field(path, cfg, "n_routed_experts", int, default=0, required=False, minimum=0)
    rope = None
    rs = cfg.get("rope_scaling")
    if rs is not None:
        kind = rs.get("type", rs.get("rope_type"))
        if kind != "yarn":
            raise ConfigError(f"{path}: field rope_scaling.type is {kind!r}, expected yarn (or no rope_scaling)")
        rp = f"{path} rope_scaling"
        # Softmax mscale uses mscale_all_dim (spec 10.6); the DeepSeek reference reads `mscale`, which the
        # official configs set to the same value, so it is the fallback.
        m_all = rs.get("mscale_all_dim", rs.get("mscale", 1.0))
        rope = RopeScaling(
            factor=_field(rp, rs, "factor", float, minimum=1.0),
            original_max_position_embeddings=_field(rp, rs, "original_max_position_embeddings", int, minimum=1),
            beta_fast=_field(rp, rs, "beta_fast", float, default=32.0, required=False),
            beta_slow=_field(rp, rs, "beta_slow", float, default=1.0, required=False),
            mscale_all_dim=float(m_all),
        )

    quant = cfg.get("quantization_config")
    block = None
    if quant is not None:
        if quant.get("quant_method") != "fp8" or quant.get("fmt", "e4m3") != "e4m3":
            raise ConfigError(f"{path}: quantization_config {quant!r}, expected quant_method fp8, fmt e4m3")
        block = tuple(quant.get("weight_block_size", [128, 128]))
        if len(block) != 2 or min(block) < 1:
            raise ConfigError(f"{path}: quantization_config.weight_block_size {block!r}, expected [rows, cols]")

    c = DeepSeekConfig(
        path=path,
        model_type=model_type,
        vocab_size=_field(path, cfg, "vocab_size", int, minimum=1),
        hidden_size=_field(path, cfg, "hidden_size", int, minimum=1),
        intermediate_size=_field(path, cfg, "intermediate_size", int, minimum=1),
        moe_intermediate_size=_field(path, cfg, "moe_intermediate_size", int, default=0, required=False),
        num_hidden_layers=_field(path, cfg, "num_hidden_layers", int, minimum=1),
        first_k_dense_replace=_field(path, cfg, "first_k_dense_replace", int, default=0, required=False, minimum=0),
        moe_layer_freq=_field(path, cfg, "moe_layer_freq", int, default=1, required=False, minimum=1),
        num_attention_heads=_field(path, cfg, "num_attention_heads", int, minimum=1),
        q_lora_rank=_field(path, cfg, "q_lora_rank", int, default=0, required=False, minimum=0),
        kv_lora_rank=_field(path, cfg, "kv_lora_rank", int, minimum=1),
        qk_nope_head_dim=_field(path, cfg, "qk_nope_head_dim", int, minimum=1),
        qk_rope_head_dim=_field(path, cfg, "qk_rope_head_dim", int, minimum=2),
        v_head_dim=_field(path, cfg, "v_head_dim", int, minimum=1),
        n_routed_experts=n_routed,
        n_shared_experts=_field(path, cfg, "n_shared_experts", int, default=0, required=False, minimum=0),
        num_experts_per_tok=_field(path, cfg, "num_experts_per_tok", int, default=0, required=False),
        n_group=_field(path, cfg, "n_group", int, default=1, required=False, minimum=1),
        topk_group=_field(path, cfg, "topk_group", int, default=1, required=False, minimum=1),
        topk_method=_field(path, cfg, "topk_method", str, default="greedy", required=False),
        scoring_func=_field(path, cfg, "scoring_func", str, default="softmax", required=False),
        norm_topk_prob=_field(path, cfg, "norm_topk_prob", bool, default=False, required=False),
        routed_scaling_factor=_field(path, cfg, "routed_scaling_factor", float, default=1.0, required=False),
        rms_norm_eps=_field(path, cfg, "rms_norm_eps", float, default=1e-6, required=False),
        rope_theta=_field(path, cfg, "rope_theta", float, default=10000.0, required=False),
        rope_scaling=rope,
        num_nextn_predict_layers=_field(path, cfg, "num_nextn_predict_layers", int, default=0, required=False, minimum=0),
        tie_word_embeddings=_field(path, cfg, "tie_word_embeddings", bool, default=False, required=False),
        quantization_block=block,
    )
    _validate(c)
    return c


def _validate(c):
    p = c.path
    if c.qk_rope_head_dim % 2:
        raise ConfigError(f"{p}: field qk_rope_head_dim is {c.qk_rope_head_dim}, expected an even number (RoPE pairs)")
    if c.n_routed_experts == 0:
        return
    if c.scoring_func not in ("sigmoid", "softmax"):
        raise ConfigError(f"{p}: field scoring_func is {c.scoring_func!r}, expected sigmoid or softmax")
    if c.topk_method not in ("noaux_tc", "greedy", "group_limited_greedy"):
        raise ConfigError(
            f"{p}: field topk_method is {c.topk_method!r}, expected noaux_tc, greedy or group_limited_greedy"
        )
    if not 1 <= c.num_experts_per_tok <= c.n_routed_experts:
        raise ConfigError(
            f"{p}: field num_experts_per_tok is {c.num_experts_per_tok}, expected 1..n_routed_experts ({c.n_routed_experts})"
        )
    if c.moe_intermediate_size < 1:
        raise ConfigError(f"{p}: field moe_intermediate_size is {c.moe_intermediate_size}, expected >= 1")
    if c.topk_method != "greedy":
        if c.n_routed_experts % c.n_group:
            raise ConfigError(
                f"{p}: field n_group is {c.n_group}, expected a divisor of n_routed_experts ({c.n_routed_experts})"
            )
        if not 1 <= c.topk_group <= c.n_group:
            raise ConfigError(f"{p}: field topk_group is {c.topk_group}, expected 1..n_group ({c.n_group})")
        if c.topk_group * c.experts_per_group < c.num_experts_per_tok:
            raise ConfigError(
                f"{p}: topk_group {c.topk_group} groups of {c.experts_per_group} experts hold fewer than "
                f"num_experts_per_tok ({c.num_experts_per_tok})"
            )
        if c.topk_method == "noaux_tc" and c.experts_per_group < 2:
            raise ConfigError(f"{p}: noaux_tc scores a group by its top-2 experts; n_group {c.n_group} leaves fewer")
