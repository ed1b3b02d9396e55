#include "runtime/token_constraint.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "runtime/chat_output.h"
#include "util/error.h"

namespace whale {
namespace {

// Bytes the shortest completions of JsonPrefix::Closing() and of a name use, each of which must
// be a token of its own for the budget guarantee: brackets, quote, colon, the 0 that fills a
// value, the \udc00 that pairs a high surrogate, the rest of true / false / null, and the first
// continuation byte of an unfinished UTF-8 character (0x80, or 0x90 / 0xA0 after F0 / E0).
constexpr std::string_view kClosingBytes = "{}]\":0\\udcnrtelasf\x80\x90\xA0";

}  // namespace

VocabBytes::VocabBytes(const Tokenizer& tokenizer) {
  if (!tokenizer.has_byte_level_decoder())
    Fail(
        "forced tool calls need a byte-level tokenizer (a ByteLevel decoder); this one has "
        "another decoder");
  const int32_t n = tokenizer.vocab_size();
  offsets_.reserve(static_cast<size_t>(n) + 1);
  special_.resize(n);
  byte_token_.fill(-1);
  std::array<uint32_t, 256> count{};
  offsets_.push_back(0);
  for (int32_t id = 0; id < n; ++id) {
    const size_t before = data_.size();
    tokenizer.AppendTokenBytes(id, false, data_);
    offsets_.push_back(static_cast<uint32_t>(data_.size()));
    special_[id] = tokenizer.IsSpecialToken(id) ? 1 : 0;
    if (special_[id] || data_.size() == before) continue;
    const auto first = static_cast<uint8_t>(data_[before]);
    ++count[first];
    if (data_.size() == before + 1 && byte_token_[first] < 0) byte_token_[first] = id;
  }
  for (int b = 0; b < 256; ++b) first_[b + 1] = first_[b] + count[b];
  by_first_.resize(first_[256]);
  std::array<uint32_t, 256> next;
  std::copy(first_.begin(), first_.begin() + 256, next.begin());
  for (int32_t id = 0; id < n; ++id) {
    const std::string_view b = bytes(id);
    if (special_[id] || b.empty()) continue;
    by_first_[next[static_cast<uint8_t>(b[0])]++] = id;
  }
}

std::shared_ptr<const ToolCallGrammar> ToolCallGrammar::Make(
    const Tokenizer& tokenizer, std::shared_ptr<const VocabBytes> vocab, bool close_think,
    std::vector<std::string> names, bool named) {
  using namespace tool_syntax;
  if (names.empty()) Fail("a forced tool call needs at least one function name");
  if (named && names.size() != 1) Fail("a named tool choice names one function");
  auto g = std::make_shared<ToolCallGrammar>();
  std::string prefix(close_think ? kThinkClose : "");
  prefix += kCallsBegin;
  prefix += kCallBegin;
  prefix += "function";
  prefix += kSep;
  std::string needed(kClosingBytes);
  if (named) {
    prefix += names[0];
    prefix += "\n";
    prefix += kFenceOpen;
  } else {
    for (const std::string& name : names) {
      g->targets.push_back(name + "\n" + std::string(kFenceOpen));
      needed += g->targets.back();
    }
  }
  for (char c : needed)
    if (vocab->byte_token(static_cast<uint8_t>(c)) < 0)
      Fail("the vocabulary has no single-byte token for byte 0x", std::hex,
           static_cast<int>(static_cast<uint8_t>(c)), ", which forced tool calls need");
  g->prefix = tokenizer.Encode(prefix, /*add_special_tokens=*/false);
  g->suffix =
      tokenizer.Encode(std::string(kFenceClose) + std::string(kCallEnd) + std::string(kCallsEnd),
                       /*add_special_tokens=*/false);
  g->vocab = std::move(vocab);
  return g;
}

int64_t ToolCallGrammar::MinTokens() const {
  size_t name = targets.empty() ? 0 : targets[0].size();
  for (const std::string& t : targets) name = std::min(name, t.size());
  return static_cast<int64_t>(prefix.size() + name + 2 + suffix.size());  // 2: "{}"
}

TokenConstraint::TokenConstraint(std::shared_ptr<const ToolCallGrammar> grammar, int64_t budget)
    : grammar_(std::move(grammar)), left_(budget) {
  if (budget < grammar_->MinTokens())
    Fail("max_tokens = ", budget, " cannot hold a forced tool call, which takes at least ",
         grammar_->MinTokens(), " tokens");
  if (grammar_->prefix.empty()) phase_ = grammar_->targets.empty() ? Phase::kArgs : Phase::kName;
}

int64_t TokenConstraint::NameNeeds(std::string_view name) const {
  int64_t best = -1;
  for (const std::string& t : grammar_->targets) {
    if (t.size() < name.size() || t.compare(0, name.size(), name) != 0) continue;
    const auto left = static_cast<int64_t>(t.size() - name.size());
    if (best < 0 || left < best) best = left;
  }
  if (best < 0) return -1;
  return best + 2 + static_cast<int64_t>(grammar_->suffix.size());  // 2: "{}"
}

int64_t TokenConstraint::ArgsNeeds(const JsonPrefix& json) const {
  return static_cast<int64_t>(json.ClosingLength() + grammar_->suffix.size());
}

bool TokenConstraint::SafeArgs(std::string_view bytes) const {
  // A string may hold any text, but the parser would end the arguments at a call-end marker.
  if (bytes.find('>') == std::string_view::npos) return true;
  std::string text = tail_;
  text += bytes;
  return text.find(tool_syntax::kCallEnd) == std::string::npos;
}

bool TokenConstraint::AllowsName(std::string_view bytes) const {
  std::string name = name_;
  name += bytes;
  const int64_t needs = NameNeeds(name);
  if (needs >= 0) return needs <= left_ - 1;
  // A token may run past the fence into the arguments.
  for (const std::string& t : grammar_->targets) {
    if (name.size() <= t.size() || name.compare(0, t.size(), t) != 0) continue;
    const std::string_view rest = std::string_view(name).substr(t.size());
    JsonPrefix json(true, kMaxSpaceRun);
    if (json.PushAll(rest) && SafeArgs(rest) &&
        (json.complete() ? static_cast<int64_t>(grammar_->suffix.size()) : ArgsNeeds(json)) <=
            left_ - 1)
      return true;
  }
  return false;
}

bool TokenConstraint::AllowsArgs(std::string_view bytes) const {
  JsonPrefix json = json_;
  if (!json.PushAll(bytes) || !SafeArgs(bytes)) return false;
  return (json.complete() ? static_cast<int64_t>(grammar_->suffix.size()) : ArgsNeeds(json)) <=
         left_ - 1;
}

bool TokenConstraint::Allows(int32_t token) const {
  const VocabBytes& vocab = *grammar_->vocab;
  switch (phase_) {
    case Phase::kPrefix:
      return token == grammar_->prefix[forced_];
    case Phase::kSuffix:
      return token == grammar_->suffix[forced_];
    case Phase::kDone:
      return false;
    case Phase::kName:
    case Phase::kArgs:
      if (token < 0 || token >= vocab.size() || vocab.special(token)) return false;
      if (vocab.bytes(token).empty()) return false;
      return phase_ == Phase::kName ? AllowsName(vocab.bytes(token))
                                    : AllowsArgs(vocab.bytes(token));
  }
  return false;
}

void TokenConstraint::Mask(std::span<float> logits) {
  const VocabBytes& vocab = *grammar_->vocab;
  allowed_.clear();
  if (phase_ == Phase::kPrefix) {
    allowed_.push_back(grammar_->prefix[forced_]);
  } else if (phase_ == Phase::kSuffix) {
    allowed_.push_back(grammar_->suffix[forced_]);
  } else if (phase_ == Phase::kName || phase_ == Phase::kArgs) {
    // Only tokens whose first byte may come next can be allowed: one check per byte value, then
    // the full check on the tokens of the first bytes that passed.
    for (int b = 0; b < 256; ++b) {
      bool first_ok;
      if (phase_ == Phase::kName) {
        // The name is shorter than its target here, so an allowed token's first byte is in it.
        std::string name = name_;
        name += static_cast<char>(b);
        first_ok = NameNeeds(name) >= 0;
      } else {
        JsonPrefix json = json_;
        first_ok = json.Push(static_cast<uint8_t>(b));
      }
      if (!first_ok) continue;
      for (int32_t id : vocab.starting_with(static_cast<uint8_t>(b)))
        if (Allows(id)) allowed_.push_back(id);
    }
  }
  WHALE_ASSERT(!allowed_.empty(), "a forced tool call left no token to choose");
  kept_.clear();
  for (int32_t id : allowed_) {
    WHALE_ASSERT(id < static_cast<int64_t>(logits.size()), "token ", id,
                 " is outside the logits row of ", logits.size());
    kept_.push_back(logits[id]);
  }
  std::fill(logits.begin(), logits.end(), -std::numeric_limits<float>::infinity());
  for (size_t i = 0; i < allowed_.size(); ++i) logits[allowed_[i]] = kept_[i];
}

void TokenConstraint::Accept(int32_t token) {
  WHALE_ASSERT(Allows(token), "token ", token, " is not allowed by the forced tool call");
  --left_;
  const VocabBytes& vocab = *grammar_->vocab;
  switch (phase_) {
    case Phase::kPrefix:
      if (++forced_ == grammar_->prefix.size()) {
        forced_ = 0;
        phase_ = grammar_->targets.empty() ? Phase::kArgs : Phase::kName;
      }
      return;
    case Phase::kName: {
      name_ += vocab.bytes(token);
      // Not through a whole target yet (with a whole one left to spell, NameNeeds is just "{}"
      // and the suffix; a name has no newline, so no target is a prefix of another).
      if (NameNeeds(name_) > 2 + static_cast<int64_t>(grammar_->suffix.size())) return;
      for (const std::string& t : grammar_->targets) {
        if (name_.size() < t.size() || name_.compare(0, t.size(), t) != 0) continue;
        const std::string rest = name_.substr(t.size());
        phase_ = Phase::kArgs;
        json_.PushAll(rest);
        tail_ = rest;
        break;
      }
      if (phase_ == Phase::kArgs && json_.complete()) phase_ = Phase::kSuffix;
      return;
    }
    case Phase::kArgs: {
      const std::string_view b = vocab.bytes(token);
      json_.PushAll(b);
      tail_ += b;
      const size_t keep = tool_syntax::kCallEnd.size() - 1;
      if (tail_.size() > keep) tail_.erase(0, tail_.size() - keep);
      if (json_.complete()) phase_ = Phase::kSuffix;
      return;
    }
    case Phase::kSuffix:
      if (++forced_ == grammar_->suffix.size()) phase_ = Phase::kDone;
      return;
    case Phase::kDone:
      return;
  }
}

}  // namespace whale
