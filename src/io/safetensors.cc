#include "io/safetensors.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <numeric>
#include <set>

#include "util/error.h"

namespace whale {
namespace {

using Json = nlohmann::json;

uint64_t ReadU64LE(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// A name from the file, fit for a one-line message: control characters escaped, at most ~200 bytes.
std::string Printable(std::string_view name) {
  constexpr size_t kMaxBytes = 200;
  std::string out;
  for (size_t i = 0; i < name.size(); ++i) {
    if (out.size() >= kMaxBytes) {
      // Never end inside a UTF-8 sequence: drop the last multi-byte character, whole or cut.
      while (!out.empty() && (static_cast<uint8_t>(out.back()) & 0xC0) == 0x80) out.pop_back();
      if (!out.empty() && static_cast<uint8_t>(out.back()) >= 0xC0) out.pop_back();
      return out + "...";
    }
    const auto c = static_cast<uint8_t>(name[i]);
    if (c < 0x20 || c == 0x7F) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

// A JSON value for a message: scalars as written (shortened), containers by their type only, so
// that a hostile, deeply nested value is never serialized.
std::string Describe(const Json& value) {
  if (value.is_structured()) return value.type_name();
  std::string text = value.dump();
  if (text.size() > 64) text = text.substr(0, 64) + "...";
  return Cat(value.type_name(), " ", Printable(text));
}

// Bytes of a tensor, or an error if its shape is too large to address: the product of the
// non-zero dimensions times the element size must fit in int64 (Tensor keeps int64 strides, even
// for a tensor with a zero dimension).
uint64_t CheckedByteCount(const std::vector<int64_t>& shape, DType dtype, const std::string& path,
                          const std::string& name) {
  const uint64_t limit = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  uint64_t product = SizeOf(dtype);
  bool has_zero = false;
  for (int64_t d : shape) {
    if (d == 0) {
      has_zero = true;
      continue;
    }
    if (product > limit / static_cast<uint64_t>(d))
      Fail(path, ": tensor '", Printable(name), "': shape ", ShapeString(shape),
           " overflows 64-bit sizes");
    product *= static_cast<uint64_t>(d);
  }
  return has_zero ? 0 : product;
}

SafetensorsEntry ParseEntry(const std::string& name, const Json& value, const std::string& path) {
  const auto where = [&] { return Cat(path, ": tensor '", Printable(name), "': "); };
  if (!value.is_object()) Fail(where(), "expected an object, found ", Describe(value));
  for (const auto& [key, unused] : value.items()) {
    if (key != "dtype" && key != "shape" && key != "data_offsets")
      Fail(where(), "unexpected field '", Printable(key),
           "' (expected dtype, shape, data_offsets)");
  }
  for (const char* field : {"dtype", "shape", "data_offsets"})
    if (!value.contains(field)) Fail(where(), "missing field '", field, "'");
  SafetensorsEntry entry;
  entry.name = name;

  const Json& dtype_json = value.at("dtype");
  if (!dtype_json.is_string())
    Fail(where(), "'dtype' must be a string, found ", Describe(dtype_json));
  const std::string& dtype_name = dtype_json.get_ref<const std::string&>();
  const auto dtype = ParseDType(dtype_name);
  if (!dtype)
    Fail(where(), "unknown dtype '", Printable(dtype_name),
         "' (expected F32, BF16, F16, F8_E4M3, F8_E5M2, F64, I64, I32, I16, I8, U8 or BOOL)");
  entry.dtype = *dtype;

  const Json& shape_json = value.at("shape");
  if (!shape_json.is_array())
    Fail(where(), "'shape' must be an array, found ", Describe(shape_json));
  if (shape_json.size() > static_cast<size_t>(Tensor::kMaxRank))
    Fail(where(), "rank ", shape_json.size(), " exceeds the supported ", Tensor::kMaxRank);
  for (const auto& d : shape_json) {
    if (!d.is_number_unsigned())
      Fail(where(), "shape entries must be non-negative integers, found ", Describe(d));
    const uint64_t dim = d.get<uint64_t>();
    if (dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      Fail(where(), "dimension ", dim, " is too large");
    entry.shape.push_back(static_cast<int64_t>(dim));
  }

  const Json& offsets = value.at("data_offsets");
  if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
      !offsets[1].is_number_unsigned())
    Fail(where(), "'data_offsets' must be [begin, end] with non-negative integers, found ",
         offsets.is_array() && offsets.size() <= 4 ? Printable(offsets.dump()) : Describe(offsets));
  entry.begin = offsets[0].get<uint64_t>();
  entry.end = offsets[1].get<uint64_t>();
  if (entry.begin > entry.end)
    Fail(where(), "data_offsets [", entry.begin, ", ", entry.end, "] has begin > end");
  const uint64_t expected = CheckedByteCount(entry.shape, entry.dtype, path, name);
  if (entry.end - entry.begin != expected)
    Fail(where(), "data_offsets [", entry.begin, ", ", entry.end, "] span ",
         entry.end - entry.begin, " bytes but shape ", ShapeString(entry.shape), " of ", dtype_name,
         " needs ", expected);
  return entry;
}

// Parses `text` as JSON, failing on a syntax error or on a key repeated within the top-level
// object or within one of its members (JSON parsers silently keep the last one, which would let
// two readers of the same file disagree on what it contains).
Json ParseHeaderJson(const char* begin, const char* end, const std::string& path) {
  std::set<std::string> top_keys, member_keys;
  std::string current_top, duplicate;
  const auto callback = [&](int depth, Json::parse_event_t event, Json& parsed) {
    if (event == Json::parse_event_t::key && duplicate.empty()) {
      const std::string& key = parsed.get_ref<const std::string&>();
      if (depth == 1) {
        if (!top_keys.insert(key).second) duplicate = Cat("key '", Printable(key), "'");
        current_top = key;
        member_keys.clear();
      } else if (depth == 2 && !member_keys.insert(key).second) {
        duplicate = Cat("field '", Printable(key), "' within '", Printable(current_top), "'");
      }
    }
    return true;
  };
  Json json = Json::parse(begin, end, callback, /*allow_exceptions=*/false);
  if (json.is_discarded()) Fail(path, ": header is not well-formed JSON");
  if (!json.is_object()) Fail(path, ": header must be a JSON object, found ", Describe(json));
  if (!duplicate.empty()) Fail(path, ": header repeats the ", duplicate);
  return json;
}

}  // namespace

SafetensorsHeader ParseSafetensorsHeader(std::span<const uint8_t> file, const std::string& path) {
  if (file.size() < 8)
    Fail(path, ": file is ", file.size(), " bytes, too short for a safetensors header (8 bytes)");
  const uint64_t header_size = ReadU64LE(file.data());
  if (header_size > kMaxSafetensorsHeaderBytes)
    Fail(path, ": header length ", header_size, " exceeds the limit of ",
         kMaxSafetensorsHeaderBytes, " bytes");
  if (header_size > file.size() - 8)
    Fail(path, ": header length ", header_size, " runs past the end of the file (", file.size(),
         " bytes): truncated file?");
  const char* text = reinterpret_cast<const char*>(file.data() + 8);
  const Json json = ParseHeaderJson(text, text + header_size, path);

  SafetensorsHeader header;
  header.data_start = 8 + header_size;
  const uint64_t data_size = file.size() - header.data_start;
  for (const auto& [key, value] : json.items()) {
    if (key == "__metadata__") {
      if (!value.is_object())
        Fail(path, ": '__metadata__' must be an object of strings, found ", Describe(value));
      for (const auto& [meta_key, meta_value] : value.items()) {
        if (!meta_value.is_string())
          Fail(path, ": '__metadata__' value of '", Printable(meta_key),
               "' must be a string, found ", Describe(meta_value));
        header.metadata[meta_key] = meta_value.get<std::string>();
      }
      continue;
    }
    SafetensorsEntry entry = ParseEntry(key, value, path);
    if (entry.end > data_size)
      Fail(path, ": tensor '", Printable(key), "': data_offsets end ", entry.end,
           " is past the data section (", data_size, " bytes): truncated file?");
    header.entries.push_back(std::move(entry));
  }
  std::sort(header.entries.begin(), header.entries.end(), [](const auto& a, const auto& b) {
    return a.begin < b.begin || (a.begin == b.begin && a.end < b.end);
  });
  // Zero-sized tensors occupy no bytes and cannot overlap anything. Among the others, in order
  // of begin, each must start at or after the furthest end seen so far.
  const SafetensorsEntry* furthest = nullptr;
  for (const auto& cur : header.entries) {
    if (cur.begin == cur.end) continue;
    if (furthest != nullptr && cur.begin < furthest->end)
      Fail(path, ": tensors '", Printable(furthest->name), "' [", furthest->begin, ", ",
           furthest->end, ") and '", Printable(cur.name), "' [", cur.begin, ", ", cur.end,
           ") overlap");
    if (furthest == nullptr || cur.end > furthest->end) furthest = &cur;
  }
  return header;
}

SafetensorsFile::SafetensorsFile(const std::string& path, FileLoad load)
    : file_(path, load), header_(ParseSafetensorsHeader(file_.bytes(), path)) {
  for (size_t i = 0; i < header_.entries.size(); ++i) index_[header_.entries[i].name] = i;
}

const SafetensorsEntry* SafetensorsFile::Find(const std::string& name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &header_.entries[it->second];
}

Tensor SafetensorsFile::Get(const std::string& name) const {
  const SafetensorsEntry* entry = Find(name);
  if (entry == nullptr) Fail(path(), ": no tensor '", name, "'");
  return Tensor(entry->dtype, entry->shape,
                file_.bytes().data() + header_.data_start + entry->begin);
}

namespace {

bool Exists(const std::filesystem::path& path) {
  std::error_code error;
  return std::filesystem::exists(path, error);
}

// The shards named by an index file, in order of first mention; `weight_map` receives its map.
std::vector<std::string> ReadIndex(const std::string& index_path, Json& weight_map) {
  const std::string text = ReadTextFile(index_path);
  Json index = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (index.is_discarded()) Fail(index_path, ": not well-formed JSON");
  if (!index.is_object()) Fail(index_path, ": expected a JSON object, found ", Describe(index));
  const auto it = index.find("weight_map");
  if (it == index.end()) Fail(index_path, ": missing object 'weight_map'");
  if (!it->is_object())
    Fail(index_path, ": 'weight_map' must be an object of tensor name -> file, found ",
         Describe(*it));
  weight_map = std::move(*it);
  std::vector<std::string> shards;
  std::set<std::string> unique;
  for (const auto& [name, file] : weight_map.items()) {
    if (!file.is_string())
      Fail(index_path, ": weight_map['", Printable(name), "'] must be a file name string, found ",
           Describe(file));
    const std::string& shard = file.get_ref<const std::string&>();
    // Only plain file names inside the checkpoint directory: no separators, no "..", no NUL
    // (which would silently truncate the path handed to the OS).
    if (shard.empty() || shard.find('/') != std::string::npos ||
        shard.find('\\') != std::string::npos || shard.find('\0') != std::string::npos ||
        shard == "." || shard == "..")
      Fail(index_path, ": weight_map['", Printable(name), "'] names '", Printable(shard),
           "', which is not a file name inside the checkpoint directory");
    if (unique.insert(shard).second) shards.push_back(shard);
  }
  return shards;
}

}  // namespace

namespace {

// MemAvailable from /proc/meminfo in bytes; 0 when unknown.
uint64_t AvailableMemory() {
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  uint64_t value = 0;
  std::string unit;
  while (meminfo >> key >> value >> unit)
    if (key == "MemAvailable:") return value * 1024;
  return 0;
}

bool ShouldCopy(const std::string& dir, const std::vector<std::string>& shards) {
  const char* env = std::getenv("WHALE_LOAD");
  const std::string choice = env != nullptr ? env : "";
  if (choice == "map") return false;
  if (choice == "copy") return true;
  if (!choice.empty())
    Fail("WHALE_LOAD='", choice, "': expected \"map\" or \"copy\" (or unset: copy when it fits)");
  uint64_t total = 0;
  for (const auto& shard : shards) {
    std::error_code error;
    total += std::filesystem::file_size(std::filesystem::path(dir) / shard, error);
  }
  const uint64_t available = AvailableMemory();
  return available > 0 && total <= available / 4 * 3;
}

}  // namespace

Checkpoint Checkpoint::Open(const std::string& dir, Load load) {
  namespace fs = std::filesystem;
  Checkpoint checkpoint;
  checkpoint.dir_ = dir;
  std::error_code error;
  if (!fs::is_directory(dir, error)) Fail(dir, ": not a directory");
  const fs::path single = fs::path(dir) / "model.safetensors";
  const std::string index_path = (fs::path(dir) / "model.safetensors.index.json").string();

  std::vector<std::string> shard_names;
  Json weight_map;
  if (Exists(index_path)) {
    shard_names = ReadIndex(index_path, weight_map);
  } else if (Exists(single)) {
    shard_names.push_back("model.safetensors");
  } else {
    for (const auto& item : fs::directory_iterator(dir, error))
      if (item.path().extension() == ".safetensors") shard_names.push_back(item.path().filename());
    if (error) Fail(dir, ": cannot list: ", error.message());
    std::sort(shard_names.begin(), shard_names.end());
    if (shard_names.empty())
      Fail(dir, ": no model.safetensors, model.safetensors.index.json or *.safetensors file");
  }

  checkpoint.copied_ = load == Load::kAuto && ShouldCopy(dir, shard_names);
  for (const auto& shard : shard_names) {
    const std::string path = (fs::path(dir) / shard).string();
    checkpoint.files_.push_back(std::make_unique<SafetensorsFile>(
        path, checkpoint.copied_ ? FileLoad::kHugeCopy : FileLoad::kMap));
    const size_t file_index = checkpoint.files_.size() - 1;
    for (const auto& entry : checkpoint.files_.back()->header().entries) {
      const auto [it, inserted] = checkpoint.where_.emplace(entry.name, file_index);
      if (!inserted)
        Fail(dir, ": tensor '", Printable(entry.name), "' appears in both ",
             checkpoint.files_[it->second]->path(), " and ", path);
      if (!weight_map.is_null()) {
        const auto mapped = weight_map.find(entry.name);
        if (mapped == weight_map.end())
          Fail(path, ": tensor '", Printable(entry.name), "' is not listed in ", index_path);
        if (mapped->get_ref<const std::string&>() != shard)
          Fail(path, ": tensor '", Printable(entry.name), "' is listed in ", index_path, " under ",
               Printable(mapped->get_ref<const std::string&>()));
      }
    }
  }
  if (!weight_map.is_null()) {
    for (const auto& [name, file] : weight_map.items())
      if (!checkpoint.Has(name))
        Fail(index_path, ": tensor '", Printable(name), "' is listed for ",
             Printable(file.get_ref<const std::string&>()), " but that file does not contain it");
  }
  return checkpoint;
}

const SafetensorsEntry& Checkpoint::Entry(const std::string& name) const {
  const auto it = where_.find(name);
  if (it == where_.end()) Fail(dir_, ": checkpoint has no tensor '", name, "'");
  return *files_[it->second]->Find(name);
}

Tensor Checkpoint::Get(const std::string& name) const {
  const auto it = where_.find(name);
  if (it == where_.end()) Fail(dir_, ": checkpoint has no tensor '", name, "'");
  return files_[it->second]->Get(name);
}

const std::string& Checkpoint::FileOf(const std::string& name) const {
  const auto it = where_.find(name);
  if (it == where_.end()) Fail(dir_, ": checkpoint has no tensor '", name, "'");
  return files_[it->second]->path();
}

std::vector<std::string> Checkpoint::Names() const {
  std::vector<std::string> names;
  names.reserve(where_.size());
  for (const auto& [name, unused] : where_) names.push_back(name);
  return names;
}

namespace {

// Checks what a reader would reject, before anything is written: names unique and not
// "__metadata__", shapes within the supported rank and 64-bit sizes, a fill function present.
// Returns each tensor's byte count.
std::vector<uint64_t> CheckPending(const std::vector<PendingTensor>& tensors,
                                   const std::string& path) {
  std::vector<uint64_t> sizes;
  std::set<std::string_view> names;
  for (const auto& t : tensors) {
    const auto where = [&] {
      return Cat(path, ": cannot write tensor '", Printable(t.name), "': ");
    };
    if (t.name == "__metadata__") Fail(where(), "the name is reserved for the header's metadata");
    if (!names.insert(t.name).second) Fail(where(), "the name appears twice");
    if (t.shape.size() > static_cast<size_t>(Tensor::kMaxRank))
      Fail(where(), "rank ", t.shape.size(), " exceeds the supported ", Tensor::kMaxRank);
    for (int64_t d : t.shape)
      if (d < 0) Fail(where(), "negative dimension in shape ", ShapeString(t.shape));
    if (!t.fill) Fail(where(), "no fill function");
    sizes.push_back(CheckedByteCount(t.shape, t.dtype, path, t.name));
  }
  return sizes;
}

}  // namespace

void WriteSafetensors(const std::string& path, const std::vector<PendingTensor>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  const std::vector<uint64_t> sizes = CheckPending(tensors, path);
  Json header = Json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  // Widest element types first, as Hugging Face's writer does: with the header padded to 8
  // bytes every tensor then starts at an address aligned for its type, and the data section has
  // no gaps (which Hugging Face's reader rejects).
  std::vector<size_t> order(tensors.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return SizeOf(tensors[a].dtype) > SizeOf(tensors[b].dtype);
  });
  uint64_t offset = 0;
  for (size_t i : order) {
    const auto& t = tensors[i];
    header[t.name] = {{"dtype", std::string(Name(t.dtype))},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + sizes[i]}}};
    offset += sizes[i];
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const Json::exception&) {
    Fail(path, ": a tensor name or metadata string is not valid UTF-8");
  }
  text.append((8 - text.size() % 8) % 8, ' ');
  if (text.size() > kMaxSafetensorsHeaderBytes)
    Fail(path, ": header of ", text.size(), " bytes exceeds the limit of ",
         kMaxSafetensorsHeaderBytes, " bytes");

  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) Fail(path, ": cannot create: ", std::strerror(errno));
  uint8_t length[8];
  for (int i = 0; i < 8; ++i) length[i] = static_cast<uint8_t>(text.size() >> (8 * i));
  out.write(reinterpret_cast<const char*>(length), 8);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  std::vector<uint8_t> buffer;
  for (size_t i : order) {
    buffer.assign(sizes[i], 0);
    tensors[i].fill(buffer);
    out.write(reinterpret_cast<const char*>(buffer.data()),
              static_cast<std::streamsize>(buffer.size()));
    if (!out) Fail(path, ": write error at tensor '", Printable(tensors[i].name), "'");
  }
  out.close();
  if (!out) Fail(path, ": write error");
}

