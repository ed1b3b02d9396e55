// Rewards for reinforcement learning on verifiable tasks (training.md 5-6).
//
// total = accuracy_weight * [verifier says correct]
//       + format_weight * [format ok]
//       + overlong_weight * OverlongPenalty(completion tokens)   (when max_length > 0)
#pragma once

#include <cstdint>
#include <string_view>

#include "train/task.h"

namespace whale {

struct RewardOptions {
  double accuracy_weight = 1.0;
  // R1-Zero weighs format like accuracy; a small weight (0.1) helps a tiny model pick up the
  // format without drowning the accuracy signal (training.md 6).
  double format_weight = 0.1;
  // DAPO soft overlong penalty: off when max_length is 0.
  int64_t max_length = 0;      // L_max, in tokens
  int64_t overlong_cache = 0;  // L_c: the last L_c tokens before L_max are penalized linearly
  double overlong_weight = 1.0;
};

// Checks the options; throws Error naming the field and value.
void ValidateRewardOptions(const RewardOptions& options);

struct Reward {
  bool correct = false;
  bool format_ok = false;
  double accuracy = 0;  // 1 when correct
  double format = 0;    // 1 when format_ok
  double length = 0;    // the overlong penalty in [-1, 0]
  double total = 0;     // the weighted sum
  VerifyResult verify;
};

// The completion (the text after the template's "<think>\n") is well formed: exactly one
// "</think>", no "<think>" anywhere (the template already opened it), and a non-blank answer
// after "</think>".
bool FormatOk(std::string_view completion);

// DAPO soft overlong punishment: 0 up to L_max - L_c tokens, then falling linearly to -1 at
// L_max, and -1 beyond. `cache` = 0 gives a hard cliff at L_max.
double OverlongPenalty(int64_t length, int64_t max_length, int64_t cache);

// Scores one completion of `completion_tokens` tokens.
Reward ComputeReward(const Task& task, const Problem& problem, std::string_view completion,
                     int64_t completion_tokens, const RewardOptions& options);

}  // namespace whale
