// JsonPrefix: an incremental syntax checker for JSON text (RFC 8259, as nlohmann::json parses it),
// byte by byte. It answers three questions constrained decoding needs about the text so far:
//   Push(byte)  can this byte continue a text that still has a valid completion?
//   complete()  is the text a whole JSON text already?
//   Closing()   the shortest bytes that complete it (closing strings, numbers and brackets).
// Strings are checked as UTF-8 (no overlong forms, no surrogates, nothing over U+10FFFF), with
// escapes, and \u surrogates must pair (high then low), since nlohmann::json rejects lone ones.
//
// Numbers must stay finite as doubles (nlohmann::json refuses an overflow): at most
// kMaxIntegerDigits integer digits and kMaxExponentDigits exponent digits, which bounds them by
// 1e299; the few valid texts beyond that ("1e0005", 300-digit integers) are refused.
//
// The state is a few bytes plus a fixed-size bracket stack, so copying it to try a candidate
// token's bytes is cheap. Nesting deeper than kMaxDepth is refused (a bound on the closing text).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace whale {

class JsonPrefix {
 public:
  static constexpr int kMaxDepth = 32;
  static constexpr int kMaxIntegerDigits = 200;
  static constexpr int kMaxExponentDigits = 2;

  // object_only: the top-level value must be an object (tool-call arguments). max_space_run > 0
  // refuses more than that many whitespace bytes in a row outside strings: valid JSON all the
  // same, but a weak model under a constraint otherwise spends its budget on blank lines.
  explicit JsonPrefix(bool object_only = false, int max_space_run = 0)
      : object_only_(object_only), max_space_run_(static_cast<uint16_t>(max_space_run)) {}

  // False (and the state unchanged) when `byte` cannot continue the text.
  bool Push(uint8_t byte);
  // All bytes or nothing: false leaves the state unchanged.
  bool PushAll(std::string_view bytes);

  // The text is one complete JSON value (trailing whitespace allowed; nothing else may follow
  // a closed top-level object or array).
  bool complete() const;
  // The shortest continuation that makes the text complete; feeding its bytes one by one lowers
  // ClosingLength() by one each time.
  std::string Closing() const;
  size_t ClosingLength() const;
  int depth() const { return depth_; }

 private:
  enum class Mode : uint8_t {
    kValue,          // a value must come (start, after ':' or after ',' in an array)
    kValueOrClose,   // after '[': a value or ']'
    kKeyOrClose,     // after '{': a key or '}'
    kKey,            // after ',' in an object: a key
    kColon,          // after a key
    kAfterValue,     // ',' or the container's closing bracket (or the end, at the top)
    kString,         // inside a string (key or value)
    kEscape,         // after '\' in a string
    kUnicode,        // inside \uXXXX: hex_left_ digits to go
    kLowBackslash,   // after a high surrogate escape: '\' must come
    kLowU,           // ... then 'u'
    kUtf8,           // inside a multi-byte UTF-8 character
    kNumberSign,     // after '-': a digit
    kNumberZero,     // a leading 0: '.', 'e', or the end
    kNumberInt,      // integer digits
    kNumberDot,      // after '.': a digit
    kNumberFrac,     // fraction digits
    kNumberExp,      // after 'e': sign or digit
    kNumberExpSign,  // after the exponent's sign: a digit
    kNumberExpInt,   // exponent digits
    kLiteral,        // inside true / false / null
  };

  bool Step(uint8_t byte);         // may leave a partial change behind when it returns false
  bool StepLimited(uint8_t byte);  // Step, counting whitespace runs
  void EndValue();                 // a string, number, literal or container just ended
  bool StartValue(uint8_t byte);
  bool CloseContainer(uint8_t bracket);
  bool EndNumber(uint8_t byte);  // a byte after a number's last digit
  // Calls emit(std::string_view) with the pieces of the shortest completion, in order.
  template <typename Emit>
  void WriteClosing(Emit&& emit) const;

  bool object_only_;
  uint16_t max_space_run_;  // 0: no limit
  uint16_t space_run_ = 0;  // whitespace bytes in a row outside strings
  Mode mode_ = Mode::kValue;
  bool string_is_key_ = false;
  bool low_surrogate_ = false;               // kUnicode: these four digits must be DC00..DFFF
  bool started_ = false;                     // the top-level value has begun
  uint8_t hex_left_ = 0;                     // kUnicode: digits still to come
  uint16_t hex_value_ = 0;                   // kUnicode: digits so far
  uint8_t utf8_left_ = 0;                    // kUtf8: continuation bytes still to come
  uint8_t utf8_lo_ = 0x80, utf8_hi_ = 0xBF;  // kUtf8: the range of the next byte
  uint8_t literal_ = 0;                      // kLiteral: 0 true, 1 false, 2 null
  uint8_t literal_pos_ = 0;                  // kLiteral: bytes matched so far
  uint8_t number_digits_ = 0;  // integer digits (kNumberInt) or exponent digits (kNumberExp*)
  int depth_ = 0;
  std::array<char, kMaxDepth> stack_{};  // [depth_] '{' or '['
};

}  // namespace whale
