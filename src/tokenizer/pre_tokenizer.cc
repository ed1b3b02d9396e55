#include "tokenizer/pre_tokenizer.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "tokenizer/byte_level.h"
#include "tokenizer/json_fields.h"
#include "tokenizer/pattern.h"
#include "tokenizer/utf8.h"
#include "util/error.h"

namespace whale {

namespace {

namespace jf = json_fields;
using Json = nlohmann::json;

enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

SplitBehavior ParseBehavior(const std::string& name, const std::string& where) {
  if (name == "Removed") return SplitBehavior::kRemoved;
  if (name == "Isolated") return SplitBehavior::kIsolated;
  if (name == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (name == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (name == "Contiguous") return SplitBehavior::kContiguous;
  Fail(where, ": unknown split behavior '", name,
       "' (expected Removed, Isolated, MergedWithPrevious, MergedWithNext or Contiguous)");
}

struct Range {
  size_t begin, end;
  bool is_match;
};

// Hugging Face's pattern.find_matches: matches and the gaps between them, in order. An empty text
// gives one empty non-match.
void FindRanges(const Regex& regex, std::string_view text, std::vector<Range>& ranges) {
  ranges.clear();
  if (text.empty()) {
    ranges.push_back({0, 0, false});
    return;
  }
  thread_local std::vector<std::pair<size_t, size_t>> matches;
  regex.FindAll(text, matches);
  size_t previous = 0;
  for (auto [begin, end] : matches) {
    if (previous != begin) ranges.push_back({previous, begin, false});
    ranges.push_back({begin, end, true});
    previous = end;
  }
  if (previous != text.size()) ranges.push_back({previous, text.size(), false});
}

// Applies a split behavior to the ranges in place (the results are all plain pieces).
void ApplyBehavior(SplitBehavior behavior, std::vector<Range>& ranges) {
  std::vector<Range> out;
  out.reserve(ranges.size());
  switch (behavior) {
    case SplitBehavior::kIsolated:
      return;
    case SplitBehavior::kRemoved:
      for (const Range& r : ranges) {
        if (!r.is_match) out.push_back(r);
      }
      break;
    case SplitBehavior::kMergedWithPrevious: {
      bool previous_match = false;
      for (const Range& r : ranges) {
        if (r.is_match && !previous_match && !out.empty()) {
          out.back().end = r.end;
        } else {
          out.push_back(r);
        }
        previous_match = r.is_match;
      }
      break;
    }
    case SplitBehavior::kMergedWithNext: {
      bool previous_match = false;  // the range to the right
      for (size_t i = ranges.size(); i-- > 0;) {
        const Range& r = ranges[i];
        if (r.is_match && !previous_match && !out.empty()) {
          out.back().begin = r.begin;
        } else {
          out.push_back(r);
        }
        previous_match = r.is_match;
      }
      std::reverse(out.begin(), out.end());
      break;
    }
    case SplitBehavior::kContiguous: {
      bool previous_match = false;
      for (const Range& r : ranges) {
        if (r.is_match == previous_match && !out.empty()) {
          out.back().end = r.end;
        } else {
          out.push_back(r);
        }
        previous_match = r.is_match;
      }
      break;
    }
  }
  ranges = std::move(out);
}

// Turns raw-byte pieces back into byte-level strings before a step that looks at characters.
void MaterializeBytes(std::vector<Piece>& pieces, PieceArena& arena) {
  for (Piece& piece : pieces) {
    if (!piece.raw_bytes) continue;
    std::string mapped;
    byte_level::AppendMapped(mapped, piece.text);
    piece.text = arena.Store(std::move(mapped));
    piece.raw_bytes = false;
  }
}

// Splits every piece on a regex with a behavior (optionally inverting which ranges are matches).
void SplitPieces(const Regex& regex, SplitBehavior behavior, bool invert,
                 std::vector<Piece>& pieces, PieceArena& arena) {
  MaterializeBytes(pieces, arena);
  std::vector<Piece> out;
  out.reserve(pieces.size() * 2);
  thread_local std::vector<Range> ranges;
  for (const Piece& piece : pieces) {
    FindRanges(regex, piece.text, ranges);
    if (invert) {
      for (Range& r : ranges) r.is_match = !r.is_match;
    }
    ApplyBehavior(behavior, ranges);
    for (const Range& r : ranges) {
      if (r.begin == r.end) continue;
      out.push_back(
          {piece.text.substr(r.begin, r.end - r.begin), false, piece.at_start && r.begin == 0});
    }
  }
  pieces = std::move(out);
}

class SequencePreTokenizer : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> steps)
      : steps_(std::move(steps)) {}
  void Apply(std::vector<Piece>& pieces, PieceArena& arena) const override {
    for (const auto& step : steps_) step->Apply(pieces, arena);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> steps_;
};

class SplitPreTokenizer : public PreTokenizer {
 public:
  SplitPreTokenizer(Regex regex, SplitBehavior behavior, bool invert)
      : regex_(std::move(regex)), behavior_(behavior), invert_(invert) {}
  void Apply(std::vector<Piece>& pieces, PieceArena& arena) const override {
    SplitPieces(regex_, behavior_, invert_, pieces, arena);
  }

 private:
  Regex regex_;
  SplitBehavior behavior_;
  bool invert_;
};

// GPT-2's pattern, used by ByteLevel when use_regex is set.
constexpr std::string_view kGpt2Pattern =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

class ByteLevelPreTokenizer : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, bool use_regex)
      : add_prefix_space_(add_prefix_space),
        regex_(use_regex ? std::make_unique<Regex>(kGpt2Pattern, "ByteLevel pre-tokenizer")
                         : nullptr) {}
  void Apply(std::vector<Piece>& pieces, PieceArena& arena) const override {
    MaterializeBytes(pieces, arena);
    if (add_prefix_space_) {
      for (Piece& piece : pieces) {
        if (piece.text.starts_with(' ')) continue;
        std::string prefixed(1, ' ');
        prefixed.append(piece.text);
        piece.text = arena.Store(std::move(prefixed));
      }
    }
    if (regex_) SplitPieces(*regex_, SplitBehavior::kIsolated, false, pieces, arena);
    for (Piece& piece : pieces) piece.raw_bytes = true;
  }

