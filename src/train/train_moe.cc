// The feed-forward half of a block for training: SwiGLU MLPs and DeepSeekMoE (spec section 5)
// with the router's gradient and the sequence-wise balance loss.
#include <algorithm>

#include "train/ops_linear.h"
#include "train/ops_moe.h"
#include "train/ops_swiglu.h"
#include "train/train_model_state.h"
#include "util/thread_pool.h"

namespace whale {
namespace {

template <typename T>
std::span<const T> C(const std::vector<T>& v) {
  return std::span<const T>(v);
}

template <typename T>
std::span<const T> C(std::span<T> v) {
  return v;
}

// Rows per parallel chunk of an expert's gather and scatter loops. An expert's rows are distinct
// tokens (a token picks K different experts), so its rows can be split without write conflicts.
constexpr int64_t kExpertRowGrain = 32;

}  // namespace

template <typename T>
void TrainModel<T>::State::MlpForward(const MlpParams<T>& p, MlpSaved<T>& s, int64_t hidden) {
  const int64_t m = s.m, inter = p.inter;
  s.gate.resize(m * inter);
  s.up.resize(m * inter);
  s.act.resize(m * inter);
  s.out.resize(m * hidden);
  Linear(s.gate, C(s.x), *p.gate, m, true);
  Linear(s.up, C(s.x), *p.up, m, true);
  {
    const OpTimer timer(profile, "swiglu fwd");
    SwigluForward<T>(s.act, C(s.gate), C(s.up), pool);
  }
  Linear(s.out, C(s.act), *p.down, m, true);
}

template <typename T>
void TrainModel<T>::State::MlpBackward(MlpParams<T>& p, MlpSaved<T>& s, std::span<const T> dout,
                                       std::span<T> dx, int64_t /*hidden*/) {
  const int64_t m = s.m, inter = p.inter;
  const std::span<T> dact = Use(tmp.dact, m * inter), dgate = Use(tmp.dgate, m * inter),
                     dup = Use(tmp.dup, m * inter);  // [m, inter] each
  LinearBack(dact, *p.down, dout, C(s.act), m, false, true);
  {
    const OpTimer timer(profile, "swiglu bwd");
    SwigluBackward<T>(dgate, dup, C(dact), C(s.gate), C(s.up), pool);
  }
  LinearBack(dx, *p.gate, C(dgate), C(s.x), m, false, true);
  LinearBack(dx, *p.up, C(dup), C(s.x), m, true, true);
}

template <typename T>
void TrainModel<T>::State::MoeForward(int64_t block, const RowInfo& rows, std::span<T> out) {
  const ModelConfig& c = *config;
  const int64_t n = rows.n(), d = c.hidden_size, E = c.n_routed_experts;
  const int64_t K = c.num_experts_per_tok;
  BlockParams<T>& p = blocks[block];
  BlockSaved<T>& sv = saved[block];

  // Route: logits [n, E] (F32 even under FP8), scores, top-k ids and gate weights.
  sv.router_logits.resize(n * E);
  sv.scores.resize(n * E);
  sv.expert_ids.resize(n * K);
  sv.expert_weights.resize(n * K);
  Linear(sv.router_logits, C(sv.b), *p.router, n, /*quantizable=*/false);
  std::vector<float> bias;
  if (p.bias != nullptr) bias.assign(p.bias->value.begin(), p.bias->value.end());
  RouterForward<T>(sv.expert_ids, sv.expert_weights, sv.scores, C(sv.router_logits), bias, router,
                   n);
  if (block < n_main_blocks && balance_alpha > 0)
    balance_loss += static_cast<double>(BalanceLossForward<T>(
        C(sv.scores), sv.expert_ids, rows.n_seqs, rows.seq_len, E, K, balance_alpha));

  // Group the (token, k) slots by expert, tokens in order within an expert (counting sort).
  sv.expert_offsets.assign(E + 1, 0);
  for (int64_t i = 0; i < n * K; ++i) ++sv.expert_offsets[sv.expert_ids[i] + 1];
  for (int64_t e = 0; e < E; ++e) sv.expert_offsets[e + 1] += sv.expert_offsets[e];
  sv.expert_slots.resize(n * K);
  std::vector<int32_t> next(sv.expert_offsets.begin(), sv.expert_offsets.end() - 1);
  for (int64_t i = 0; i < n * K; ++i)
    sv.expert_slots[next[sv.expert_ids[i]]++] = static_cast<int32_t>(i);
  const auto layer = std::find(load_layers.begin(), load_layers.end(),
                               block < n_main_blocks ? block : c.num_hidden_layers) -
                     load_layers.begin();
  for (int64_t e = 0; e < E; ++e)
    loads[layer][e] += sv.expert_offsets[e + 1] - sv.expert_offsets[e];

  // y = Σ_k w_k · Expert_k(b) over experts in index order, then + Shared(b), as inference sums.
  std::fill(out.begin(), out.end(), T(0));
  sv.routed.resize(E);
  for (int64_t e = 0; e < E; ++e) {
    MlpSaved<T>& s = sv.routed[e];
    const int64_t first = sv.expert_offsets[e];
    s.m = sv.expert_offsets[e + 1] - first;
    if (s.m == 0) continue;
    s.x.resize(s.m * d);
    ParallelRanges(pool, s.m, kExpertRowGrain, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i)
        std::copy_n(sv.b.begin() + (sv.expert_slots[first + i] / K) * d, d, s.x.begin() + i * d);
    });
    MlpForward(p.experts[e], s, d);
    ParallelRanges(pool, s.m, kExpertRowGrain, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const int32_t slot = sv.expert_slots[first + i];
        const T w = sv.expert_weights[slot];
        T* dst = out.data() + (slot / K) * d;
        const T* src = s.out.data() + i * d;
        for (int64_t j = 0; j < d; ++j) dst[j] += w * src[j];
      }
    });
  }
  if (p.has_shared) {
    sv.shared.m = n;
    sv.shared.x.assign(sv.b.begin(), sv.b.end());
    MlpForward(p.shared, sv.shared, d);
    for (int64_t i = 0; i < n * d; ++i) out[i] += sv.shared.out[i];
  }
}

