#include "io/safetensors.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
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

uint64_t CheckedByteCount(const std::vector<int64_t>& shape, DType dtype, const std::string& path,
                          const std::string& name) {
  uint64_t count = SizeOf(dtype);
  for (int64_t d : shape) {
    if (d != 0 && count > std::numeric_limits<uint64_t>::max() / static_cast<uint64_t>(d))
      Fail(path, ": tensor '", name, "': shape ", ShapeString(shape), " overflows 64 bits");
    count *= static_cast<uint64_t>(d);
  }
  return count;
}

SafetensorsEntry ParseEntry(const std::string& name, const Json& value, const std::string& path) {
  const auto where = [&] { return Cat(path, ": tensor '", name, "': "); };
  if (!value.is_object()) Fail(where(), "expected an object, found ", value.type_name());
  for (const auto& [key, unused] : value.items()) {
    if (key != "dtype" && key != "shape" && key != "data_offsets")
      Fail(where(), "unexpected field '", key, "' (expected dtype, shape, data_offsets)");
  }
  SafetensorsEntry entry;
  entry.name = name;

  const auto dtype_it = value.find("dtype");
  if (dtype_it == value.end() || !dtype_it->is_string()) Fail(where(), "missing string 'dtype'");
  const std::string dtype_name = dtype_it->get<std::string>();
  const auto dtype = ParseDType(dtype_name);
  if (!dtype) Fail(where(), "unknown dtype '", dtype_name, "'");
  entry.dtype = *dtype;

  const auto shape_it = value.find("shape");
  if (shape_it == value.end() || !shape_it->is_array()) Fail(where(), "missing array 'shape'");
  if (shape_it->size() > static_cast<size_t>(Tensor::kMaxRank))
    Fail(where(), "rank ", shape_it->size(), " exceeds the supported ", Tensor::kMaxRank);
  for (const auto& d : *shape_it) {
    if (!d.is_number_unsigned())
      Fail(where(), "shape entries must be non-negative integers, found ", d.dump());
    const uint64_t dim = d.get<uint64_t>();
    if (dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      Fail(where(), "dimension ", dim, " is too large");
    entry.shape.push_back(static_cast<int64_t>(dim));
  }

  const auto offsets_it = value.find("data_offsets");
  if (offsets_it == value.end() || !offsets_it->is_array() || offsets_it->size() != 2 ||
      !(*offsets_it)[0].is_number_unsigned() || !(*offsets_it)[1].is_number_unsigned())
    Fail(where(), "'data_offsets' must be [begin, end] with non-negative integers");
  entry.begin = (*offsets_it)[0].get<uint64_t>();
  entry.end = (*offsets_it)[1].get<uint64_t>();
  if (entry.begin > entry.end)
    Fail(where(), "data_offsets [", entry.begin, ", ", entry.end, "] has begin > end");
  const uint64_t expected = CheckedByteCount(entry.shape, entry.dtype, path, name);
  if (entry.end - entry.begin != expected)
    Fail(where(), "data_offsets span ", entry.end - entry.begin, " bytes but shape ",
         ShapeString(entry.shape), " of ", dtype_name, " needs ", expected);
  return entry;
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
  Json json = Json::parse(text, text + header_size, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) Fail(path, ": header is not well-formed JSON");
  if (!json.is_object()) Fail(path, ": header must be a JSON object, found ", json.type_name());

  SafetensorsHeader header;
  header.data_start = 8 + header_size;
  const uint64_t data_size = file.size() - header.data_start;
  for (const auto& [key, value] : json.items()) {
    if (key == "__metadata__") {
      if (!value.is_object()) Fail(path, ": '__metadata__' must be an object of strings");
      for (const auto& [meta_key, meta_value] : value.items()) {
        if (!meta_value.is_string())
          Fail(path, ": '__metadata__' value of '", meta_key, "' must be a string, found ",
               meta_value.type_name());
        header.metadata[meta_key] = meta_value.get<std::string>();
      }
      continue;
    }
    SafetensorsEntry entry = ParseEntry(key, value, path);
    if (entry.end > data_size)
      Fail(path, ": tensor '", key, "': data_offsets end ", entry.end,
           " is past the data section (", data_size, " bytes): truncated file?");
    header.entries.push_back(std::move(entry));
  }
  std::sort(header.entries.begin(), header.entries.end(), [](const auto& a, const auto& b) {
    return a.begin < b.begin || (a.begin == b.begin && a.end < b.end);
  });
  for (size_t i = 1; i < header.entries.size(); ++i) {
    const auto& prev = header.entries[i - 1];
    const auto& cur = header.entries[i];
    // Zero-sized tensors occupy no bytes and cannot overlap anything.
    if (cur.begin < prev.end && cur.begin != cur.end)
      Fail(path, ": tensors '", prev.name, "' [", prev.begin, ", ", prev.end, ") and '", cur.name,
           "' [", cur.begin, ", ", cur.end, ") overlap");
  }
  return header;
}

SafetensorsFile::SafetensorsFile(const std::string& path)
    : file_(path), header_(ParseSafetensorsHeader(file_.bytes(), path)) {
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

Checkpoint Checkpoint::Open(const std::string& dir) {
  namespace fs = std::filesystem;
  Checkpoint checkpoint;
  checkpoint.dir_ = dir;
  if (!fs::is_directory(dir)) Fail(dir, ": not a directory");
  const fs::path single = fs::path(dir) / "model.safetensors";
  const fs::path index_path = fs::path(dir) / "model.safetensors.index.json";

  std::vector<std::string> shard_names;
  Json weight_map;
  if (fs::exists(index_path)) {
    const std::string text = ReadTextFile(index_path.string());
    Json index = Json::parse(text, nullptr, false);
    if (index.is_discarded() || !index.is_object())
      Fail(index_path.string(), ": not a JSON object");
    const auto it = index.find("weight_map");
    if (it == index.end() || !it->is_object())
      Fail(index_path.string(), ": missing object 'weight_map'");
    weight_map = *it;
    std::set<std::string> unique;
    for (const auto& [name, file] : weight_map.items()) {
      if (!file.is_string())
        Fail(index_path.string(), ": weight_map['", name, "'] must be a file name string");
      const std::string shard = file.get<std::string>();
      if (shard.empty() || shard.find('/') != std::string::npos || shard == "." || shard == "..")
        Fail(index_path.string(), ": weight_map['", name, "'] names '", shard,
             "', which is not a file in the checkpoint directory");
      if (unique.insert(shard).second) shard_names.push_back(shard);
    }
  } else if (fs::exists(single)) {
    shard_names.push_back("model.safetensors");
  } else {
    for (const auto& item : fs::directory_iterator(dir))
      if (item.path().extension() == ".safetensors") shard_names.push_back(item.path().filename());
    std::sort(shard_names.begin(), shard_names.end());
    if (shard_names.empty())
      Fail(dir, ": no model.safetensors, model.safetensors.index.json or *.safetensors file");
  }

  for (const auto& shard : shard_names) {
    const std::string path = (fs::path(dir) / shard).string();
    checkpoint.files_.push_back(std::make_unique<SafetensorsFile>(path));
    const size_t file_index = checkpoint.files_.size() - 1;
    for (const auto& entry : checkpoint.files_.back()->header().entries) {
      const auto [it, inserted] = checkpoint.where_.emplace(entry.name, file_index);
      if (!inserted)
        Fail(dir, ": tensor '", entry.name, "' appears in both ",
             checkpoint.files_[it->second]->path(), " and ", path);
      if (!weight_map.is_null()) {
        const auto mapped = weight_map.find(entry.name);
        if (mapped == weight_map.end())
          Fail(path, ": tensor '", entry.name, "' is not listed in model.safetensors.index.json");
        if (mapped->get<std::string>() != shard)
          Fail(path, ": tensor '", entry.name, "' is listed in the index under ",
               mapped->get<std::string>());
      }
    }
  }
  if (!weight_map.is_null()) {
    for (const auto& [name, file] : weight_map.items())
      if (!checkpoint.Has(name))
        Fail(index_path.string(), ": tensor '", name, "' is listed for ", file.get<std::string>(),
             " but that file does not contain it");
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

uint64_t ByteCount(const PendingTensor& t) {
  uint64_t n = SizeOf(t.dtype);
  for (int64_t d : t.shape) n *= static_cast<uint64_t>(d);
  return n;
}

}  // namespace

void WriteSafetensors(const std::string& path, const std::vector<PendingTensor>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  Json header = Json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    const uint64_t size = ByteCount(t);
    header[t.name] = {{"dtype", std::string(Name(t.dtype))},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + size}}};
    offset += size;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');

  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) Fail(path, ": cannot create: ", std::strerror(errno));
  uint8_t length[8];
  for (int i = 0; i < 8; ++i) length[i] = static_cast<uint8_t>(text.size() >> (8 * i));
  out.write(reinterpret_cast<const char*>(length), 8);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  std::vector<uint8_t> buffer;
  for (const auto& t : tensors) {
    buffer.assign(ByteCount(t), 0);
    t.fill(buffer);
    out.write(reinterpret_cast<const char*>(buffer.data()),
              static_cast<std::streamsize>(buffer.size()));
    if (!out) Fail(path, ": write error at tensor '", t.name, "'");
  }
  out.close();
  if (!out) Fail(path, ": write error");
}

