#include "tokenizer/unicode.h"

#include <algorithm>
#include <vector>

#include "tokenizer/unicode_tables.h"
#include "tokenizer/utf8.h"

namespace whale::unicode {

namespace t = tables;

namespace {

bool InRanges(const t::CodePointRange* ranges, size_t size, char32_t cp) {
  const t::CodePointRange* end = ranges + size;
  const t::CodePointRange* it = std::upper_bound(
      ranges, end, cp, [](char32_t value, const t::CodePointRange& r) { return value < r.first; });
  return it != ranges && cp <= (it - 1)->last;
}

// The mapping of `cp` in a sorted table, or nullptr.
const t::CodePointMapping* Find(const t::CodePointMapping* table, size_t size, char32_t cp) {
  const t::CodePointMapping* end = table + size;
  const t::CodePointMapping* it = std::lower_bound(
      table, end, cp,
      [](const t::CodePointMapping& m, char32_t value) { return m.code_point < value; });
  return it != end && it->code_point == cp ? it : nullptr;
}

void AppendMapped(std::u32string& out, const t::CodePointMapping* table, size_t size, char32_t cp) {
  if (const t::CodePointMapping* m = Find(table, size, cp)) {
    out.append(t::kMappingPool + m->offset, m->length);
  } else {
    out.push_back(cp);
  }
}

// Hangul syllable algorithm (Unicode 3.12).
constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr int kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount;
constexpr int kSCount = kLCount * kNCount;

void Decompose(std::u32string& out, char32_t cp, bool compatibility) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    int s = static_cast<int>(cp - kSBase);
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount != 0) out.push_back(kTBase + s % kTCount);
    return;
  }
  if (compatibility) {
    AppendMapped(out, t::kHfNfkd, t::kHfNfkdSize, cp);
  } else {
    AppendMapped(out, t::kHfNfd, t::kHfNfdSize, cp);
  }
}

// Canonical ordering: a stable sort of each run of non-starters by combining class.
void Reorder(std::u32string& s) {
  size_t i = 0;
  while (i < s.size()) {
    if (CombiningClass(s[i]) == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < s.size() && CombiningClass(s[j]) != 0) ++j;
    if (j - i > 1) {
      std::stable_sort(s.begin() + i, s.begin() + j, [](char32_t a, char32_t b) {
        return CombiningClass(a) < CombiningClass(b);
      });
    }
    i = j;
  }
}

char32_t ComposePair(char32_t first, char32_t second) {
  // Hangul LV and LVT.
  if (first >= kLBase && first < kLBase + kLCount && second >= kVBase &&
      second < kVBase + kVCount) {
    return kSBase + ((first - kLBase) * kVCount + (second - kVBase)) * kTCount;
  }
  if (first >= kSBase && first < kSBase + kSCount && (first - kSBase) % kTCount == 0 &&
      second > kTBase && second < kTBase + kTCount) {
    return first + (second - kTBase);
  }
  const t::Composition* end = t::kCompositions + t::kCompositionsSize;
  const t::Composition* it =
      std::lower_bound(t::kCompositions, end, std::make_pair(first, second),
                       [](const t::Composition& c, const std::pair<char32_t, char32_t>& key) {
                         return c.first != key.first ? c.first < key.first : c.second < key.second;
                       });
  if (it != end && it->first == first && it->second == second) return it->composite;
  return 0;
}

// Canonical composition (Unicode 3.11) over a decomposed, reordered string.
void Compose(std::u32string& s) {
  if (s.empty()) return;
  size_t starter = std::u32string::npos;
  int last_class = -1;
  size_t write = 0;
  for (size_t read = 0; read < s.size(); ++read) {
    char32_t cp = s[read];
    int cc = CombiningClass(cp);
    if (starter != std::u32string::npos) {
      // Blocked if a character between the starter and cp has class 0 or >= cc.
      bool blocked = last_class != -1 && (last_class == 0 || last_class >= cc);
      if (!blocked) {
        if (char32_t composite = ComposePair(s[starter], cp)) {
          s[starter] = composite;
          continue;
        }
      }
    }
    if (cc == 0) {
      starter = write;
      last_class = -1;
    } else {
      last_class = cc;
    }
    s[write++] = cp;
  }
  s.resize(write);
}

// ASCII is unchanged by every normalization form and needs no table lookups.
bool IsAscii(std::string_view text) {
  for (char c : text) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  }
  return true;
}

std::string MapEach(std::string_view text, const t::CodePointMapping* table, size_t size) {
  std::u32string out;
  size_t pos = 0;
  while (pos < text.size()) AppendMapped(out, table, size, utf8::Next(text, pos));
  return utf8::FromUtf32(out);
}

}  // namespace

