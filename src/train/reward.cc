#include "train/reward.h"

#include "util/error.h"

namespace whale {

void ValidateRewardOptions(const RewardOptions& options) {
  if (options.max_length < 0) Fail("reward: max_length ", options.max_length, " must be >= 0");
  if (options.overlong_cache < 0 || options.overlong_cache > options.max_length) {
    Fail("reward: overlong_cache ", options.overlong_cache,
         " must be in [0, max_length = ", options.max_length, "]");
  }
}

bool FormatOk(std::string_view completion) {
  constexpr std::string_view kOpen = "<think>", kClose = "</think>";
  if (completion.find(kOpen) != std::string_view::npos) return false;
  const size_t close = completion.find(kClose);
  if (close == std::string_view::npos) return false;
  if (completion.find(kClose, close + 1) != std::string_view::npos) return false;
  return !TrimSpace(completion.substr(close + kClose.size())).empty();
}

double OverlongPenalty(int64_t length, int64_t max_length, int64_t cache) {
  if (length <= max_length - cache) return 0.0;
  if (length > max_length) return -1.0;
  return static_cast<double>((max_length - cache) - length) / static_cast<double>(cache);
}

Reward ComputeReward(const Task& task, const Problem& problem, std::string_view completion,
                     int64_t completion_tokens, const RewardOptions& options) {
  Reward reward;
  reward.verify = task.Verify(problem, completion);
  reward.correct = reward.verify.correct;
  reward.format_ok = FormatOk(completion);
  reward.accuracy = reward.correct ? 1.0 : 0.0;
  reward.format = reward.format_ok ? 1.0 : 0.0;
  if (options.max_length > 0) {
    reward.length = OverlongPenalty(completion_tokens, options.max_length, options.overlong_cache);
  }
  reward.total = options.accuracy_weight * reward.accuracy + options.format_weight * reward.format +
                 options.overlong_weight * reward.length;
  return reward;
}

}  // namespace whale
