// Regex: a Hugging Face tokenizers pattern (written for Oniguruma, Ruby syntax) compiled with PCRE2
// (UTF + UCP, JIT) after rewriting the constructs whose meaning differs between the two engines,
// iterated with Oniguruma's rules for empty matches. Rewritten: \s \S (Oniguruma's TAB..CR, NEL
// and \p{Z}; PCRE2's UCP set adds U+180E), \w \W (adds marks and connector punctuation), \h \H
// (hex digits in Ruby), (?m) (dot-all in Ruby), {,n}. Left as PCRE2 means them: \b (PCRE2's word
// set) and the Unicode tables (PCRE2's Unicode version).
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace whale {

class Regex {
 public:
  // `pattern` is an Oniguruma (Ruby syntax) pattern; `where` names its origin for error messages
  // (e.g. "tokenizer.json pre_tokenizer.pretokenizers[2].pattern.Regex"). Throws Error on a syntax
  // error or a construct PCRE2 cannot express with the same meaning.
  Regex(std::string_view pattern, const std::string& where);
  // A pattern matching `literal` exactly (Hugging Face's String patterns).
  static Regex Literal(std::string_view literal, const std::string& where);
  ~Regex();
  Regex(Regex&&) noexcept;
  Regex& operator=(Regex&&) noexcept;

  // All matches in `text` (valid UTF-8) as [begin, end) byte ranges, in order, following
  // Oniguruma's find_iter: the search continues from the end of the previous match over the whole
  // text (lookarounds see the neighbours), an empty match right where the previous match ended is
  // skipped, and after an empty match the search moves on by one character.
  void FindAll(std::string_view text, std::vector<std::pair<size_t, size_t>>& matches) const;

  // The pattern after rewriting to PCRE2 syntax (for tests and error messages).
  const std::string& translated() const { return translated_; }

 private:
  Regex() = default;
  void Compile(const std::string& where);

  std::string original_;
  std::string translated_;
  struct Code;
  std::unique_ptr<Code> code_;
};

// Rewrites an Oniguruma (Ruby syntax) pattern into PCRE2 syntax with the same meaning under
// PCRE2_UTF | PCRE2_UCP | PCRE2_MULTILINE. Throws Error (naming `where`) for constructs it cannot
// translate faithfully (class intersection, \S inside a class, nested classes).
std::string TranslateOnigurumaPattern(std::string_view pattern, const std::string& where);

}  // namespace whale
