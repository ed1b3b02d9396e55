#include "model/model.h"

#include <algorithm>
#include <cstring>

#include "kernels/matmul.h"
#include "kernels/norm.h"
#include "kernels/rope.h"
#include "util/error.h"

namespace whale {
namespace {

bool HasMoe(const ModelConfig& c) {
  return c.n_routed_experts > 0 &&
         (c.first_k_dense_replace < c.num_hidden_layers || c.num_nextn_predict_layers > 0);
}

}  // namespace

RouterParams RouterParamsFor(const ModelConfig& c) {
  RouterParams p{};
  p.scoring =
      c.scoring_func == ScoringFunc::kSigmoid ? RouterScoring::kSigmoid : RouterScoring::kSoftmax;
  p.method = c.topk_method == TopkMethod::kNoauxTc              ? RouterMethod::kNoauxTc
             : c.topk_method == TopkMethod::kGroupLimitedGreedy ? RouterMethod::kGroupLimitedGreedy
                                                                : RouterMethod::kGreedy;
  p.n_experts = static_cast<int>(c.n_routed_experts);
  p.n_group = static_cast<int>(c.n_group);
  p.topk_group = static_cast<int>(c.topk_group);
  p.top_k = static_cast<int>(c.num_experts_per_tok);
  p.norm_topk_prob = c.norm_topk_prob;
  p.routed_scaling_factor = static_cast<float>(c.routed_scaling_factor);
  return p;
}

Model::Model(const Weights& weights, ThreadPool& pool, const ModelOptions& options)
    : weights_(weights), config_(weights.config()), pool_(pool), options_(options) {
  const ModelConfig& c = config_;
  if (options.max_batch_tokens < 1 || options.max_context < 1)
    Fail("max_batch_tokens and max_context must be positive");
  if (c.max_position_embeddings > 0 && options.max_context > c.max_position_embeddings)
    Fail("context ", options.max_context, " exceeds the model's max_position_embeddings ",
         c.max_position_embeddings);
  const auto& yarn = c.rope_scaling;
  inv_freq_ = YarnInverseFrequencies(c.qk_rope_head_dim, c.rope_theta, yarn ? yarn->factor : 1.0,
                                     yarn ? yarn->original_max_position_embeddings : 1,
                                     yarn ? yarn->beta_fast : 32.0, yarn ? yarn->beta_slow : 1.0);
  softmax_scale_ = static_cast<float>(c.softmax_scale());
  if (HasMoe(c)) {
    router_ = RouterParamsFor(c);
    ValidateRouterParams(router_);
  }

  const int64_t n = options.max_batch_tokens;
  const int64_t L = options.max_context;
  const int64_t d = c.hidden_size;
  const int64_t h = c.num_attention_heads;
  const int64_t r = c.kv_lora_rank;
  const int64_t head_rows = c.qk_nope_head_dim + c.v_head_dim;
  const int64_t workers = pool.size();
  const int64_t inter =
      std::max({c.intermediate_size, c.moe_intermediate_size, c.shared_intermediate_size()});
  const int64_t experts = c.n_routed_experts;
  const int64_t router_scratch = HasMoe(c) ? RouterScratchSize(router_) : 0;
  const int64_t expert_slots =
      HasMoe(c) ? std::min(kExpertParallelSlots, n * c.num_experts_per_tok) : 0;

  // Carve every activation out of one buffer; each piece starts on a 64-byte boundary.
  struct Piece {
    float** pointer;
    int64_t floats;
  };
  const Piece pieces[] = {
      {&residual_, n * d},
      {&normed_, n * d},
      {&branch_, n * d},
      {&q_low_, 2 * n * c.q_lora_rank},
      {&q_, n * h * c.qk_head_dim()},
      {&kv_, n * (r + c.qk_rope_head_dim)},
      {&attn_out_, n * h * c.v_head_dim},
      {&head_weight_, workers * head_rows * r},
      {&head_kv_, workers * L * (head_rows + 1)},
      {&gate_, n * inter},
      {&up_, n * inter},
      {&expert_in_, n * d},
      {&expert_out_, n * d},
      {&router_logits_, n * experts},
      {&router_scratch_, router_scratch},
      {&mtp_concat_, c.num_nextn_predict_layers > 0 ? n * 2 * d : 0},
      {&slot_in_, expert_slots * d},
      {&slot_out_, expert_slots * d},
      {&slot_gate_, expert_slots * c.moe_intermediate_size},
      {&slot_up_, expert_slots * c.moe_intermediate_size},
      {&att_qn_, workers * kAttentionBlock * c.qk_nope_head_dim},
      {&att_u_, workers * kAttentionBlock * r},
      {&att_o_, workers * kAttentionBlock * c.v_head_dim},
      {&group_q_, std::min(n, kAttentionBlock) * h * (r + c.qk_rope_head_dim)},
      {&group_u_, std::min(n, kAttentionBlock) * h * r},
  };
  const auto rounded = [](int64_t floats) { return (floats + 15) / 16 * 16; };
  int64_t total = 0;
  for (const Piece& p : pieces) total += rounded(p.floats);
  buffer_ = AlignedBuffer(static_cast<size_t>(total) * sizeof(float));
  float* next = buffer_.as<float>().data();
  for (const Piece& p : pieces) {
    *p.pointer = next;
    next += rounded(p.floats);
  }
  tokens_.resize(n);

  expert_ids_.resize(n * std::max<int64_t>(c.num_experts_per_tok, 1));
  expert_weights_.resize(expert_ids_.size());
  expert_count_.resize(experts + 1);
  expert_slots_.resize(expert_ids_.size());
  active_experts_.reserve(experts);
  expert_tasks_.reserve(experts + 1);
}

KvCache Model::NewCache(int64_t context) const {
  if (context > options_.max_context)
    Fail("context ", context, " exceeds this model instance's max_context ", options_.max_context);
  return KvCache(config_.num_hidden_layers, context, config_.latent_cache_values());
}

KvCache Model::NewMtpCache(int64_t context) const {
  if (!weights_.mtp) Fail("this model has no MTP module (num_nextn_predict_layers = 0)");
  if (context > options_.max_context)
    Fail("context ", context, " exceeds this model instance's max_context ", options_.max_context);
  return KvCache(1, context, config_.latent_cache_values());
}

int64_t Model::LogitRows(std::span<const SequenceChunk> batch) {
  int64_t rows = 0;
  for (const auto& chunk : batch) rows += chunk.all_logits ? chunk.tokens.size() : 1;
  return rows;
}

int64_t Model::Prepare(std::span<const SequenceChunk> batch, bool mtp) {
  int64_t n = 0;
  const int64_t layers = mtp ? 1 : config_.num_hidden_layers;
  for (size_t ch = 0; ch < batch.size(); ++ch) {
    const SequenceChunk& chunk = batch[ch];
    if (chunk.cache == nullptr || chunk.tokens.empty())
      Fail("batch chunk ", ch, " needs a cache and at least one token");
    for (size_t other = 0; other < ch; ++other)  // batches are small: no allocation here
      if (batch[other].cache == chunk.cache)
        Fail("batch chunk ", ch, " uses a KV cache that another chunk of the batch uses");
    if (chunk.cache->n_layers() != layers ||
        chunk.cache->row_size() != config_.latent_cache_values() ||
        chunk.cache->capacity() > options_.max_context)
      Fail("batch chunk ", ch, ": KV cache was not made for this ", mtp ? "MTP module" : "model",
           " (use Model::New", mtp ? "Mtp" : "", "Cache)");
    chunk.cache->CheckRoom(static_cast<int64_t>(chunk.tokens.size()));
    for (int32_t token : chunk.tokens)
      if (token < 0 || token >= config_.vocab_size)
        Fail("token id ", token, " is outside the vocabulary [0, ", config_.vocab_size, ")");
    n += static_cast<int64_t>(chunk.tokens.size());
  }
  if (n > options_.max_batch_tokens)
    Fail("batch of ", n, " tokens exceeds max_batch_tokens ", options_.max_batch_tokens);
  int64_t t = 0;
  for (size_t ch = 0; ch < batch.size(); ++ch)
    for (size_t i = 0; i < batch[ch].tokens.size(); ++i)
      tokens_[t++] = {static_cast<int32_t>(ch),
                      batch[ch].cache->length() + static_cast<int64_t>(i)};
  return n;
}

void Model::Embed(const WeightMatrix& table, std::span<const SequenceChunk> batch, float* out) {
  const int64_t d = config_.hidden_size;
  int64_t t = 0;
  for (const auto& chunk : batch)
    for (int32_t token : chunk.tokens) {
      // [hidden]: one row of the table, exact in F32.
      DequantizeRows(std::span<float>(out + t * d, d), table, token, token + 1);
      ++t;
    }
}

void Model::Block(const BlockWeights& block, int64_t cache_layer,
                  std::span<const SequenceChunk> batch, int64_t n) {
  const int64_t d = config_.hidden_size;
  const float eps = static_cast<float>(config_.rms_norm_eps);
  const std::span<float> residual(residual_, n * d);  // [n, hidden]
  const std::span<float> normed(normed_, n * d);      // [n, hidden]
  const std::span<float> branch(branch_, n * d);      // [n, hidden]

  // h = h + MLA(RMSNorm(h))
  RmsNorm(normed, residual, n, d, block.input_norm.dtype, block.input_norm.data, eps);
  Attention(block.attention, cache_layer, batch, n, normed, branch);
  for (int64_t i = 0; i < n * d; ++i) residual[i] += branch[i];

  // h = h + FFN(RMSNorm(h)), FFN = MoE or dense SwiGLU
  RmsNorm(normed, residual, n, d, block.post_attention_norm.dtype, block.post_attention_norm.data,
          eps);
  if (block.is_moe) {
    Moe(block.moe, n, normed, branch);
  } else {
    const StageTimer dense_time(Stage(&ForwardProfile::dense_ffn));
    Mlp(block.dense, config_.intermediate_size, n, normed, branch, gate_, up_, &pool_);
  }
  for (int64_t i = 0; i < n * d; ++i) residual[i] += branch[i];
}

void Model::Head(const NormWeight& norm, const WeightMatrix& head,
                 std::span<const SequenceChunk> batch, int64_t n, std::span<float> logits,
                 std::span<float> final_hidden) {
  const StageTimer head_time(Stage(&ForwardProfile::head));
  const int64_t d = config_.hidden_size;
  const int64_t rows = LogitRows(batch);
  if (static_cast<int64_t>(logits.size()) != rows * config_.vocab_size)
    Fail("logits span holds ", logits.size(), " floats; the batch needs ", rows, " x ",
         config_.vocab_size);
  RmsNorm(std::span<float>(normed_, n * d), std::span<const float>(residual_, n * d), n, d,
          norm.dtype, norm.data, static_cast<float>(config_.rms_norm_eps));
  if (!final_hidden.empty()) {
    if (static_cast<int64_t>(final_hidden.size()) != n * d)
      Fail("final_hidden span holds ", final_hidden.size(), " floats; expected ", n * d);
    std::copy(normed_, normed_ + n * d, final_hidden.begin());
  }
  // Gather the rows that need logits: [rows, hidden].
  int64_t t = 0, row = 0;
  for (const auto& chunk : batch) {
    const int64_t len = static_cast<int64_t>(chunk.tokens.size());
    const int64_t first = chunk.all_logits ? t : t + len - 1;
    for (int64_t i = first; i < t + len; ++i, ++row)
      std::memcpy(expert_in_ + row * d, normed_ + i * d, d * sizeof(float));
    t += len;
  }
  MatMul(logits, std::span<const float>(expert_in_, rows * d), rows, head, &pool_);
}

void Model::Forward(std::span<const SequenceChunk> batch, std::span<float> logits,
                    std::span<float> final_hidden) {
  const int64_t n = Prepare(batch, /*mtp=*/false);
  Embed(weights_.embed, batch, residual_);
  for (int64_t l = 0; l < config_.num_hidden_layers; ++l) Block(weights_.layers[l], l, batch, n);
  Head(weights_.final_norm, weights_.lm_head, batch, n, logits, final_hidden);
  for (const auto& chunk : batch) chunk.cache->Advance(static_cast<int64_t>(chunk.tokens.size()));
}

void Model::ForwardMtp(std::span<const SequenceChunk> batch, std::span<const float> hidden,
                       std::span<float> logits) {
  if (!weights_.mtp) Fail("this model has no MTP module (num_nextn_predict_layers = 0)");
  const MtpWeights& mtp = *weights_.mtp;
  const int64_t n = Prepare(batch, /*mtp=*/true);
  const int64_t d = config_.hidden_size;
  const float eps = static_cast<float>(config_.rms_norm_eps);
  if (static_cast<int64_t>(hidden.size()) != n * d)
    Fail("MTP hidden states hold ", hidden.size(), " floats; expected ", n, " x ", d);

  // u = eh_proj · [enorm(Emb(t_{i+1})); hnorm(h_i)]: embedding first, as vLLM and SGLang.
  Embed(mtp.embed, batch, normed_);
  RmsNorm(std::span<float>(branch_, n * d), std::span<const float>(normed_, n * d), n, d,
          mtp.enorm.dtype, mtp.enorm.data, eps);
  RmsNorm(std::span<float>(expert_in_, n * d), hidden, n, d, mtp.hnorm.dtype, mtp.hnorm.data, eps);
  for (int64_t t = 0; t < n; ++t) {
    std::memcpy(mtp_concat_ + t * 2 * d, branch_ + t * d, d * sizeof(float));
    std::memcpy(mtp_concat_ + t * 2 * d + d, expert_in_ + t * d, d * sizeof(float));
  }
  MatMul(std::span<float>(residual_, n * d), std::span<const float>(mtp_concat_, n * 2 * d), n,
         mtp.eh_proj, &pool_);
  Block(mtp.block, 0, batch, n);
  Head(mtp.head_norm, mtp.head, batch, n, logits, {});
  for (const auto& chunk : batch) chunk.cache->Advance(static_cast<int64_t>(chunk.tokens.size()));
}

}  // namespace whale