 private:
  bool add_prefix_space_;
  std::unique_ptr<Regex> regex_;
};

// Metaspace: spaces become the replacement character, optionally prefixed, optionally split with
// the replacement starting each piece.
class MetaspacePreTokenizer : public PreTokenizer {
 public:
  enum class Prepend { kAlways, kFirst, kNever };
  MetaspacePreTokenizer(std::string replacement, Prepend prepend, bool split)
      : replacement_(std::move(replacement)),
        prepend_(prepend),
        split_(split),
        regex_(Regex::Literal(replacement_, "Metaspace replacement")) {}
  void Apply(std::vector<Piece>& pieces, PieceArena& arena) const override {
    MaterializeBytes(pieces, arena);
    for (Piece& piece : pieces) {
      std::string text;
      text.reserve(piece.text.size() + replacement_.size());
      for (char c : piece.text) {
        if (c == ' ') {
          text += replacement_;
        } else {
          text += c;
        }
      }
      bool prepend =
          prepend_ == Prepend::kAlways || (prepend_ == Prepend::kFirst && piece.at_start);
      if (prepend && !text.starts_with(replacement_)) text.insert(0, replacement_);
      piece.text = arena.Store(std::move(text));
    }
    if (split_) SplitPieces(regex_, SplitBehavior::kMergedWithNext, false, pieces, arena);
  }

 private:
  std::string replacement_;
  Prepend prepend_;
  bool split_;
  Regex regex_;
};

// Explicit classes for the Rust regex crate's Unicode \s (White_Space) and \w (Alphabetic, marks,
// Nd, Pc, join controls; the So letters listed are Other_Alphabetic), used by Whitespace and
// WhitespaceSplit.
constexpr std::string_view kRustSpace =
    "\\t-\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}"
    "\\x{3000}";
constexpr std::string_view kRustWord =
    "\\p{L}\\p{Nl}\\p{M}\\p{Nd}\\p{Pc}\\x{200C}\\x{200D}\\x{24B6}-\\x{24E9}\\x{1F130}-\\x{1F149}"
    "\\x{1F150}-\\x{1F169}\\x{1F170}-\\x{1F189}";

std::string RustClassPattern(std::string_view body) {
  return Cat("[", body, "]");
}

}  // namespace