std::vector<std::string> WriteCheckpoint(const std::string& dir,
                                         const std::vector<PendingTensor>& tensors,
                                         uint64_t max_shard_bytes) {
  namespace fs = std::filesystem;
  fs::create_directories(dir);
  std::vector<std::vector<PendingTensor>> shards(1);
  uint64_t shard_bytes = 0;
  uint64_t total = 0;
  for (const auto& t : tensors) {
    const uint64_t size = ByteCount(t);
    if (shard_bytes > 0 && shard_bytes + size > max_shard_bytes) {
      shards.emplace_back();
      shard_bytes = 0;
    }
    shards.back().push_back(t);
    shard_bytes += size;
    total += size;
  }
  std::vector<std::string> written;
  if (shards.size() == 1) {
    fs::remove(fs::path(dir) / "model.safetensors.index.json");
    WriteSafetensors((fs::path(dir) / "model.safetensors").string(), shards[0], {{"format", "pt"}});
    written.push_back("model.safetensors");
    return written;
  }
  Json weight_map = Json::object();
  for (size_t s = 0; s < shards.size(); ++s) {
    char name[64];
    std::snprintf(name, sizeof(name), "model-%05zu-of-%05zu.safetensors", s + 1, shards.size());
    WriteSafetensors((fs::path(dir) / name).string(), shards[s], {{"format", "pt"}});
    for (const auto& t : shards[s]) weight_map[t.name] = name;
    written.push_back(name);
  }
  const Json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
  WriteTextFile((fs::path(dir) / "model.safetensors.index.json").string(), index.dump(2) + "\n");
  written.push_back("model.safetensors.index.json");
  return written;
}

}  // namespace whale