template <typename T>
void TrainModel<T>::State::MoeBackward(int64_t block, const RowInfo& rows, std::span<const T> dout,
                                       std::span<T> db, double balance_scale) {
  const ModelConfig& c = *config;
  const int64_t n = rows.n(), d = c.hidden_size, E = c.n_routed_experts;
  const int64_t K = c.num_experts_per_tok;
  BlockParams<T>& p = blocks[block];
  BlockSaved<T>& sv = saved[block];

  if (p.has_shared) {
    MlpBackward(p.shared, sv.shared, dout, db, d);
  } else {
    std::fill(db.begin(), db.end(), T(0));
  }
  const std::span<T> dweights = Use(tmp.dweights, n * K);  // [n, K]
  std::fill(dweights.begin(), dweights.end(), T(0));
  for (int64_t e = 0; e < E; ++e) {
    MlpSaved<T>& s = sv.routed[e];
    const int64_t first = sv.expert_offsets[e];
    if (s.m == 0) continue;
    const std::span<T> dexp = Use(tmp.dexp, s.m * d), dx = Use(tmp.dx_expert, s.m * d);
    ParallelRanges(pool, s.m, kExpertRowGrain, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const int32_t slot = sv.expert_slots[first + i];
        const T* g = dout.data() + (slot / K) * d;
        const T* y = s.out.data() + i * d;
        const T w = sv.expert_weights[slot];
        T dot = 0;
        for (int64_t j = 0; j < d; ++j) {
          dot += g[j] * y[j];
          dexp[i * d + j] = w * g[j];
        }
        dweights[slot] = dot;
      }
    });
    MlpBackward(p.experts[e], s, C(dexp), dx, d);
    ParallelRanges(pool, s.m, kExpertRowGrain, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        T* dst = db.data() + (sv.expert_slots[first + i] / K) * d;
        for (int64_t j = 0; j < d; ++j) dst[j] += dx[i * d + j];
      }
    });
  }
  std::span<T> dscores;  // [n, E] or empty
  if (block < n_main_blocks && balance_alpha > 0 && balance_scale != 0) {
    dscores = Use(tmp.dscores, n * E);
    std::fill(dscores.begin(), dscores.end(), T(0));
    BalanceLossBackward<T>(dscores, static_cast<T>(balance_scale), C(sv.scores), sv.expert_ids,
                           rows.n_seqs, rows.seq_len, E, K, balance_alpha);
  }
  const std::span<T> dlogits = Use(tmp.drouter, n * E);  // [n, E]
  RouterBackward<T>(dlogits, C(dweights), C(dscores), C(sv.scores), sv.expert_ids, router, n);
  LinearBack(db, *p.router, C(dlogits), C(sv.b), n, /*accumulate_dx=*/true, false);
}

template struct TrainModel<float>::State;
template struct TrainModel<double>::State;

}  // namespace whale
