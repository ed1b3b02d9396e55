#include "tokenizer/regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "util/error.h"

namespace whale {

namespace {

// Oniguruma's \s (verified against the Rust library): TAB..CR, NEL, every Zs, LINE and PARAGRAPH
// SEPARATOR. PCRE2's UCP \s would add U+180E; without UCP it is ASCII only. \p{Z} = Zs + Zl + Zp.
constexpr std::string_view kSpaceItems = "\\t-\\r\\x{85}\\p{Z}";
// Oniguruma's \w (Unicode "Word": letters, marks, numbers, connector punctuation); PCRE2 UCP \w
// lacks the marks and connector punctuation.
constexpr std::string_view kWordItems = "\\p{L}\\p{M}\\p{N}\\p{Pc}";
// Ruby's \h is a hex digit (PCRE2's \h is horizontal space).
constexpr std::string_view kHexItems = "0-9a-fA-F";

std::string PcreErrorMessage(int code) {
  PCRE2_UCHAR buffer[256];
  int n = pcre2_get_error_message(code, buffer, sizeof(buffer));
  if (n < 0) return Cat("PCRE2 error ", code);
  return std::string(reinterpret_cast<const char*>(buffer), static_cast<size_t>(n));
}

bool IsHex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// Per-thread PCRE2 scratch: one match-data block (only the whole-match offsets are read) and a JIT
// stack large enough for long whitespace runs against backtracking patterns.
struct MatchScratch {
  pcre2_match_data* match_data = nullptr;
  pcre2_match_context* context = nullptr;
  pcre2_jit_stack* jit_stack = nullptr;
  MatchScratch() {
    match_data = pcre2_match_data_create(1, nullptr);
    context = pcre2_match_context_create(nullptr);
    jit_stack = pcre2_jit_stack_create(64 * 1024, 8 * 1024 * 1024, nullptr);
    WHALE_ASSERT(match_data && context && jit_stack, "PCRE2 allocation failed");
    pcre2_jit_stack_assign(context, nullptr, jit_stack);
  }
  ~MatchScratch() {
    pcre2_jit_stack_free(jit_stack);
    pcre2_match_context_free(context);
    pcre2_match_data_free(match_data);
  }
};

MatchScratch& Scratch() {
  thread_local MatchScratch scratch;
  return scratch;
}

}  // namespace

std::string TranslateOnigurumaPattern(std::string_view p, const std::string& where) {
  std::string out;
  out.reserve(p.size() + 32);
  auto fail = [&](size_t at, std::string_view what) {
    Fail(where, ": regex '", p, "' at offset ", at, ": ", what,
         " has no faithful PCRE2 equivalent (unsupported)");
  };
  bool in_class = false;
  bool class_negated = false;
  for (size_t i = 0; i < p.size(); ++i) {
    char c = p[i];
    if (c == '\\') {
      if (i + 1 >= p.size()) Fail(where, ": regex '", p, "' ends with a lone backslash");
      char e = p[i + 1];
      ++i;
      switch (e) {
        case 's':
          if (in_class) {
            out += kSpaceItems;
          } else {
            out += "[";
            out += kSpaceItems;
            out += "]";
          }
          continue;
        case 'S':
          if (in_class) {
            if (class_negated) fail(i - 1, "\\S inside a negated class");
            fail(i - 1, "\\S inside a class");
          }
          out += "[^";
          out += kSpaceItems;
          out += "]";
          continue;
        case 'w':
        case 'W':
        case 'h':
        case 'H': {
          std::string_view items = (e == 'w' || e == 'W') ? kWordItems : kHexItems;
          bool negated = e == 'W' || e == 'H';
          if (in_class) {
            if (negated) fail(i - 1, std::string("\\") + e + " inside a class");
            out += items;
          } else {
            out += negated ? "[^" : "[";
            out += items;
            out += "]";
          }
          continue;
        }
        case 'u':
          // Ruby \uHHHH.
          if (i + 4 < p.size() && IsHex(p[i + 1]) && IsHex(p[i + 2]) && IsHex(p[i + 3]) &&
              IsHex(p[i + 4])) {
            out += "\\x{";
            out.append(p.substr(i + 1, 4));
            out += "}";
            i += 4;
            continue;
          }
          fail(i - 1, "\\u without four hex digits");
          break;
        default:
          out += '\\';
          out += e;
          // Copy multi-character escapes whole so their braces are not taken for quantifiers.
          if ((e == 'p' || e == 'P' || e == 'x' || e == 'k' || e == 'g') && i + 1 < p.size() &&
              p[i + 1] == '{') {
            size_t close = p.find('}', i + 1);
            if (close == std::string_view::npos) {
              Fail(where, ": regex '", p, "' has an unterminated \\", e, "{ at offset ", i - 1);
            }
            out.append(p.substr(i + 1, close - i));
            i = close;
          }
          continue;
      }
    }
    if (in_class) {
      if (c == '[') {
        if (p.substr(i, 2) == "[:") {  // POSIX class [:alpha:], same in both engines
          size_t close = p.find(":]", i + 2);
          if (close == std::string_view::npos) fail(i, "unterminated POSIX class");
          out.append(p.substr(i, close + 2 - i));
          i = close + 1;
          continue;
        }
        fail(i, "a nested character class");
      }
      if (c == '&' && i + 1 < p.size() && p[i + 1] == '&') fail(i, "class intersection (&&)");
      if (c == ']') {
        in_class = false;
      }
      out += c;
      continue;
    }
    if (c == '[') {
      in_class = true;
      out += c;
      class_negated = i + 1 < p.size() && p[i + 1] == '^';
      if (class_negated) {
        out += '^';
        ++i;
      }
      // A ']' right after '[' or '[^' is a literal in both engines.
      if (i + 1 < p.size() && p[i + 1] == ']') {
        out += "\\]";
        ++i;
      }
      continue;
    }
    if (c == '(' && p.substr(i, 2) == "(?") {
      // Inline options: Ruby's 'm' is "dot matches newline" (PCRE2 's').
      size_t j = i + 2;
      while (j < p.size() && (p[j] == 'i' || p[j] == 'm' || p[j] == 'x' || p[j] == '-')) ++j;
      if (j > i + 2 && j < p.size() && (p[j] == ':' || p[j] == ')')) {
        out += "(?";
        for (size_t k = i + 2; k < j; ++k) out += p[k] == 'm' ? 's' : p[k];
        i = j - 1;
        continue;
      }
    }
    if (c == '{' && p.substr(i, 2) == "{,") {
      // Ruby {,n} is {0,n}; PCRE2 10.42 would read it as a literal.
      size_t j = i + 2;
      while (j < p.size() && p[j] >= '0' && p[j] <= '9') ++j;
      if (j > i + 2 && j < p.size() && p[j] == '}') {
        out += "{0,";
        out.append(p.substr(i + 2, j - i - 2));
        out += '}';
        i = j;
        continue;
      }
    }
    out += c;
  }
  if (in_class) Fail(where, ": regex '", p, "' has an unterminated character class");
  return out;
}

struct Regex::Code {
  pcre2_code* code = nullptr;
  bool jit = false;
  ~Code() { pcre2_code_free(code); }
};

Regex::Regex(std::string_view pattern, const std::string& where) : original_(pattern) {
  translated_ = TranslateOnigurumaPattern(pattern, where);
  Compile(where);
}

Regex Regex::Literal(std::string_view literal, const std::string& where) {
  Regex regex;
  regex.original_ = std::string(literal);
  for (char c : literal) {
    auto u = static_cast<unsigned char>(c);
    bool plain = u >= 0x80 || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
                 (c >= 'A' && c <= 'Z') || c == '_';
    if (c == '\0') {
      regex.translated_ += "\\x{0}";
      continue;
    }
    if (!plain) regex.translated_ += '\\';
    regex.translated_ += c;
  }
  regex.Compile(where);
  return regex;
}

Regex::~Regex() = default;
Regex::Regex(Regex&&) noexcept = default;
Regex& Regex::operator=(Regex&&) noexcept = default;

void Regex::Compile(const std::string& where) {
  int error = 0;
  PCRE2_SIZE error_offset = 0;
  code_ = std::make_unique<Code>();
  code_->code =
      pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated_.data()), translated_.size(),
                    PCRE2_UTF | PCRE2_UCP | PCRE2_MULTILINE, &error, &error_offset, nullptr);
  if (!code_->code) {
    Fail(where, ": invalid regex '", original_, "' (as PCRE2: '", translated_,
         "'): ", PcreErrorMessage(error), " at offset ", error_offset);
  }
  code_->jit = pcre2_jit_compile(code_->code, PCRE2_JIT_COMPLETE) == 0;
}

