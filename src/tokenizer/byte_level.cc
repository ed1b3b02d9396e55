#include "tokenizer/byte_level.h"

#include "tokenizer/utf8.h"

namespace whale::byte_level {

namespace {

bool StandsForItself(int b) {
  return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

struct Tables {
  std::array<char32_t, 256> to_char{};
  std::array<std::string, 256> to_utf8{};
  std::array<int16_t, 0x144> to_byte{};  // every table character is below U+0144
  Tables() {
    to_byte.fill(-1);
    char32_t next = 0x100;
    for (int b = 0; b < 256; ++b) {
      to_char[b] = StandsForItself(b) ? static_cast<char32_t>(b) : next++;
      to_utf8[b] = utf8::Encode(to_char[b]);
      to_byte[to_char[b]] = static_cast<int16_t>(b);
    }
  }
};

const Tables& Get() {
  static const Tables tables;
  return tables;
}

}  // namespace

char32_t ByteToChar(uint8_t b) {
  return Get().to_char[b];
}

std::string_view ByteToUtf8(uint8_t b) {
  return Get().to_utf8[b];
}

int CharToByte(char32_t cp) {
  return cp < 0x144 ? Get().to_byte[cp] : -1;
}

void AppendMapped(std::string& out, std::string_view bytes) {
  const Tables& tables = Get();
  for (char c : bytes) out += tables.to_utf8[static_cast<uint8_t>(c)];
}

bool AppendUnmapped(std::string& out, std::string_view mapped) {
  size_t start = out.size();
  size_t pos = 0;
  while (pos < mapped.size()) {
    if (utf8::ValidSequenceLength(mapped, pos) == 0) {
      out.resize(start);
      return false;
    }
    int b = CharToByte(utf8::Next(mapped, pos));
    if (b < 0) {
      out.resize(start);
      return false;
    }
    out.push_back(static_cast<char>(b));
  }
  return true;
}

}  // namespace whale::byte_level
