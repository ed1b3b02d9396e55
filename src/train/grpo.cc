#include "train/grpo.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "model/model.h"
#include "model/weights.h"
#include "runtime/scheduler.h"
#include "train/report.h"
#include "train/reward.h"
#include "train/train_checkpoint.h"
#include "util/error.h"
#include "util/progress.h"
#include "util/split_mix.h"

namespace whale {

struct GrpoTrainer::Group {
  Problem problem;
  size_t entry = 0;             // the mix entry it was drawn from
  std::vector<int32_t> prompt;  // chat-template tokens
  struct Completion {
    std::vector<int32_t> tokens;  // generated, the stop token included
    std::string text;             // decoded without the stop token
    bool truncated = false;       // reached max_tokens without a stop token
    Reward reward;
    double advantage = 0;
  };
  std::vector<Completion> completions;  // [G]
  GroupStats stats;
};

namespace {

// The policy exported for the inference engine: weights mapped from the scratch checkpoint, a
// Model over them and a Scheduler sampling from it. Destroyed before the scratch is rewritten.
struct Engine {
  Weights weights;
  Model model;
  Scheduler scheduler;
  Engine(const std::string& dir, ThreadPool& pool, const ModelOptions& model_options,
         const SchedulerOptions& scheduler_options)
      : weights(Weights::Load(dir)),
        model(weights, pool, model_options),
        scheduler(model, scheduler_options) {}
};

// A micro-batch of completions as a training batch (part of one mini-batch, see Step). Row r is
// prompt ++ completion of one completion shifted by one; targets only on the completion's tokens
// (the stop token included).
struct MicroBatch {
  TokenBatch batch;
  std::vector<int64_t> positions;  // [n_tokens] batch position (row·seq_len + j) of each token
  std::vector<int64_t> lengths;    // [rows] completion tokens per row
  std::vector<double> advantages;  // [rows]
  std::vector<double> logp_old;    // [n_tokens]
  std::vector<double> logp_ref;    // [n_tokens] when beta > 0
};

// The completions order[begin, end) (group, completion) as one micro-batch of rows of seq_len
// tokens (the longest prompt ++ completion minus one); padding is its own segment, without loss.
template <class GroupT>
MicroBatch BuildMicroBatch(const std::vector<GroupT>& groups,
                           const std::vector<std::pair<size_t, size_t>>& order, size_t begin,
                           size_t end, int64_t seq_len, int32_t pad) {
  MicroBatch mb;
  TokenBatch& b = mb.batch;
  b.n_seqs = static_cast<int64_t>(end - begin);
  b.seq_len = seq_len;
  b.inputs.assign(b.n_seqs * seq_len, pad);
  b.targets.assign(b.n_seqs * seq_len, -1);
  b.segments.assign(b.n_seqs * seq_len, 0);
  for (size_t i = begin; i < end; ++i) {
    const GroupT& g = groups[order[i].first];
    const auto& c = g.completions[order[i].second];
    const int64_t row = static_cast<int64_t>(i - begin), lp = g.prompt.size(), lc = c.tokens.size();
    const auto token = [&](int64_t j) { return j < lp ? g.prompt[j] : c.tokens[j - lp]; };
    for (int64_t j = 0; j < seq_len; ++j) {
      const int64_t at = row * seq_len + j;
      if (j < lp + lc - 1) {
        b.inputs[at] = token(j);
        if (j + 1 >= lp) {
          b.targets[at] = token(j + 1);
          mb.positions.push_back(at);
        }
      } else {
        b.segments[at] = 1;  // padding: its own segment, no loss
      }
    }
    mb.lengths.push_back(lc);
    mb.advantages.push_back(c.advantage);
  }
  return mb;
}

// log π(target) under softmax(logits · scale) at each listed position of logits [N, vocab], and
// Σ of the entropies there. Double log-sum-exp per row; rows split over the pool, results
// independent of threads.
void TokenLogProbs(std::span<const float> logits, int64_t vocab, double scale, const MicroBatch& mb,
                   std::vector<double>& logp, double* entropy_sum, ThreadPool& pool) {
  const size_t n = mb.positions.size();
  logp.assign(n, 0.0);
  std::vector<double> entropy(n, 0.0);  // [n_tokens]
  pool.ParallelFor(n, 16, [&](size_t begin, size_t end, int) {
    for (size_t k = begin; k < end; ++k) {
      const int64_t at = mb.positions[k];
      const float* z = logits.data() + at * vocab;
      double max = scale * z[0];
      for (int64_t j = 1; j < vocab; ++j) max = std::max(max, scale * z[j]);
      double sum = 0, weighted = 0;
      for (int64_t j = 0; j < vocab; ++j) {
        const double shifted = scale * z[j] - max;
        const double e = std::exp(shifted);
        sum += e;
        weighted += e * shifted;
      }
      const double log_sum = std::log(sum);
      logp[k] = scale * z[mb.batch.targets[at]] - max - log_sum;
      // H = −Σ p log p = log Σe − Σ e·(z − max) / Σe
      entropy[k] = log_sum - weighted / sum;
    }
  });
  if (entropy_sum != nullptr)
    for (double h : entropy) *entropy_sum += h;
}

uint64_t Mix(uint64_t a, uint64_t b) {
  return SplitMix64(a ^ SplitMix64(b + 0x9e3779b97f4a7c15ULL));
}

}  // namespace

Curriculum::Curriculum(std::vector<TaskMixEntry> mix, int64_t window, double threshold)
    : mix_(std::move(mix)), recent_(mix_.size()), window_(window), threshold_(threshold) {
  for (const TaskMixEntry& e : mix_) task_max_.push_back(MakeTask(e.task)->max_difficulty());
}

size_t Curriculum::EntryOf(const Problem& problem) const {
  for (size_t e = 0; e < mix_.size(); ++e)
    if (mix_[e].task == problem.task && problem.difficulty >= mix_[e].min_difficulty &&
        problem.difficulty <= mix_[e].max_difficulty)
      return e;
  Fail("curriculum: a ", problem.task, " problem of difficulty ", problem.difficulty,
       " matches no entry of ", TaskMixToString(mix_));
}

void Curriculum::Record(size_t entry, bool correct) {
  if (window_ == 0) return;
  std::deque<bool>& recent = recent_.at(entry);
  recent.push_back(correct);
  if (static_cast<int64_t>(recent.size()) > window_) recent.pop_front();
}

int Curriculum::Update() {
  if (window_ == 0) return 0;
  int moved = 0;
  for (size_t e = 0; e < mix_.size(); ++e) {
    std::deque<bool>& recent = recent_[e];
    if (static_cast<int64_t>(recent.size()) < window_) continue;
    const double accuracy = static_cast<double>(std::count(recent.begin(), recent.end(), true)) /
                            static_cast<double>(recent.size());
    TaskMixEntry& entry = mix_[e];
    if (accuracy <= threshold_ || entry.max_difficulty >= task_max_[e]) continue;
    entry.max_difficulty += 1;
    entry.min_difficulty = std::min(entry.min_difficulty + 1, entry.max_difficulty);
    recent.clear();  // the new range starts its own record
    ++moved;
  }
  return moved;
}

GrpoTrainer::GrpoTrainer(const GrpoConfig& config, ThreadPool& pool)
    : config_((ValidateGrpoConfig(config), config)),
      pool_(pool),
      tokenizer_(Tokenizer::FromModelDir(config.model)),
      chat_template_(ChatTemplate::FromModelDir(config.model)),
      params_([&] {
        ModelConfig c = LoadModelConfig(config.model);
        if (c.quantization)
          Fail("grpo: ", config.model, " is quantized; GRPO trains F32/BF16 checkpoints");
        return c;
      }()),
      reference_(params_.config()),
      curriculum_(ParseTaskMix(config_.tasks), config_.curriculum_window,
                  config_.curriculum_threshold) {
  if (std::filesystem::exists(config_.out) &&
      std::filesystem::equivalent(config_.out, config_.model))
    Fail("grpo: out ", config_.out, " is the starting model's directory; choose another");
  formatter_ = std::make_unique<TaskFormatter>(tokenizer_, chat_template_);
  LoadParameters(params_, config_.model);
  if (params_.config().vocab_size < tokenizer_.vocab_size())
    Fail("grpo: model vocab_size ", params_.config().vocab_size,
         " is smaller than the tokenizer's ", tokenizer_.vocab_size());
  model_ = std::make_unique<TrainModel<float>>(params_, &pool_);
  if (config_.beta > 0) {
    for (size_t i = 0; i < params_.all().size(); ++i)
      reference_.all()[i].value = params_.all()[i].value;
    reference_model_ = std::make_unique<TrainModel<float>>(reference_, &pool_);
  }
  OptimizerConfig opt;
  opt.beta1 = config_.adam_beta1;
  opt.beta2 = config_.adam_beta2;
  opt.weight_decay = config_.weight_decay;
  opt.clip_norm = config_.clip_norm;
  optimizer_ = std::make_unique<AdamW>(opt, params_);
  for (int64_t id : params_.config().eos_token_ids)
    stop_tokens_.push_back(static_cast<int32_t>(id));
  if (std::find(stop_tokens_.begin(), stop_tokens_.end(), formatter_->eos_id()) ==
      stop_tokens_.end())
    stop_tokens_.push_back(formatter_->eos_id());
  // The exported policy is rewritten every step: shared memory when there is some.
  const std::string base = std::filesystem::is_directory("/dev/shm")
                               ? std::string("/dev/shm")
                               : std::filesystem::temp_directory_path().string();
  scratch_ = base + "/whale-grpo-" + std::to_string(::getpid()) + "-" +
             std::to_string(reinterpret_cast<uintptr_t>(this));
  std::filesystem::create_directories(scratch_);
  start_ = std::chrono::steady_clock::now();
}

GrpoTrainer::~GrpoTrainer() {
  std::error_code ignored;
  std::filesystem::remove_all(scratch_, ignored);
}

std::vector<GrpoTrainer::Group> GrpoTrainer::Sample(Scheduler& scheduler,
                                                    const std::vector<TaskSampler::Draw>& draws,
                                                    uint64_t round_seed) {
  std::vector<Group> groups(draws.size());
  std::vector<std::shared_ptr<RequestHandle>> handles;
  for (size_t i = 0; i < draws.size(); ++i) {
    Group& g = groups[i];
    g.problem = draws[i].problem;
    g.entry = curriculum_.EntryOf(g.problem);
    g.prompt = formatter_->PromptTokens(g.problem);
    if (static_cast<int64_t>(g.prompt.size()) > config_.max_prompt_tokens)
      Fail("grpo: a ", g.problem.task, " prompt has ", g.prompt.size(),
           " tokens, over max_prompt_tokens = ", config_.max_prompt_tokens, " (raise it)");
    RequestOptions request;
    request.prompt = g.prompt;
    request.n = static_cast<int>(config_.group_size);
    request.max_tokens = config_.max_tokens;
    request.stop_tokens = stop_tokens_;
    request.sampling.temperature = static_cast<float>(config_.temperature);
    request.sampling.seed = Mix(round_seed, i);
    handles.push_back(scheduler.Submit(std::move(request)));
  }
  const RewardOptions reward_options = RewardOptionsFor(config_);
  const AdvantageMode mode = AdvantageModeFor(config_);
  for (size_t i = 0; i < draws.size(); ++i) {
    while (!handles[i]->WaitFor(3600)) {
    }
    const RequestResult& result = handles[i]->result();
    if (!result.error.empty()) Fail("grpo: sampling failed: ", result.error);
    Group& g = groups[i];
    std::vector<double> rewards, advantages(result.choices.size());
    for (const ChoiceResult& choice : result.choices) {
      if (choice.stop == StopReason::kError) Fail("grpo: sampling failed: ", result.error);
      Group::Completion c;
      c.tokens = choice.tokens;
      c.truncated = choice.stop != StopReason::kStopToken;
      const size_t text_tokens = c.tokens.size() - (c.truncated || c.tokens.empty() ? 0 : 1);
      c.text = tokenizer_.Decode(std::span<const int32_t>(c.tokens.data(), text_tokens));
      c.reward = ComputeReward(*draws[i].task, g.problem, c.text,
                               static_cast<int64_t>(c.tokens.size()), reward_options);
      rewards.push_back(c.reward.total);
      g.completions.push_back(std::move(c));
    }
    g.stats = GroupAdvantages(advantages, rewards, mode);
    for (size_t k = 0; k < advantages.size(); ++k) g.completions[k].advantage = advantages[k];
  }
  return groups;
}

void GrpoTrainer::UpdateCurriculum(const std::vector<Group>& groups) {
  for (const Group& g : groups)
    for (const auto& c : g.completions) curriculum_.Record(g.entry, c.reward.correct);
  curriculum_.Update();
}

void GrpoTrainer::WriteSamples(const std::vector<Group>& groups) {
  int64_t written = 0;
  for (const Group& g : groups) {
    for (const auto& c : g.completions) {
      if (written >= config_.samples_per_log) return;
      samples_->Write({{"step", step_},
                       {"task", g.problem.task},
                       {"difficulty", g.problem.difficulty},
                       {"prompt", g.problem.prompt},
                       {"answer", g.problem.answer},
                       {"completion", c.text},
                       {"tokens", c.tokens.size()},
                       {"truncated", c.truncated},
                       {"reward", c.reward.total},
                       {"correct", c.reward.correct},
                       {"format_ok", c.reward.format_ok},
                       {"extracted", c.reward.verify.extracted},
                       {"advantage", c.advantage}});
      ++written;
    }
  }
}

nlohmann::json GrpoTrainer::Step() {
  const auto begin = std::chrono::steady_clock::now();
  const double lr =
      config_.lr *
      std::min(1.0, static_cast<double>(step_ + 1) /
                        static_cast<double>(std::max<int64_t>(1, config_.warmup_steps)));
  if (reference_model_ && config_.ref_reset_every > 0 && step_ > 0 &&
      step_ % config_.ref_reset_every == 0)
    for (size_t i = 0; i < params_.all().size(); ++i)
      reference_.all()[i].value = params_.all()[i].value;

  // Rollout: export the policy, sample groups (DAPO: replace zero-variance groups, a few rounds).
  const int64_t P = config_.prompts_per_step, G = config_.group_size;
  std::vector<Group> sampled;  // every group sampled this step
  std::vector<size_t> kept;    // the groups trained on
  {
    SaveModelCheckpoint(scratch_, params_, DType::F32, "");
    const int64_t context = config_.max_prompt_tokens + config_.max_tokens;
    const int parallel = config_.parallel > 0 ? config_.parallel : static_cast<int>(P * G);
    ModelOptions model_options;
    model_options.max_context = context;
    model_options.max_batch_tokens = std::max<int64_t>(512, parallel);
    SchedulerOptions scheduler_options;
    scheduler_options.parallel = parallel;
    scheduler_options.context = context;
    scheduler_options.prefix_cache_entries = 0;
    scheduler_options.max_queue = P + 1;
    Engine engine(scratch_, pool_, model_options, scheduler_options);
    const bool drop = DropsZeroVarianceGroups(config_);
    const int64_t rounds = drop ? 1 + config_.max_resample_rounds : 1;
    for (int64_t round = 0; round < rounds; ++round) {
      const int64_t need = P - static_cast<int64_t>(kept.size());
      if (need <= 0) break;
      const uint64_t round_seed = Mix(Mix(config_.seed, static_cast<uint64_t>(step_)), round);
      TaskSampler sampler(curriculum_.mix(), Split::kTrain, round_seed);
      std::vector<TaskSampler::Draw> draws;
      for (int64_t i = 0; i < need; ++i) draws.push_back(sampler.Next());
      std::vector<Group> groups = Sample(engine.scheduler, draws, Mix(round_seed, 1));
      for (Group& g : groups) {
        if (!(drop && g.stats.zero_variance) && static_cast<int64_t>(kept.size()) < P)
          kept.push_back(sampled.size());
        sampled.push_back(std::move(g));
      }
    }
  }
  const double rollout_s = SecondsOf(std::chrono::steady_clock::now() - begin);

  // Rollout statistics over every sampled completion.
  double reward_sum = 0, correct = 0, format_ok = 0, length_sum = 0, truncated = 0;
  int64_t n_completions = 0, sampled_tokens = 0;
  for (const Group& g : sampled)
    for (const auto& c : g.completions) {
      reward_sum += c.reward.total;
      correct += c.reward.correct ? 1 : 0;
      format_ok += c.reward.format_ok ? 1 : 0;
      length_sum += static_cast<double>(c.tokens.size());
      truncated += c.truncated ? 1 : 0;
      sampled_tokens += static_cast<int64_t>(c.tokens.size());
      ++n_completions;
    }
  const double nc = static_cast<double>(std::max<int64_t>(1, n_completions));

  // Mini-batches: the kept completions in a seeded order, split as evenly as possible.
  const auto train_begin = std::chrono::steady_clock::now();
  std::vector<std::pair<size_t, size_t>> order;  // (group, completion)
  for (size_t gi : kept)
    for (size_t k = 0; k < sampled[gi].completions.size(); ++k) order.emplace_back(gi, k);
  uint64_t shuffle = Mix(Mix(config_.seed, static_cast<uint64_t>(step_)), 0x5348554646ULL);
  for (size_t i = order.size(); i > 1; --i)
    std::swap(order[i - 1], order[SplitMix64Next(shuffle) % i]);
  const int64_t n_mb = std::min<int64_t>(config_.mini_batches, static_cast<int64_t>(order.size()));
  const int32_t pad = formatter_->eos_id();
  // Each mini-batch (one optimizer step) runs as micro-batches of at most micro_batch_tokens
  // padded tokens (at least one completion each); their gradients add up to the mini-batch's.
  std::vector<std::vector<MicroBatch>> mbs(static_cast<size_t>(n_mb));
  std::vector<int64_t> mb_completions(static_cast<size_t>(n_mb)), mb_tokens(mbs.size());
  const auto row_len = [&](size_t i) {
    const Group& g = sampled[order[i].first];
    return static_cast<int64_t>(g.prompt.size() + g.completions[order[i].second].tokens.size()) - 1;
  };
  for (int64_t m = 0; m < n_mb; ++m) {
    const size_t lo = order.size() * m / n_mb, hi = order.size() * (m + 1) / n_mb;
    mb_completions[m] = static_cast<int64_t>(hi - lo);
    for (size_t first = lo; first < hi;) {
      size_t end = first + 1;
      int64_t seq_len = std::max<int64_t>(1, row_len(first));
      while (end < hi) {
        const int64_t longer = std::max(seq_len, row_len(end));
        if (longer * static_cast<int64_t>(end + 1 - first) > config_.micro_batch_tokens) break;
        seq_len = longer;
        ++end;
      }
      mbs[m].push_back(BuildMicroBatch(sampled, order, first, end, seq_len, pad));
      mb_tokens[m] += static_cast<int64_t>(mbs[m].back().positions.size());
      first = end;
    }
  }

  // log π_old (before this rollout's updates; the first mini-batch reads it from its own forward)
  // and log π_ref.
  const int64_t vocab = params_.config().vocab_size;
  // Log-probabilities at the sampling temperature; no MTP, no balance loss.
  const double scale = 1.0 / config_.temperature;
  const LossWeights no_aux{0.0, 0.0, scale};
  for (int64_t m = 0; m < n_mb; ++m)
    for (MicroBatch& mb : mbs[m]) {
      if (m > 0) {
        model_->Step(mb.batch, no_aux, 1.0, false);
        TokenLogProbs(model_->logits(), vocab, scale, mb, mb.logp_old, nullptr, pool_);
      }
      if (reference_model_) {
        reference_model_->Step(mb.batch, no_aux, 1.0, false);
        TokenLogProbs(reference_model_->logits(), vocab, scale, mb, mb.logp_ref, nullptr, pool_);
      }
    }

  double loss_sum = 0, kl_sum = 0, ratio_sum = 0, clipped_sum = 0, entropy_sum = 0,
         grad_norm_sum = 0;
  int64_t trained_tokens = 0;
  for (int64_t m = 0; m < n_mb; ++m) {
    GrpoLossOptions loss_options = GrpoLossOptionsFor(config_);
    loss_options.batch_completions = mb_completions[m];
    loss_options.batch_tokens = mb_tokens[m];
    params_.ZeroGrad();
    for (MicroBatch& mb : mbs[m]) {
      GrpoLossResult result;
      const auto weights = [&](std::span<const float> logits, std::span<float> w) {
        std::vector<double> logp;
        TokenLogProbs(logits, vocab, 1.0, mb, logp, &entropy_sum, pool_);  // already scaled
        if (m == 0) mb.logp_old = logp;
        std::vector<double> grad(logp.size());  // [n_tokens] ∂L/∂log π
        result = GrpoLoss<double>(grad, logp, mb.logp_old, mb.logp_ref, mb.advantages, mb.lengths,
                                  loss_options);
        for (size_t k = 0; k < grad.size(); ++k) w[mb.positions[k]] = static_cast<float>(-grad[k]);
      };
      model_->Step(mb.batch, no_aux, 1.0, true, weights);
      const double n = static_cast<double>(result.n_tokens);
      loss_sum += result.loss;  // the micro-batches' losses add up to the mini-batch's
      kl_sum += result.mean_kl * n;
      ratio_sum += result.mean_ratio * n;
      clipped_sum += result.clip_fraction * n;
      trained_tokens += result.n_tokens;
    }
    grad_norm_sum += optimizer_->Step(params_, lr, &pool_);
  }
  const double train_s = SecondsOf(std::chrono::steady_clock::now() - train_begin);
  UpdateCurriculum(sampled);
  ++step_;

  const double nt = static_cast<double>(std::max<int64_t>(1, trained_tokens));
  const double step_s = SecondsOf(std::chrono::steady_clock::now() - begin);
  const bool trained = trained_tokens > 0;
  const double nan = std::nan("");
  nlohmann::json difficulty = nlohmann::json::array();
  double difficulty_mean = 0;
  const std::vector<TaskMixEntry>& mix = curriculum_.mix();
  for (const TaskMixEntry& e : mix) {
    difficulty.push_back({e.task, e.min_difficulty, e.max_difficulty});
    difficulty_mean +=
        0.5 * (e.min_difficulty + e.max_difficulty) / static_cast<double>(mix.size());
  }
  nlohmann::json row = {
      {"step", step_},
      {"reward", reward_sum / nc},
      {"accuracy", correct / nc},
      {"format_rate", format_ok / nc},
      {"truncated_rate", truncated / nc},
      {"response_length", length_sum / nc},
      {"loss", trained ? loss_sum / static_cast<double>(n_mb) : nan},
      {"kl", trained ? kl_sum / nt : nan},
      {"entropy", trained ? entropy_sum / nt : nan},
      {"clip_fraction", trained ? clipped_sum / nt : nan},
      {"mean_ratio", trained ? ratio_sum / nt : nan},
      {"groups_sampled", sampled.size()},
      {"groups_kept", kept.size()},
      {"mini_batches", n_mb},
      {"difficulty", difficulty},
      {"difficulty_mean", difficulty_mean},
      {"lr", lr},
      {"grad_norm", n_mb > 0 ? grad_norm_sum / static_cast<double>(n_mb) : nan},
      {"tokens_per_s", step_s > 0 ? static_cast<double>(sampled_tokens) / step_s : 0.0},
      {"rollout_s", rollout_s},
      {"train_s", train_s},
      {"elapsed_s", SecondsOf(std::chrono::steady_clock::now() - start_)}};
  if (samples_ && step_ % config_.log_every == 0) WriteSamples(sampled);
  return row;
}

void GrpoTrainer::SaveCheckpoint() {
  namespace fs = std::filesystem;
  fs::create_directories(config_.out);
  const DType dtype = config_.save_dtype == "bf16" ? DType::BF16 : DType::F32;
  SaveModelCheckpoint(config_.out, params_, dtype, config_.model + "/tokenizer.json");
  const fs::path generation = fs::path(config_.model) / "generation_config.json";
  if (fs::exists(generation))
    fs::copy_file(generation, fs::path(config_.out) / "generation_config.json",
                  fs::copy_options::overwrite_existing);
  const std::string metrics_path = config_.out + "/metrics.jsonl";
  if (!fs::exists(metrics_path)) return;
  const ModelConfig& c = params_.config();
  const GrpoLossOptions loss = GrpoLossOptionsFor(config_);
  nlohmann::json info = {{"model", config_.model},
                         {"parameters", params_.numel()},
                         {"layers", c.num_hidden_layers},
                         {"hidden", c.hidden_size},
                         {"tasks (start)", config_.tasks},
                         {"tasks (now)", TaskMixToString(curriculum_.mix())},
                         {"variant", config_.variant},
                         {"steps", config_.steps},
                         {"prompts x group", std::to_string(config_.prompts_per_step) + " x " +
                                                 std::to_string(config_.group_size)},
                         {"max_tokens", config_.max_tokens},
                         {"mini_batches", config_.mini_batches},
                         {"beta", config_.beta},
                         {"eps", std::to_string(loss.eps_lo) + " / " + std::to_string(loss.eps_hi)},
                         {"lr", config_.lr},
                         {"seed", config_.seed}};
  WriteTrainingReport(config_.out + "/report.html", ReadMetrics(metrics_path),
                      "whale grpo: " + config_.out, info);
}

void GrpoTrainer::Run(bool quiet) {
  std::filesystem::create_directories(config_.out);
  if (!metrics_) metrics_ = std::make_unique<MetricsWriter>(config_.out + "/metrics.jsonl");
  if (!samples_) samples_ = std::make_unique<MetricsWriter>(config_.out + "/samples.jsonl");
  const bool tty = isatty(fileno(stderr)) != 0;
  const int64_t first = step_;
  const auto run_start = std::chrono::steady_clock::now();
  while (step_ < config_.steps) {
    const nlohmann::json row = Step();
    const bool log = step_ % config_.log_every == 0 || step_ == config_.steps;
    if (log) metrics_->Write(row);
    if (!quiet && (tty || log)) {
      const double spent = SecondsOf(std::chrono::steady_clock::now() - run_start);
      const double per_step = spent / static_cast<double>(step_ - first);
      const double eta = per_step * static_cast<double>(config_.steps - step_);
      std::fprintf(stderr,
                   "%sstep %lld/%lld  reward %.3f  acc %.3f  len %.0f  kl %.4f  %.2f s/step  "
                   "%s tok/s  ETA %s%s",
                   tty ? "\r" : "", static_cast<long long>(step_),
                   static_cast<long long>(config_.steps), row["reward"].get<double>(),
                   row["accuracy"].get<double>(), row["response_length"].get<double>(),
                   row["kl"].is_number() ? row["kl"].get<double>() : 0.0, per_step,
                   HumanAmount(row["tokens_per_s"].get<double>(), "").c_str(),
                   FormatDuration(eta).c_str(), tty ? "   " : "\n");
    }
    if (config_.checkpoint_every > 0 && step_ % config_.checkpoint_every == 0 &&
        step_ < config_.steps)
      SaveCheckpoint();
  }
  if (!quiet && tty) std::fprintf(stderr, "\n");
  SaveCheckpoint();
}

}  // namespace whale
