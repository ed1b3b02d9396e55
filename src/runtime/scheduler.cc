#include "runtime/scheduler.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>

#include "util/error.h"

namespace whale {

const char* StopReasonName(StopReason reason) {
  switch (reason) {
    case StopReason::kStopToken:
      return "stop";
    case StopReason::kLength:
      return "length";
    case StopReason::kCallback:
      return "callback";
    case StopReason::kCancelled:
      return "cancelled";
    case StopReason::kError:
      return "error";
  }
  return "?";
}

bool RequestHandle::WaitFor(double seconds) {
  std::unique_lock lock(mutex_);
  return done_cv_.wait_for(lock, std::chrono::duration<double>(seconds), [&] { return done_; });
}

struct Scheduler::Request {
  RequestOptions options;
  TokenCallback on_token;
  DoneCallback on_done;
  StepCallback on_step;
  int64_t last_step = -1;  // the step in which on_step is due (scheduler thread only)
  std::shared_ptr<RequestHandle> handle;
  RequestResult result;
  int live = 0;                 // choices not finished yet
  std::vector<int> fork_slots;  // [n - 1] caches reserved for choices 1.. until the fork
};

struct Scheduler::Sequence {
  std::shared_ptr<Request> request;
  int choice = 0;
  int slot = -1;
  std::vector<int32_t> tokens;  // prompt + generated; the KV holds all but the last sampled one
  bool prefilling = true;
  std::unique_ptr<Sampler> sampler;
  std::unique_ptr<TokenConstraint> constraint;  // forced tool call
  bool finished = false;
};

struct Scheduler::CacheSlot {
  enum class State { kFree, kRunning, kCached };
  KvCache cache;
  State state = State::kFree;
  std::vector<int32_t> tokens;  // kCached: the tokens whose KV the cache holds
  int64_t last_used = 0;
};

namespace {

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// CPU time of the calling thread: the sampling and callback counters measure the scheduler
// thread's own work, which wall time overstates on a busy machine (any preemption inside the
// interval counts); Forward runs on the pool's threads too, so it is timed on the wall clock.
double ThreadCpuNow() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

}  // namespace

Scheduler::Scheduler(Model& model, const SchedulerOptions& options)
    : model_(model),
      options_(options),
      vocab_(model.config().vocab_size),
      max_batch_tokens_(model.options().max_batch_tokens) {
  if (options_.parallel < 1) Fail("--parallel must be at least 1, got ", options_.parallel);
  if (options_.parallel > max_batch_tokens_)
    Fail("--parallel ", options_.parallel, " exceeds the model's batch of ", max_batch_tokens_,
         " tokens per step");
  if (options_.context < 2 || options_.context > model.options().max_context)
    Fail("--ctx ", options_.context, " must be in [2, ", model.options().max_context,
         "] (the model's max_context)");
  if (options_.prefix_cache_entries < 0)
    Fail("prefix cache entries must be >= 0, got ", options_.prefix_cache_entries);
  slots_.resize(options_.parallel + options_.prefix_cache_entries);
  for (CacheSlot& slot : slots_) slot.cache = model.NewCache(options_.context);
  logits_.resize(max_batch_tokens_ * vocab_);
  row_.resize(vocab_);
  logprobs_.resize(vocab_);
  masked_.resize(vocab_);
  stats_.free_caches = static_cast<int64_t>(slots_.size());
  thread_ = std::thread([this] { Loop(); });
}

Scheduler::~Scheduler() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

std::shared_ptr<RequestHandle> Scheduler::Submit(RequestOptions request, TokenCallback on_token,
                                                 DoneCallback on_done, StepCallback on_step) {
  if (request.prompt.empty()) Fail("the prompt is empty");
  for (int32_t t : request.prompt)
    if (t < 0 || t >= vocab_)
      Fail("prompt token ", t, " is outside the vocabulary [0, ", vocab_, ")");
  if (request.n < 1 || request.n > options_.parallel)
    Fail("n = ", request.n, " must be in [1, ", options_.parallel, "] (--parallel)");
  if (request.max_tokens < 1) Fail("max_tokens = ", request.max_tokens, " must be at least 1");
  const int64_t prompt = static_cast<int64_t>(request.prompt.size());
  if (prompt + request.max_tokens > options_.context)
    Fail("the prompt (", prompt, " tokens) plus max_tokens (", request.max_tokens,
         ") exceeds the context of ", options_.context, " tokens");
  if (request.top_logprobs < -1 || request.top_logprobs > 20)
    Fail("top_logprobs = ", request.top_logprobs, " must be in [0, 20]");
  request.sampling.Validate();
  if (request.tool_call) {
    if (request.tool_call->vocab->size() > vocab_)
      Fail("the tokenizer's ", request.tool_call->vocab->size(),
           " tokens exceed the model's vocabulary of ", vocab_);
    if (request.max_tokens < request.tool_call->MinTokens())
      Fail("max_tokens = ", request.max_tokens, " cannot hold a forced tool call, which takes ",
           "at least ", request.tool_call->MinTokens(), " tokens");
  }
  auto r = std::make_shared<Request>();
  r->options = std::move(request);
  r->on_token = std::move(on_token);
  r->on_done = std::move(on_done);
  r->on_step = std::move(on_step);
  r->handle = std::make_shared<RequestHandle>();
  r->result.prompt_tokens = prompt;
  r->result.choices.resize(r->options.n);
  auto handle = r->handle;
  {
    std::lock_guard lock(mutex_);
    if (static_cast<int64_t>(queue_.size()) >= options_.max_queue)
      throw QueueFullError(Cat("the request queue is full (", options_.max_queue, " waiting)"));
    queue_.push_back(std::move(r));
    ++stats_.requests_total;
    stats_.waiting = static_cast<int64_t>(queue_.size());
  }
  wake_.notify_all();
  return handle;
}

SchedulerStats Scheduler::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

int Scheduler::AcquireCache(int keep) {
  int lru = -1;
  for (int i = 0; i < static_cast<int>(slots_.size()); ++i) {
    if (slots_[i].state == CacheSlot::State::kFree) return i;
    if (slots_[i].state == CacheSlot::State::kCached && i != keep &&
        (lru < 0 || slots_[i].last_used < slots_[lru].last_used))
      lru = i;
  }
  if (lru < 0) lru = keep;  // only the entry being reused is left: take it over
  WHALE_ASSERT(lru >= 0, "no KV cache available although fewer than --parallel sequences run");
  slots_[lru].tokens.clear();
  slots_[lru].state = CacheSlot::State::kFree;
  return lru;
}

int64_t Scheduler::RunningSequences() const {
  // A request still prefilling is one entry but already holds a cache for each of its n choices.
  int64_t running = 0;
  for (const auto& s : running_)
    running += s->finished ? 0 : s->prefilling ? s->request->options.n : 1;
  return running;
}

void Scheduler::Admit() {
  int64_t running = RunningSequences();
  for (;;) {
    std::shared_ptr<Request> r;
    std::vector<std::shared_ptr<Request>> dropped;  // cancelled while waiting
    {
      std::lock_guard lock(mutex_);
      for (auto it = queue_.begin(); it != queue_.end();) {
        if (!(*it)->handle->cancelled()) {
          ++it;
          continue;
        }
        dropped.push_back(std::move(*it));
        it = queue_.erase(it);
        ++stats_.requests_cancelled;
      }
      if (!queue_.empty() && running + queue_.front()->options.n <= options_.parallel) {
        r = std::move(queue_.front());
        queue_.pop_front();
      }
      stats_.waiting = static_cast<int64_t>(queue_.size());
    }
    for (auto& d : dropped) {
      for (ChoiceResult& c : d->result.choices) c.stop = StopReason::kCancelled;
      CompleteRequest(*d);
    }
    if (!r) return;
    const std::vector<int32_t>& prompt = r->options.prompt;
    // The longest cached prefix; at least one prompt token is left to prefill for its logits.
    int best = -1;
    int64_t best_len = 0;
    for (int i = 0; i < static_cast<int>(slots_.size()); ++i) {
      if (slots_[i].state != CacheSlot::State::kCached) continue;
      const auto& t = slots_[i].tokens;
      const size_t limit = std::min(t.size(), prompt.size() - 1);
      size_t len = 0;
      while (len < limit && t[len] == prompt[len]) ++len;
      if (static_cast<int64_t>(len) > best_len) {
        best = i;
        best_len = static_cast<int64_t>(len);
      }
    }
    const int slot = AcquireCache(best);
    if (best >= 0 && slot != best) {
      slots_[slot].cache.CopyPrefixFrom(slots_[best].cache, best_len);
      slots_[best].last_used = ++lru_clock_;
    } else if (best >= 0) {
      slots_[slot].cache.Truncate(best_len);
    } else {
      slots_[slot].cache.Clear();
    }
    slots_[slot].state = CacheSlot::State::kRunning;
    for (int i = 1; i < r->options.n; ++i) {
      const int fork = AcquireCache(-1);
      slots_[fork].state = CacheSlot::State::kRunning;
      r->fork_slots.push_back(fork);
    }
    r->result.cached_tokens = best_len;
    r->live = r->options.n;
    auto seq = std::make_unique<Sequence>();
    seq->request = r;
    seq->slot = slot;
    seq->tokens = prompt;
    running_.push_back(std::move(seq));
    running += r->options.n;
    std::lock_guard lock(mutex_);
    UpdateGauges();  // admitted: no longer waiting, running from now on
    stats_.prompt_tokens_total += static_cast<int64_t>(prompt.size());
    stats_.cached_tokens_total += best_len;
  }
}

void Scheduler::SampleChoice(Sequence& seq, const float* logits) {
  Request& r = *seq.request;
  const RequestOptions& o = r.options;
  if (r.on_step && r.last_step != step_index_) {
    r.last_step = step_index_;
    stepped_.push_back(seq.request);
  }
  std::copy(logits, logits + vocab_, row_.begin());
  TokenEvent event;
  event.choice = seq.choice;
  const int64_t prompt = static_cast<int64_t>(o.prompt.size());
  const std::span<const int32_t> generated(seq.tokens.data() + prompt, seq.tokens.size() - prompt);
  if (o.top_logprobs >= 0) {
    // Log-probabilities of the model's own distribution (before penalties and temperature).
    double max = -INFINITY;
    for (int64_t i = 0; i < vocab_; ++i) max = std::max(max, static_cast<double>(row_[i]));
    double sum = 0;
    for (int64_t i = 0; i < vocab_; ++i) sum += std::exp(row_[i] - max);
    const double log_z = max + std::log(sum);
    for (int64_t i = 0; i < vocab_; ++i) logprobs_[i] = static_cast<float>(row_[i] - log_z);
    for (int k = 0; k < o.top_logprobs; ++k) {
      int32_t arg = -1;
      for (int64_t i = 0; i < vocab_; ++i) {
        bool taken = false;
        for (const auto& [id, lp] : event.top) taken |= id == i;
        if (!taken && (arg < 0 || logprobs_[i] > logprobs_[arg])) arg = static_cast<int32_t>(i);
      }
      if (arg < 0) break;
      event.top.emplace_back(arg, logprobs_[arg]);
    }
  }
  int32_t token;
  if (seq.constraint) {
    std::copy(row_.begin(), row_.end(), masked_.begin());  // Sample() penalizes row_ in place
    token = seq.sampler->Sample(row_, generated);
    if (!seq.constraint->Allows(token)) {
      seq.constraint->Mask(masked_);
      token = seq.sampler->Sample(masked_, generated);
    }
    seq.constraint->Accept(token);
  } else {
    token = seq.sampler->Sample(row_, generated);
  }
  if (o.top_logprobs >= 0) event.logprob = logprobs_[token];
  event.token = token;
  seq.tokens.push_back(token);
  {
    std::lock_guard lock(mutex_);
    ++stats_.generated_tokens_total;
  }
  const int64_t n_generated = static_cast<int64_t>(seq.tokens.size()) - prompt;
  if (std::find(o.stop_tokens.begin(), o.stop_tokens.end(), token) != o.stop_tokens.end()) {
    FinishChoice(seq, StopReason::kStopToken);
  } else if (r.on_token && !TimedCallback(r, event)) {
    FinishChoice(seq, StopReason::kCallback);
  } else if (seq.constraint && seq.constraint->done()) {
    FinishChoice(seq, StopReason::kStopToken);
  } else if (n_generated >= o.max_tokens ||
             static_cast<int64_t>(seq.tokens.size()) > options_.context) {
    FinishChoice(seq, StopReason::kLength);
  }
}

bool Scheduler::TimedCallback(Request& r, const TokenEvent& event) {
  const double start = ThreadCpuNow();
  const bool more = r.on_token(event);
  step_callback_seconds_ += ThreadCpuNow() - start;
  return more;
}

bool Scheduler::Step() {
  for (auto& seq : running_)
    if (!seq->finished && seq->request->handle->cancelled())
      FinishChoice(*seq, StopReason::kCancelled);
  std::erase_if(running_, [](const auto& s) { return s->finished; });
  if (running_.empty()) return false;

  std::vector<SequenceChunk> batch;
  std::vector<Sequence*> owners;
  std::vector<bool> samples;
  int64_t budget = max_batch_tokens_;
  for (auto& seq : running_) {
    if (seq->prefilling) continue;
    batch.push_back({&slots_[seq->slot].cache, {&seq->tokens.back(), 1}, false});
    owners.push_back(seq.get());
    samples.push_back(true);
    --budget;
  }
  const int64_t decode_sequences = static_cast<int64_t>(batch.size());
  for (auto& seq : running_) {
    if (!seq->prefilling || budget <= 0) continue;
    const KvCache& cache = slots_[seq->slot].cache;
    const int64_t done = cache.length();
    const int64_t left = static_cast<int64_t>(seq->tokens.size()) - done;
    const int64_t len = std::min(left, budget);
    batch.push_back(
        {&slots_[seq->slot].cache, {seq->tokens.data() + done, static_cast<size_t>(len)}, false});
    owners.push_back(seq.get());
    samples.push_back(len == left);
    budget -= len;
  }
  const int64_t batch_tokens = max_batch_tokens_ - budget;
  const double start = Now();
  try {
    model_.Forward(batch, std::span<float>(logits_.data(), batch.size() * vocab_));
  } catch (const std::exception& e) {
    // Requests are validated on submission, so this is unexpected: fail them, keep serving.
    for (Sequence* seq : owners) {
      seq->request->result.error = e.what();
      FinishChoice(*seq, StopReason::kError);
    }
    return true;
  }
  const double seconds = Now() - start;
  const double cpu_start = ThreadCpuNow();
  step_callback_seconds_ = 0;
  int64_t generated_before;
  {
    std::lock_guard lock(mutex_);
    generated_before = stats_.generated_tokens_total;
  }
  for (size_t b = 0; b < batch.size(); ++b) {
    if (!samples[b]) continue;
    Sequence& seq = *owners[b];
    const float* row = logits_.data() + b * vocab_;
    if (seq.prefilling) {
      seq.prefilling = false;
      Request& r = *seq.request;
      SamplerConfig config = r.options.sampling;
      seq.sampler = std::make_unique<Sampler>(config);
      // Submit() checked that max_tokens fits the context and holds a forced call.
      auto constraint = [&]() -> std::unique_ptr<TokenConstraint> {
        if (!r.options.tool_call) return nullptr;
        return std::make_unique<TokenConstraint>(r.options.tool_call, r.options.max_tokens);
      };
      seq.constraint = constraint();
      // Fork the other choices off the prefilled prompt.
      std::vector<Sequence*> forks;
      for (int i = 1; i < r.options.n; ++i) {
        auto fork = std::make_unique<Sequence>();
        fork->request = seq.request;
        fork->choice = i;
        fork->slot = r.fork_slots[i - 1];
        fork->tokens = seq.tokens;
        fork->prefilling = false;
        config.seed = r.options.sampling.seed + static_cast<uint64_t>(i);
        fork->sampler = std::make_unique<Sampler>(config);
        fork->constraint = constraint();
        slots_[fork->slot].cache.CopyPrefixFrom(slots_[seq.slot].cache,
                                                slots_[seq.slot].cache.length());
        forks.push_back(fork.get());
        running_.push_back(std::move(fork));
      }
      r.fork_slots.clear();
      SampleChoice(seq, row);
      for (Sequence* fork : forks) SampleChoice(*fork, row);
    } else {
      SampleChoice(seq, row);
    }
  }
  const double wake_start = ThreadCpuNow();
  for (const auto& r : stepped_) r->on_step();
  stepped_.clear();
  step_callback_seconds_ += ThreadCpuNow() - wake_start;
  ++step_index_;
  std::erase_if(running_, [](const auto& s) { return s->finished; });
  const double now = Now();
  std::lock_guard lock(mutex_);
  ++stats_.steps_total;
  stats_.busy_seconds += seconds;
  stats_.callback_seconds += step_callback_seconds_;
  stats_.sample_seconds += ThreadCpuNow() - cpu_start - step_callback_seconds_;
  stats_.last_batch_tokens = batch_tokens;
  stats_.last_batch_sequences = static_cast<int64_t>(batch.size());
  (void)decode_sequences;
  recent_.emplace_back(now, stats_.generated_tokens_total - generated_before);
  while (!recent_.empty() && recent_.front().first < now - 5.0) recent_.pop_front();
  int64_t recent_tokens = 0;
  for (const auto& [t, n] : recent_) recent_tokens += n;
  const double span = recent_.size() > 1 ? now - recent_.front().first + seconds : seconds;
  stats_.tokens_per_second = span > 0 ? recent_tokens / span : 0;
  UpdateGauges();
  return true;
}

void Scheduler::UpdateGauges() {
  stats_.running = RunningSequences();
  int64_t free = 0, cached = 0;
  for (const CacheSlot& slot : slots_) {
    free += slot.state == CacheSlot::State::kFree;
    cached += slot.state == CacheSlot::State::kCached;
  }
  stats_.free_caches = free;
  stats_.cached_entries = cached;
}

void Scheduler::ReleaseSequence(Sequence& seq) {
  CacheSlot& slot = slots_[seq.slot];
  const int64_t length = slot.cache.length();
  if (options_.prefix_cache_entries > 0 && length > 0) {
    slot.state = CacheSlot::State::kCached;
    slot.tokens.assign(seq.tokens.begin(), seq.tokens.begin() + length);
    slot.last_used = ++lru_clock_;
  } else {
    slot.state = CacheSlot::State::kFree;
    slot.tokens.clear();
  }
  seq.slot = -1;
}

void Scheduler::FinishChoice(Sequence& seq, StopReason reason) {
  if (seq.finished) return;
  seq.finished = true;
  Request& r = *seq.request;
  ChoiceResult& choice = r.result.choices[seq.choice];
  const size_t prompt = r.options.prompt.size();
  choice.tokens.assign(seq.tokens.begin() + std::min(prompt, seq.tokens.size()), seq.tokens.end());
  choice.stop = reason;
  ReleaseSequence(seq);
  int finished_here = 1;
  if (seq.prefilling) {
    // Ended before the fork: the other choices end with it and their caches go back.
    for (int fork : r.fork_slots) {
      slots_[fork].state = CacheSlot::State::kFree;
      slots_[fork].cache.Clear();
    }
    r.fork_slots.clear();
    for (int i = 1; i < r.options.n; ++i) r.result.choices[i].stop = reason;
    finished_here = r.options.n;
  }
  r.live -= finished_here;
  if (r.live == 0) {
    {
      // The gauges are current before anyone waiting on the request wakes.
      std::lock_guard lock(mutex_);
      UpdateGauges();
      ++stats_.requests_finished;
      if (reason == StopReason::kCancelled) ++stats_.requests_cancelled;
    }
    CompleteRequest(r);
  }
}

void Scheduler::CompleteRequest(Request& r) {
  if (r.on_done) r.on_done(r.result);
  {
    std::lock_guard lock(r.handle->mutex_);
    r.handle->result_ = r.result;
    r.handle->done_ = true;
  }
  r.handle->done_cv_.notify_all();
}

void Scheduler::Loop() {
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty() || !running_.empty(); });
      if (stopping_) break;
    }
    Admit();
    Step();
  }
  for (auto& seq : running_) {
    seq->request->handle->Cancel();
    FinishChoice(*seq, StopReason::kCancelled);
  }
  running_.clear();
  std::unique_lock lock(mutex_);
  while (!queue_.empty()) {
    auto r = std::move(queue_.front());
    queue_.pop_front();
    for (ChoiceResult& c : r->result.choices) c.stop = StopReason::kCancelled;
    lock.unlock();
    CompleteRequest(*r);
    lock.lock();
  }
}

}  // namespace whale
