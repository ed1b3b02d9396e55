// StreamDecoder (declared in tokenizer.h).
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace whale {

namespace {

constexpr std::string_view kReplacementUtf8 = "\xEF\xBF\xBD";

}  // namespace

StreamDecoder::StreamDecoder(const Tokenizer& tokenizer, bool skip_special_tokens)
    : tokenizer_(tokenizer), skip_special_tokens_(skip_special_tokens) {}

std::string StreamDecoder::Next(int32_t id) {
  if (tokenizer_.has_byte_level_decoder()) {
    tokenizer_.AppendTokenBytes(id, skip_special_tokens_, pending_bytes_);
    size_t stable = utf8::StablePrefixLength(pending_bytes_);
    std::string text = utf8::DecodeLossy(std::string_view(pending_bytes_).substr(0, stable));
    pending_bytes_.erase(0, stable);
    return text;
  }
  ids_.push_back(id);
  std::string text = tokenizer_.Decode(ids_, skip_special_tokens_);
  if (text.size() <= prefix_.size() || text.ends_with(kReplacementUtf8) ||
      !text.starts_with(prefix_)) {
    return "";
  }
  std::string fresh = text.substr(prefix_.size());
  // The ids since the previous boundary stay as context for the next step.
  ids_.erase(ids_.begin(), ids_.begin() + static_cast<std::ptrdiff_t>(prefix_index_));
  prefix_ = tokenizer_.Decode(ids_, skip_special_tokens_);
  prefix_index_ = ids_.size();
  return fresh;
}

std::string StreamDecoder::Finish() {
  std::string text;
  if (tokenizer_.has_byte_level_decoder()) {
    text = utf8::DecodeLossy(pending_bytes_);
    pending_bytes_.clear();
    return text;
  }
  std::string all = tokenizer_.Decode(ids_, skip_special_tokens_);
  if (all.size() > prefix_.size() && all.starts_with(prefix_)) text = all.substr(prefix_.size());
  ids_.clear();
  prefix_.clear();
  prefix_index_ = 0;
  return text;
}

}  // namespace whale