bool IsWhiteSpace(char32_t cp) {
  if (cp <= 0x20) return cp == 0x20 || (cp >= 0x09 && cp <= 0x0D);
  if (cp < 0x85) return false;
  return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
         cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

bool IsPythonSpace(char32_t cp) {
  return IsWhiteSpace(cp) || (cp >= 0x1C && cp <= 0x1F);
}

bool IsPythonPrintable(char32_t cp) {
  if (cp >= 0x20 && cp < 0x7F) return true;
  return !InRanges(t::kPyNonPrintable, t::kPyNonPrintableSize, cp);
}

bool IsMark(char32_t cp) {
  return cp >= 0x300 && InRanges(t::kMark, t::kMarkSize, cp);
}

bool IsPythonCased(char32_t cp) {
  if (cp < 0x80) return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z');
  return InRanges(t::kPyCased, t::kPyCasedSize, cp);
}

int CombiningClass(char32_t cp) {
  if (cp < 0x300) return 0;
  const t::CombiningClassRange* end = t::kCombiningClass + t::kCombiningClassSize;
  const t::CombiningClassRange* it = std::upper_bound(
      t::kCombiningClass, end, cp,
      [](char32_t value, const t::CombiningClassRange& r) { return value < r.first; });
  if (it != t::kCombiningClass && cp <= (it - 1)->last) return (it - 1)->combining_class;
  return 0;
}

std::string Normalize(std::string_view text, NormalForm form) {
  if (IsAscii(text)) return std::string(text);
  bool compatibility = form == NormalForm::kNfkc || form == NormalForm::kNfkd;
  std::u32string decomposed;
  decomposed.reserve(text.size());
  size_t pos = 0;
  while (pos < text.size()) Decompose(decomposed, utf8::Next(text, pos), compatibility);
  Reorder(decomposed);
  if (form == NormalForm::kNfc || form == NormalForm::kNfkc) Compose(decomposed);
  return utf8::FromUtf32(decomposed);
}

std::string HfLowercase(std::string_view text) {
  return MapEach(text, t::kHfLower, t::kHfLowerSize);
}

std::string PythonUpper(std::string_view text) {
  return MapEach(text, t::kPyUpper, t::kPyUpperSize);
}

namespace {

// Appends Python's lowercase of in[i]; Σ uses the final-sigma rule (Unicode 3.13, as CPython
// applies it): ς when preceded by a cased letter and not followed by one, skipping case-ignorable
// characters on both sides.
void AppendPythonLowerAt(std::u32string& out, const std::u32string& in, size_t i) {
  if (in[i] != 0x3A3) {
    AppendMapped(out, t::kPyLower, t::kPyLowerSize, in[i]);
    return;
  }
  auto ignorable = [](char32_t cp) {
    return InRanges(t::kPyCaseIgnorable, t::kPyCaseIgnorableSize, cp);
  };
  size_t j = i;
  while (j > 0 && ignorable(in[j - 1])) --j;
  bool cased_before = j > 0 && IsPythonCased(in[j - 1]);
  size_t k = i + 1;
  while (k < in.size() && ignorable(in[k])) ++k;
  bool cased_after = k < in.size() && IsPythonCased(in[k]);
  out.push_back(cased_before && !cased_after ? 0x3C2 : 0x3C3);
}

}  // namespace

std::string PythonLower(std::string_view text) {
  if (IsAscii(text)) {
    std::string out(text);
    for (char& c : out) {
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    return out;
  }
  std::u32string in = utf8::ToUtf32(text);
  std::u32string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) AppendPythonLowerAt(out, in, i);
  return utf8::FromUtf32(out);
}

std::string PythonTitle(std::string_view text) {
  std::u32string in = utf8::ToUtf32(text);
  std::u32string out;
  bool previous_cased = false;
  for (size_t i = 0; i < in.size(); ++i) {
    if (previous_cased) {
      AppendPythonLowerAt(out, in, i);
    } else {
      AppendMapped(out, t::kPyTitle, t::kPyTitleSize, in[i]);
    }
    previous_cased = IsPythonCased(in[i]);
  }
  return utf8::FromUtf32(out);
}

std::string PythonCapitalize(std::string_view text) {
  std::u32string in = utf8::ToUtf32(text);
  std::u32string out;
  for (size_t i = 0; i < in.size(); ++i) {
    if (i == 0) {
      AppendMapped(out, t::kPyTitle, t::kPyTitleSize, in[i]);
    } else {
      AppendPythonLowerAt(out, in, i);
    }
  }
  return utf8::FromUtf32(out);
}

}  // namespace whale::unicode