void Regex::FindAll(std::string_view text, std::vector<std::pair<size_t, size_t>>& matches) const {
  matches.clear();
  MatchScratch& scratch = Scratch();
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t search_from = 0;
  bool have_previous = false;
  size_t previous_end = 0;
  while (search_from <= text.size()) {
    int rc = code_->jit ? pcre2_jit_match(code_->code, subject, text.size(), search_from, 0,
                                          scratch.match_data, scratch.context)
                        : pcre2_match(code_->code, subject, text.size(), search_from,
                                      PCRE2_NO_UTF_CHECK, scratch.match_data, scratch.context);
    if (rc == PCRE2_ERROR_NOMATCH) return;
    if (rc < 0) {
      Fail("regex '", original_, "': matching failed at byte ", search_from, ": ",
           PcreErrorMessage(rc));
    }
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(scratch.match_data);
    size_t begin = ovector[0], end = ovector[1];
    if (begin == end && have_previous && previous_end == end) {
      // Skip the empty match where the previous one ended and step over one character.
      if (search_from >= text.size()) return;
      search_from += 1;
      while (search_from < text.size() &&
             (static_cast<unsigned char>(text[search_from]) & 0xC0) == 0x80) {
        ++search_from;
      }
      continue;
    }
    matches.emplace_back(begin, end);
    have_previous = true;
    previous_end = end;
    search_from = end;
  }
}

}  // namespace whale