std::vector<std::string> WriteCheckpoint(const std::string& dir,
                                         const std::vector<PendingTensor>& tensors,
                                         uint64_t max_shard_bytes,
                                         const std::map<std::string, std::string>& metadata) {
  namespace fs = std::filesystem;
  std::map<std::string, std::string> file_metadata = metadata;
  file_metadata.emplace("format", "pt");
  const std::vector<uint64_t> sizes = CheckPending(tensors, dir);
  std::error_code error;
  fs::create_directories(dir, error);
  if (error) Fail(dir, ": cannot create directory: ", error.message());
  std::vector<std::vector<PendingTensor>> shards(1);
  uint64_t shard_bytes = 0;
  uint64_t total = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& t = tensors[i];
    const uint64_t size = sizes[i];
    if (shard_bytes > 0 && shard_bytes + size > max_shard_bytes) {
      shards.emplace_back();
      shard_bytes = 0;
    }
    shards.back().push_back(t);
    shard_bytes += size;
    total += size;
  }
  // A stale single file or index from an earlier write would shadow the new one (readers
  // differ in which they try first), so the one not written now is removed.
  std::vector<std::string> written;
  if (shards.size() == 1) {
    fs::remove(fs::path(dir) / "model.safetensors.index.json", error);
    WriteSafetensors((fs::path(dir) / "model.safetensors").string(), shards[0], file_metadata);
    written.push_back("model.safetensors");
    return written;
  }
  fs::remove(fs::path(dir) / "model.safetensors", error);
  Json weight_map = Json::object();
  for (size_t s = 0; s < shards.size(); ++s) {
    char name[64];
    std::snprintf(name, sizeof(name), "model-%05zu-of-%05zu.safetensors", s + 1, shards.size());
    WriteSafetensors((fs::path(dir) / name).string(), shards[s], file_metadata);
    for (const auto& t : shards[s]) weight_map[t.name] = name;
    written.push_back(name);
  }
  const Json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
  WriteTextFile((fs::path(dir) / "model.safetensors.index.json").string(), index.dump(2) + "\n");
  written.push_back("model.safetensors.index.json");
  return written;
}

}  // namespace whale
