// The GPT-2 byte <-> character table used by byte-level BPE: 188 printable bytes stand for
// themselves, the other 68 (controls, space, DEL, NBSP, soft hyphen...) map, in byte order, to
// U+0100..U+0143.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace whale::byte_level {

// The character that stands for byte `b`.
char32_t ByteToChar(uint8_t b);
// The UTF-8 encoding of ByteToChar(b).
std::string_view ByteToUtf8(uint8_t b);
// The byte a character stands for, or -1 if it is not in the table.
int CharToByte(char32_t cp);

// Appends the byte-level characters for every byte of `bytes`.
void AppendMapped(std::string& out, std::string_view bytes);
// Maps a byte-level string back to bytes; returns false (leaving `out` unchanged) if some character
// is not in the table.
bool AppendUnmapped(std::string& out, std::string_view mapped);

}  // namespace whale::byte_level
