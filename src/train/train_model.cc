#include "train/train_model.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/rope.h"
#include "train/ops_linear.h"
#include "train/ops_loss.h"
#include "train/ops_norm.h"
#include "train/train_model_state.h"
#include "util/error.h"

namespace whale {

std::vector<int32_t> SegmentPositions(const TokenBatch& batch) {
  std::vector<int32_t> positions(batch.n_seqs * batch.seq_len);
  for (int64_t s = 0; s < batch.n_seqs; ++s) {
    int32_t position = 0;
    for (int64_t i = 0; i < batch.seq_len; ++i) {
      const int64_t t = s * batch.seq_len + i;
      if (i > 0 && batch.segments[t] != batch.segments[t - 1]) position = 0;
      positions[t] = position++;
    }
  }
  return positions;
}

namespace {

template <typename T>
std::span<const T> C(const std::vector<T>& v) {
  return std::span<const T>(v);
}

template <typename T>
std::span<const T> C(std::span<T> v) {
  return v;
}

template <typename T>
void Resize(std::vector<T>& v, int64_t n) {
  v.resize(static_cast<size_t>(n));
}

}  // namespace

template <typename T>
TrainModel<T>::TrainModel(ParameterSet<T>& params, ThreadPool* pool, Precision precision)
    : state_(new State) {
  State& s = *state_;
  const ModelConfig& c = params.config();
  s.params = &params;
  s.config = &params.config();
  s.pool = pool;
  s.precision = precision;
  if (precision == Precision::kFP8 && !std::is_same_v<T, float>)
    Fail("the FP8 recipe runs in float only");
  if (c.n_routed_experts > 0) {
    s.router = RouterParamsFor(c);
    ValidateRouterParams(s.router);
  }
  const auto& yarn = c.rope_scaling;
  s.inv_freq = YarnInverseFrequencies(c.qk_rope_head_dim, c.rope_theta, yarn ? yarn->factor : 1.0,
                                      yarn ? yarn->original_max_position_embeddings : 1,
                                      yarn ? yarn->beta_fast : 32.0, yarn ? yarn->beta_slow : 1.0);
  s.softmax_scale = c.softmax_scale();
  s.embed = &params.at("model.embed_tokens.weight");
  s.final_norm = &params.at("model.norm.weight");
  s.head = c.tie_word_embeddings ? s.embed : &params.at("lm_head.weight");
  s.n_main_blocks = c.num_hidden_layers;
  for (int64_t l = 0; l < c.num_stored_layers(); ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    const auto get = [&](const std::string& name) { return &params.at(p + name); };
    BlockParams<T> b;
    b.input_norm = get("input_layernorm.weight");
    b.post_norm = get("post_attention_layernorm.weight");
    if (c.q_lora_rank > 0) {
      b.attn.q_a = get("self_attn.q_a_proj.weight");
      b.attn.q_a_norm = get("self_attn.q_a_layernorm.weight");
      b.attn.q_b = get("self_attn.q_b_proj.weight");
    } else {
      b.attn.q = get("self_attn.q_proj.weight");
    }
    b.attn.kv_a = get("self_attn.kv_a_proj_with_mqa.weight");
    b.attn.kv_a_norm = get("self_attn.kv_a_layernorm.weight");
    b.attn.kv_b = get("self_attn.kv_b_proj.weight");
    b.attn.o = get("self_attn.o_proj.weight");
    const auto mlp = [&](const std::string& prefix, int64_t inter) {
      return MlpParams<T>{get(prefix + "gate_proj.weight"), get(prefix + "up_proj.weight"),
                          get(prefix + "down_proj.weight"), inter};
    };
    const bool mtp = l >= c.num_hidden_layers;
    b.is_moe = mtp || c.is_moe_layer(l);
    if (b.is_moe) {
      b.router = get("mlp.gate.weight");
      if (params.has(p + "mlp.gate.e_score_correction_bias"))
        b.bias = get("mlp.gate.e_score_correction_bias");
      for (int64_t e = 0; e < c.n_routed_experts; ++e)
        b.experts.push_back(mlp("mlp.experts." + std::to_string(e) + ".", c.moe_intermediate_size));
      b.has_shared = c.n_shared_experts > 0;
      if (b.has_shared) b.shared = mlp("mlp.shared_experts.", c.shared_intermediate_size());
      s.load_layers.push_back(l);
    } else {
      b.dense = mlp("mlp.", c.intermediate_size);
    }
    if (mtp) {
      s.mtp_enorm = get("enorm.weight");
      s.mtp_hnorm = get("hnorm.weight");
      s.mtp_eh_proj = get("eh_proj.weight");
      s.mtp_head_norm = get("shared_head.norm.weight");
    }
    s.blocks.push_back(std::move(b));
  }
  if (c.num_nextn_predict_layers > 1)
    Fail("training supports at most one MTP module; config has num_nextn_predict_layers = ",
         c.num_nextn_predict_layers);
  s.saved.resize(s.blocks.size());
  s.loads.assign(s.load_layers.size(), std::vector<int64_t>(c.n_routed_experts, 0));
}

template <typename T>
TrainModel<T>::~TrainModel() {
  delete state_;
}

template <typename T>
const std::vector<T>& TrainModel<T>::logits() const {
  return state_->logits;
}
template <typename T>
const std::vector<T>& TrainModel<T>::mtp_logits() const {
  return state_->mtp_logits;
}
template <typename T>
const std::vector<std::vector<int64_t>>& TrainModel<T>::expert_load() const {
  return state_->loads;
}
template <typename T>
const std::vector<int64_t>& TrainModel<T>::expert_load_layers() const {
  return state_->load_layers;
}

template <typename T>
void TrainModel<T>::set_profile(OpProfile* profile) {
  state_->profile = profile;
}

namespace {

// The op name of a linear layer in a profile: the parameter's name without the layer and expert
// indices, so that "model.layers.3.mlp.experts.7.up_proj.weight" times as "mlp.experts.up_proj".
std::string LinearKind(std::string_view prefix, const std::string& name) {
  std::string kind = name;
  if (kind.rfind("model.layers.", 0) == 0) {
    const size_t dot = kind.find('.', 13);
    kind = kind.substr(dot == std::string::npos ? 13 : dot + 1);
  } else if (kind.rfind("model.", 0) == 0) {
    kind = kind.substr(6);
  }
  const size_t experts = kind.find("experts.");
  if (experts != std::string::npos) {
    const size_t dot = kind.find('.', experts + 8);
    if (dot != std::string::npos) kind.erase(experts + 7, dot - (experts + 7));
  }
  if (kind.size() > 7 && kind.compare(kind.size() - 7, 7, ".weight") == 0)
    kind.resize(kind.size() - 7);
  return std::string(prefix) + kind;
}

}  // namespace

template <typename T>
void TrainModel<T>::State::Linear(std::span<T> y, std::span<const T> x, const Parameter<T>& w,
                                  int64_t n, bool quantizable) {
  const int64_t out = w.shape[0], in = w.shape[1];
  const OpTimer timer(profile, profile != nullptr ? LinearKind("linear fwd ", w.name) : "");
  if constexpr (std::is_same_v<T, float>) {
    if (quantizable && precision == Precision::kFP8) {
      whale::LinearForward(LinearPrecision::kFp8, y, x, C(w.value), n, in, out, workspace, pool);
      return;
    }
  }
  LinearForward<T>(y, x, C(w.value), n, in, out, pool);
}

template <typename T>
void TrainModel<T>::State::LinearBack(std::span<T> dx, Parameter<T>& w, std::span<const T> dy,
                                      std::span<const T> x, int64_t n, bool accumulate_dx,
                                      bool quantizable) {
  const int64_t out = w.shape[0], in = w.shape[1];
  if constexpr (std::is_same_v<T, float>) {
    if (quantizable && precision == Precision::kFP8) {
      const OpTimer timer(profile, profile != nullptr ? LinearKind("linear bwd ", w.name) : "");
      whale::LinearBackward(LinearPrecision::kFp8, dx, std::span<T>(w.grad), dy, x, C(w.value), n,
                            in, out, accumulate_dx, workspace, pool);
      return;
    }
  }
  {
    const OpTimer timer(profile, profile != nullptr ? LinearKind("linear dx ", w.name) : "");
    LinearBackward<T>(dx, std::span<T>(), dy, x, C(w.value), n, in, out, accumulate_dx, pool);
  }
  const OpTimer timer(profile, profile != nullptr ? LinearKind("linear dw ", w.name) : "");
  LinearBackward<T>(std::span<T>(), std::span<T>(w.grad), dy, x, C(w.value), n, in, out,
                    accumulate_dx, pool);
}

template <typename T>
void TrainModel<T>::State::BlockForward(int64_t block, const RowInfo& rows, std::span<T> x) {
  const ModelConfig& c = *config;
  const int64_t n = rows.n(), d = c.hidden_size;
  BlockParams<T>& p = blocks[block];
  BlockSaved<T>& sv = saved[block];
  sv.x_in.assign(x.begin(), x.end());
  Resize(sv.a, n * d);
  Resize(sv.rstd_a, n);
  {
    const OpTimer timer(profile, "rmsnorm fwd");
    RmsNormForward<T>(sv.a, sv.rstd_a, C(sv.x_in), C(p.input_norm->value), n, d, c.rms_norm_eps,
                      pool);
  }
  AttentionForward(block, rows);  // attention output into x (added below)
  // x_mid = x_in + attention(a): AttentionForward leaves the branch in sv.x_mid.
  for (int64_t i = 0; i < n * d; ++i) sv.x_mid[i] += sv.x_in[i];
  Resize(sv.b, n * d);
  Resize(sv.rstd_b, n);
  {
    const OpTimer timer(profile, "rmsnorm fwd");
    RmsNormForward<T>(sv.b, sv.rstd_b, C(sv.x_mid), C(p.post_norm->value), n, d, c.rms_norm_eps,
                      pool);
  }
  if (p.is_moe) {
    MoeForward(block, rows, x);
  } else {
    sv.dense.m = n;
    sv.dense.x.assign(sv.b.begin(), sv.b.end());
    MlpForward(p.dense, sv.dense, d);
    std::copy(sv.dense.out.begin(), sv.dense.out.end(), x.begin());
  }
  for (int64_t i = 0; i < n * d; ++i) x[i] += sv.x_mid[i];
}

template <typename T>
void TrainModel<T>::State::BlockBackward(int64_t block, const RowInfo& rows, std::span<T> dx,
                                         double balance_scale) {
  const ModelConfig& c = *config;
  const int64_t n = rows.n(), d = c.hidden_size;
  BlockParams<T>& p = blocks[block];
  BlockSaved<T>& sv = saved[block];
  // x_out = x_mid + FFN(b): ∂x_mid = ∂x_out + RmsNormᵀ(FFNᵀ(∂x_out)).
  const std::span<T> db = Use(tmp.db, n * d);  // [n, hidden]
  if (p.is_moe) {
    MoeBackward(block, rows, std::span<const T>(dx.data(), dx.size()), db, balance_scale);
  } else {
    MlpBackward(p.dense, sv.dense, std::span<const T>(dx.data(), dx.size()), db, d);
  }
  {
    const OpTimer timer(profile, "rmsnorm bwd");
    RmsNormBackward<T>(dx, std::span<T>(p.post_norm->grad), C(db), C(sv.x_mid),
                       C(p.post_norm->value), C(sv.rstd_b), n, d, /*accumulate_dx=*/true, pool);
  }
  // x_mid = x_in + MLA(a): ∂x_in = ∂x_mid + RmsNormᵀ(MLAᵀ(∂x_mid)).
  const std::span<T> da = Use(tmp.da, n * d);  // [n, hidden]
  AttentionBackward(block, rows, std::span<const T>(dx.data(), dx.size()), da);
  {
    const OpTimer timer(profile, "rmsnorm bwd");
    RmsNormBackward<T>(dx, std::span<T>(p.input_norm->grad), C(da), C(sv.x_in),
                       C(p.input_norm->value), C(sv.rstd_a), n, d, /*accumulate_dx=*/true, pool);
  }
}

template <typename T>
LossParts TrainModel<T>::Step(const TokenBatch& batch, const LossWeights& weights,
                              double grad_scale, bool backward) {
  return Step(batch, weights, grad_scale, backward, LogitWeights());
}

template <typename T>
LossParts TrainModel<T>::Step(const TokenBatch& batch, const LossWeights& weights,
                              double grad_scale, bool backward, const LogitWeights& logit_weights) {
  State& s = *state_;
  const ModelConfig& c = *s.config;
  const int64_t B = batch.n_seqs, L = batch.seq_len, n = B * L;
  const int64_t d = c.hidden_size, V = c.vocab_size;
  if (B < 1 || L < 1 || static_cast<int64_t>(batch.inputs.size()) != n ||
      static_cast<int64_t>(batch.targets.size()) != n ||
      static_cast<int64_t>(batch.segments.size()) != n)
    Fail("training batch of ", B, " x ", L, " has ", batch.inputs.size(), " inputs, ",
         batch.targets.size(), " targets and ", batch.segments.size(), " segments; expected ", n,
         " each");
  if (!batch.weights.empty() && static_cast<int64_t>(batch.weights.size()) != n)
    Fail("training batch of ", B, " x ", L, " has ", batch.weights.size(),
         " loss weights; expected 0 or ", n);
  for (int64_t t = 0; t < n; ++t) {
    if (batch.inputs[t] < 0 || batch.inputs[t] >= V)
      Fail("training batch: input token ", batch.inputs[t], " at row ", t / L, " position ", t % L,
           " is outside the vocabulary [0, ", V, ")");
    if (batch.targets[t] < -1 || batch.targets[t] >= V)
      Fail("training batch: target ", batch.targets[t], " at row ", t / L, " position ", t % L,
           " is outside [-1, ", V, ")");
  }
  s.positions = SegmentPositions(batch);
  s.balance_alpha = weights.balance_alpha;
  s.balance_loss = 0;
  for (auto& layer : s.loads) std::fill(layer.begin(), layer.end(), 0);
  const RowInfo main_rows{B, L, batch.segments, s.positions};
  LossParts loss;

  // Main model: x = Emb(inputs); blocks; hn = RmsNorm(x); logits = hn · headᵀ.
  const std::span<T> x = Use(s.tmp.x, n * d);  // [n, hidden] the residual stream
  EmbeddingForward<T>(x, batch.inputs, C(s.embed->value), V, d);
  for (int64_t l = 0; l < s.n_main_blocks; ++l) s.BlockForward(l, main_rows, x);
  s.x_final.assign(x.begin(), x.end());
  Resize(s.hn, n * d);
  Resize(s.rstd_final, n);
  RmsNormForward<T>(s.hn, s.rstd_final, C(s.x_final), C(s.final_norm->value), n, d, c.rms_norm_eps,
                    s.pool);
  Resize(s.logits, n * V);
  s.Linear(s.logits, C(s.hn), *s.head, n, /*quantizable=*/false);
  const T scale = static_cast<T>(weights.main_logit_scale);
  if (!(weights.main_logit_scale > 0) || !std::isfinite(weights.main_logit_scale))
    Fail("main_logit_scale = ", weights.main_logit_scale, "; expected a finite value > 0");
  std::vector<T> scaled;  // [n, vocab] logits · scale when scale != 1
  if (scale != T{1}) {
    scaled.resize(s.logits.size());
    for (size_t i = 0; i < scaled.size(); ++i) scaled[i] = s.logits[i] * scale;
  }
  const std::span<const T> ce_logits = scale != T{1} ? C(scaled) : C(s.logits);
  std::vector<float> callback_weights;  // [n] when logit_weights is set
  std::span<const float> row_weights(batch.weights);
  if (logit_weights) {
    callback_weights.assign(n, 0.0f);
    logit_weights(ce_logits, callback_weights);
    row_weights = callback_weights;
  }
  const std::span<T> dlogits = Use(s.tmp.dlogits, backward ? n * V : 0);  // [n, vocab]
  CrossEntropyResult main;
  {
    const OpTimer timer(s.profile, "cross-entropy");
    main =
        CrossEntropy<T>(dlogits, ce_logits, batch.targets, n, V, grad_scale, s.pool, row_weights);
  }
  if (scale != T{1})
    for (T& g : dlogits) g *= scale;  // ∂(z·scale)/∂z
  loss.main = main.loss;
  loss.main_count = main.n_counted;
  loss.balance = s.balance_loss;

  // MTP (depth 1) over pairs (i, i + 1) of each row: h_i = hn_i (the main model's final normed
  // hidden state, as the inference module takes it) and Emb(inputs[i + 1]) predict
  // targets[i + 1].
  const bool has_mtp = c.num_nextn_predict_layers > 0 && L > 1 && weights.mtp_lambda != 0;
  const int64_t Lm = L - 1, nm = B * Lm;
  const std::span<T> dhn = Use(s.tmp.dhn, backward ? n * d : 0);  // [n, hidden] ∂/∂hn
  std::fill(dhn.begin(), dhn.end(), T(0));                        // the MTP path adds into it
  if (has_mtp) {
    Resize(s.mtp_inputs, nm);
    Resize(s.mtp_targets, nm);
    Resize(s.mtp_segments, nm);
    Resize(s.mtp_positions, nm);
    Resize(s.mtp_h, nm * d);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t i = 0; i < Lm; ++i) {
        const int64_t t = b * L + i, m = b * Lm + i;
        s.mtp_inputs[m] = batch.inputs[t + 1];
        s.mtp_segments[m] = batch.segments[t];
        s.mtp_positions[m] = s.positions[t];
        s.mtp_targets[m] = batch.segments[t + 1] == batch.segments[t] ? batch.targets[t + 1] : -1;
        std::copy_n(s.hn.begin() + t * d, d, s.mtp_h.begin() + m * d);
      }
    Resize(s.mtp_e, nm * d);
    EmbeddingForward<T>(s.mtp_e, s.mtp_inputs, C(s.embed->value), V, d);
    Resize(s.mtp_en, nm * d);
    Resize(s.mtp_rstd_e, nm);
    Resize(s.mtp_hh, nm * d);
    Resize(s.mtp_rstd_h, nm);
    RmsNormForward<T>(s.mtp_en, s.mtp_rstd_e, C(s.mtp_e), C(s.mtp_enorm->value), nm, d,
                      c.rms_norm_eps, s.pool);
    RmsNormForward<T>(s.mtp_hh, s.mtp_rstd_h, C(s.mtp_h), C(s.mtp_hnorm->value), nm, d,
                      c.rms_norm_eps, s.pool);
    // u = [enorm(e) | hnorm(h)]: the embedding half first, as the inference module.
    Resize(s.mtp_u, nm * 2 * d);
    for (int64_t m = 0; m < nm; ++m) {
      std::copy_n(s.mtp_en.begin() + m * d, d, s.mtp_u.begin() + m * 2 * d);
      std::copy_n(s.mtp_hh.begin() + m * d, d, s.mtp_u.begin() + m * 2 * d + d);
    }
    const std::span<T> xm = Use(s.tmp.xm, nm * d);  // [n', hidden]
    s.Linear(xm, C(s.mtp_u), *s.mtp_eh_proj, nm, /*quantizable=*/true);
    const RowInfo mtp_rows{B, Lm, s.mtp_segments, s.mtp_positions};
    const int64_t mtp_block = s.n_main_blocks;
    s.BlockForward(mtp_block, mtp_rows, xm);
    s.mtp_x_final.assign(xm.begin(), xm.end());
    Resize(s.mtp_hn, nm * d);
    Resize(s.mtp_rstd_final, nm);
    RmsNormForward<T>(s.mtp_hn, s.mtp_rstd_final, C(s.mtp_x_final), C(s.mtp_head_norm->value), nm,
                      d, c.rms_norm_eps, s.pool);
    Resize(s.mtp_logits, nm * V);
    s.Linear(s.mtp_logits, C(s.mtp_hn), *s.head, nm, /*quantizable=*/false);
    const std::span<T> dmtp_logits = Use(s.tmp.dmtp_logits, backward ? nm * V : 0);  // [n', vocab]
    CrossEntropyResult mtp;
    {
      const OpTimer timer(s.profile, "cross-entropy");
      mtp = CrossEntropy<T>(dmtp_logits, C(s.mtp_logits), s.mtp_targets, nm, V,
                            grad_scale * weights.mtp_lambda, s.pool);
    }
    loss.mtp = weights.mtp_lambda * mtp.loss;
    loss.mtp_count = mtp.n_counted;

    if (backward) {
      const std::span<T> dxm = Use(s.tmp.dxm, nm * d);      // [n', hidden]
      const std::span<T> dhn_m = Use(s.tmp.dhn_m, nm * d);  // [n', hidden]
      s.LinearBack(dhn_m, *s.head, C(dmtp_logits), C(s.mtp_hn), nm, false, false);
      RmsNormBackward<T>(dxm, std::span<T>(s.mtp_head_norm->grad), C(dhn_m), C(s.mtp_x_final),
                         C(s.mtp_head_norm->value), C(s.mtp_rstd_final), nm, d, false, s.pool);
      s.BlockBackward(mtp_block, mtp_rows, dxm, 0.0);
      const std::span<T> du = Use(s.tmp.du, nm * 2 * d);  // [n', 2 * hidden]
      s.LinearBack(du, *s.mtp_eh_proj, C(dxm), C(s.mtp_u), nm, false, true);
      const std::span<T> den = Use(s.tmp.den, nm * d), dhh = Use(s.tmp.dhh, nm * d),
                         de = Use(s.tmp.de, nm * d), dh = Use(s.tmp.dh, nm * d);  // [n', hidden]
      for (int64_t m = 0; m < nm; ++m) {
        std::copy_n(du.begin() + m * 2 * d, d, den.begin() + m * d);
        std::copy_n(du.begin() + m * 2 * d + d, d, dhh.begin() + m * d);
      }
      RmsNormBackward<T>(de, std::span<T>(s.mtp_enorm->grad), C(den), C(s.mtp_e),
                         C(s.mtp_enorm->value), C(s.mtp_rstd_e), nm, d, false, s.pool);
      RmsNormBackward<T>(dh, std::span<T>(s.mtp_hnorm->grad), C(dhh), C(s.mtp_h),
                         C(s.mtp_hnorm->value), C(s.mtp_rstd_h), nm, d, false, s.pool);
      EmbeddingBackward<T>(std::span<T>(s.embed->grad), C(de), s.mtp_inputs, V, d);
      for (int64_t b = 0; b < B; ++b)
        for (int64_t i = 0; i < Lm; ++i)
          for (int64_t j = 0; j < d; ++j) dhn[(b * L + i) * d + j] += dh[(b * Lm + i) * d + j];
    }
  } else {
    s.mtp_logits.clear();
  }
  loss.total = loss.main + loss.mtp + loss.balance;
  if (!backward) return loss;

  // Main backward: head, final norm, blocks in reverse, embedding.
  s.LinearBack(dhn, *s.head, C(dlogits), C(s.hn), n, /*accumulate_dx=*/true, false);
  const std::span<T> dx = Use(s.tmp.dx, n * d);  // [n, hidden]
  RmsNormBackward<T>(dx, std::span<T>(s.final_norm->grad), C(dhn), C(s.x_final),
                     C(s.final_norm->value), C(s.rstd_final), n, d, false, s.pool);
  for (int64_t l = s.n_main_blocks - 1; l >= 0; --l) s.BlockBackward(l, main_rows, dx, grad_scale);
  EmbeddingBackward<T>(std::span<T>(s.embed->grad), C(dx), batch.inputs, V, d);
  return loss;
}

template class TrainModel<float>;
template class TrainModel<double>;

}  // namespace whale