std::unique_ptr<PreTokenizer> PreTokenizer::FromJson(const Json& config, const std::string& where) {
  jf::NestingGuard guard(where);
  if (config.is_null()) return nullptr;
  std::string type = jf::String(config, "type", where);
  if (type == "Sequence") {
    const Json& list = jf::Require(config, "pretokenizers", where);
    if (!list.is_array()) jf::WrongType(where + ".pretokenizers", list, "an array");
    std::vector<std::unique_ptr<PreTokenizer>> steps;
    for (size_t i = 0; i < list.size(); ++i) {
      auto step = FromJson(list[i], Cat(where, ".pretokenizers[", i, "]"));
      if (step) steps.push_back(std::move(step));
    }
    return std::make_unique<SequencePreTokenizer>(std::move(steps));
  }
  if (type == "Split") {
    return std::make_unique<SplitPreTokenizer>(
        ParsePattern(jf::Require(config, "pattern", where), where + ".pattern"),
        ParseBehavior(jf::String(config, "behavior", where), where + ".behavior"),
        jf::BoolOr(config, "invert", false, where));
  }
  if (type == "ByteLevel") {
    return std::make_unique<ByteLevelPreTokenizer>(
        jf::BoolOr(config, "add_prefix_space", true, where),
        jf::BoolOr(config, "use_regex", true, where));
  }
  if (type == "Digits") {
    // Hugging Face matches each numeric character (char::is_numeric = \p{N}) and fuses runs unless
    // individual_digits is set.
    bool individual = jf::BoolOr(config, "individual_digits", false, where);
    return std::make_unique<SplitPreTokenizer>(
        Regex("\\p{N}", where), individual ? SplitBehavior::kIsolated : SplitBehavior::kContiguous,
        false);
  }
  if (type == "Metaspace") {
    std::string replacement = jf::StringOr(config, "replacement", "\xE2\x96\x81", where);
    if (utf8::FindInvalid(replacement) != utf8::kValid || replacement.empty() ||
        utf8::ValidSequenceLength(replacement, 0) != replacement.size()) {
      Fail(where, ".replacement: expected exactly one character, found \"", replacement, "\"");
    }
    MetaspacePreTokenizer::Prepend prepend = MetaspacePreTokenizer::Prepend::kAlways;
    bool has_scheme = jf::Has(config, "prepend_scheme");
    if (has_scheme) {
      std::string scheme = jf::String(config, "prepend_scheme", where);
      if (scheme == "always") {
        prepend = MetaspacePreTokenizer::Prepend::kAlways;
      } else if (scheme == "first") {
        prepend = MetaspacePreTokenizer::Prepend::kFirst;
      } else if (scheme == "never") {
        prepend = MetaspacePreTokenizer::Prepend::kNever;
      } else {
        Fail(where, ".prepend_scheme: unknown value '", scheme,
             "' (expected always, first or never)");
      }
    }
    if (jf::Has(config, "add_prefix_space") &&
        !jf::BoolOr(config, "add_prefix_space", true, where)) {
      // Legacy files: add_prefix_space=false means never prepend.
      if (has_scheme && prepend != MetaspacePreTokenizer::Prepend::kNever) {
        Fail(where, ": add_prefix_space=false contradicts prepend_scheme");
      }
      prepend = MetaspacePreTokenizer::Prepend::kNever;
    }
    return std::make_unique<MetaspacePreTokenizer>(replacement, prepend,
                                                   jf::BoolOr(config, "split", true, where));
  }
  if (type == "WhitespaceSplit") {
    return std::make_unique<SplitPreTokenizer>(Regex(RustClassPattern(kRustSpace), where),
                                               SplitBehavior::kRemoved, false);
  }
  if (type == "Whitespace") {
    // Keep runs of \w and runs of [^\w\s]; drop the rest.
    std::string pattern = Cat(RustClassPattern(kRustWord), "+|[^", kRustWord, kRustSpace, "]+");
    return std::make_unique<SplitPreTokenizer>(Regex(pattern, where), SplitBehavior::kRemoved,
                                               true);
  }
  if (type == "Punctuation") {
    // char::is_ascii_punctuation or Unicode P*, each character a match.
    return std::make_unique<SplitPreTokenizer>(
        Regex("[\\p{P}!-/:-@\\[-`{-~]", where),
        ParseBehavior(jf::StringOr(config, "behavior", "Isolated", where), where + ".behavior"),
        false);
  }
  Fail(where, ".type: unsupported pre_tokenizer type '", type,
       "' (supported: Sequence, Split, ByteLevel, Digits, Metaspace, Whitespace, WhitespaceSplit, "
       "Punctuation)");
}

}  // namespace whale
