// Scheduler: continuous batching over one Model. Requests wait in a queue; every step runs one
// Forward over one decode token of each running sequence plus prefill chunks of admitted ones,
// under a token budget (max_batch_tokens), so a long prompt is split and does not stall the
// others. New requests join between steps.
//
// Memory is fixed up front: `parallel + prefix_cache_entries` KV caches of `context` positions.
// A running sequence holds one; when it ends, its cache (the KV of prompt + output) joins the
// prefix cache, an LRU keyed by the tokens it holds. A new request whose prompt shares a prefix
// with a cached entry copies those rows and prefills only the rest. A cache comes from the free
// list, or else from the least recently used entry, so nothing grows.
//
// A forced tool call (RequestOptions::tool_call) samples as usual, then checks the token against
// the choice's TokenConstraint; only when it is not allowed are the disallowed logits masked and
// the token drawn again from the same row. For greedy and plain temperature sampling this is
// exactly sampling from the masked distribution (rejection); with top-k / top-p / min-p the
// filters of the second draw see the masked row, of the first the unmasked one.
//
// n > 1: the prompt is prefilled once, then copied into n - 1 more caches (forked) and every choice
// samples on its own with seed + index. Callbacks run on the scheduler's thread and must be quick.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "model/model.h"
#include "model/sampler.h"
#include "runtime/token_constraint.h"
#include "util/error.h"

namespace whale {

// Submit() on a full queue (servers answer 429).
class QueueFullError : public Error {
 public:
  using Error::Error;
};

struct SchedulerOptions {
  int parallel = 4;              // sequences decoding at once (all choices of all requests)
  int64_t context = 2048;        // positions per sequence (prompt + output)
  int prefix_cache_entries = 4;  // finished sequences kept for prefix reuse (0: off)
  int64_t max_queue = 256;       // waiting requests; Submit throws beyond it
};

struct RequestOptions {
  std::vector<int32_t> prompt;
  int n = 1;
  int64_t max_tokens = 128;
  std::vector<int32_t> stop_tokens;  // end a choice; not passed to on_token
  SamplerConfig sampling;            // choice i uses seed + i
  int top_logprobs = -1;             // -1: no logprobs; 0..20: logprob plus that many alternatives
  // Forces every choice to be one tool call (tool_choice required / named); the choice ends with
  // StopReason::kStopToken when the call is complete.
  std::shared_ptr<const ToolCallGrammar> tool_call;
};

enum class StopReason { kStopToken, kLength, kCallback, kCancelled, kError };
const char* StopReasonName(StopReason reason);

struct TokenEvent {
  int choice = 0;
  int32_t token = 0;
  float logprob = 0;                           // when top_logprobs >= 0
  std::vector<std::pair<int32_t, float>> top;  // [top_logprobs] best first
};

struct ChoiceResult {
  std::vector<int32_t> tokens;  // generated, the stop token included
  StopReason stop = StopReason::kLength;
};

struct RequestResult {
  std::vector<ChoiceResult> choices;
  int64_t prompt_tokens = 0;
  int64_t cached_tokens = 0;  // prompt positions copied from the prefix cache
  std::string error;          // StopReason::kError: what went wrong
};

class Scheduler;

// A submitted request: cancel it, or wait for it.
class RequestHandle {
 public:
  void Cancel() { cancelled_ = true; }
  bool cancelled() const { return cancelled_; }
  // Blocks until the request finished (or cancelled); true when done within `seconds`.
  bool WaitFor(double seconds);
  const RequestResult& result() const { return result_; }  // valid once done

 private:
  friend class Scheduler;
  std::atomic<bool> cancelled_{false};
  std::mutex mutex_;
  std::condition_variable done_cv_;
  bool done_ = false;
  RequestResult result_;
};

struct SchedulerStats {
  int64_t requests_total = 0;
  int64_t requests_finished = 0;
  int64_t requests_cancelled = 0;
  int64_t prompt_tokens_total = 0;
  int64_t cached_tokens_total = 0;
  int64_t generated_tokens_total = 0;
  int64_t steps_total = 0;
  int64_t waiting = 0;
  int64_t running = 0;  // sequences
  int64_t last_batch_tokens = 0;
  int64_t last_batch_sequences = 0;
  int64_t free_caches = 0;  // caches neither running nor in the prefix cache
  int64_t cached_entries = 0;
  // Where the scheduler thread's time goes (the decode-step profile): Forward, then sampling
  // (constraints included) and the callbacks (the server's detokenizing, parsing and JSON).
  double busy_seconds = 0;       // time spent in Forward
  double sample_seconds = 0;     // sampling, logprobs and forced-call masks, callbacks excluded
  double callback_seconds = 0;   // on_token callbacks
  double tokens_per_second = 0;  // generated tokens per second over the last few seconds
};

class Scheduler {
 public:
  // on_token(event) -> false ends that choice (StopReason::kCallback).
  using TokenCallback = std::function<bool(const TokenEvent&)>;
  using DoneCallback = std::function<void(const RequestResult&)>;
  // on_step() runs once per step in which the request got tokens, after all of that step's
  // on_token calls: a consumer woken here sees the whole step's output at once (one wakeup per
  // request and step instead of one per token, and none while the step still samples).
  using StepCallback = std::function<void()>;

  Scheduler(Model& model, const SchedulerOptions& options);
  ~Scheduler();  // cancels what is left and joins the thread
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Throws Error for a request that can never run: empty prompt, prompt + max_tokens over the
  // context, n outside [1, parallel], bad sampling settings; QueueFullError on a full queue.
  std::shared_ptr<RequestHandle> Submit(RequestOptions request, TokenCallback on_token = {},
                                        DoneCallback on_done = {}, StepCallback on_step = {});

  SchedulerStats stats() const;
  const SchedulerOptions& options() const { return options_; }
  int64_t vocab_size() const { return vocab_; }

 private:
  struct Request;
  struct Sequence;
  struct CacheSlot;

  void Loop();
  void Admit();
  bool Step();
  int AcquireCache(int keep);  // a free cache index, evicting the LRU entry if needed
  void FinishChoice(Sequence& seq, StopReason reason);
  void ReleaseSequence(Sequence& seq);
  void CompleteRequest(Request& request);
  void SampleChoice(Sequence& seq, const float* logits);
  bool TimedCallback(Request& r, const TokenEvent& event);  // on_token, timed
  int64_t RunningSequences() const;                         // choices holding a KV cache
  void UpdateGauges();  // running, free and cached counts; mutex_ held

  Model& model_;
  SchedulerOptions options_;
  int64_t vocab_;
  int64_t max_batch_tokens_;

  std::vector<CacheSlot> slots_;  // [parallel + prefix_cache_entries]
  std::vector<std::unique_ptr<Sequence>> running_;
  std::vector<float> logits_;    // [max_batch_tokens, vocab]
  std::vector<float> row_;       // [vocab] one choice's copy of a logits row
  std::vector<float> logprobs_;  // [vocab]
  std::vector<float> masked_;    // [vocab] a constrained choice's row before sampling
  int64_t lru_clock_ = 0;
  double step_callback_seconds_ = 0;               // on_token time within the current step
  int64_t step_index_ = 0;                         // steps that sampled, for on_step
  std::vector<std::shared_ptr<Request>> stepped_;  // requests with tokens in this step

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::shared_ptr<Request>> queue_;
  bool stopping_ = false;
  SchedulerStats stats_;
  std::deque<std::pair<double, int64_t>> recent_;  // (time, generated tokens) per step, 5 s
  std::thread thread_;
};

}  // namespace whale
