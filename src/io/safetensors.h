// safetensors: a zero-copy reader (one file, or a sharded checkpoint through
// model.safetensors.index.json) and a streaming writer.
//
// File layout: u64 little-endian header length N, N bytes of JSON
// {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}},
// then the data section; offsets are relative to its start. Every header is validated before
// any tensor is handed out (see ParseSafetensorsHeader).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "io/mapped_file.h"
#include "tensor/tensor.h"

namespace whale {

// Headers larger than this are rejected before parsing (the format's own reference uses 100 MB).
inline constexpr uint64_t kMaxSafetensorsHeaderBytes = 100'000'000;

struct SafetensorsEntry {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // offsets into the data section
  uint64_t end = 0;
};

struct SafetensorsHeader {
  std::vector<SafetensorsEntry> entries;  // in order of data offset
  std::map<std::string, std::string> metadata;
  uint64_t data_start = 0;  // file offset of the data section: 8 + N
};

// Parses and validates the header of a whole safetensors file held in `file`. Checks: file at
// least 8 bytes; header length within kMaxSafetensorsHeaderBytes and the file; well-formed JSON
// object without repeated keys; each entry has exactly dtype/shape/data_offsets of the right
// JSON types; known dtype; rank <= Tensor::kMaxRank; non-negative dimensions whose sizes fit in
// 64 bits; prod(shape) * size(dtype) == end - begin; begin <= end; spans inside the data section;
// no two non-empty spans overlap (gaps are allowed); `__metadata__` maps strings to strings.
// Throws Error naming `path` and, where one is involved, the tensor (nothing else but bad_alloc).
SafetensorsHeader ParseSafetensorsHeader(std::span<const uint8_t> file, const std::string& path);

// One mapped and validated .safetensors file.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path, FileLoad load = FileLoad::kMap);

  const std::string& path() const { return file_.path(); }
  const SafetensorsHeader& header() const { return header_; }
  const SafetensorsEntry* Find(const std::string& name) const;
  // A view into the mapped file; throws Error naming the file if `name` is absent.
  Tensor Get(const std::string& name) const;

 private:
  MappedFile file_;
  SafetensorsHeader header_;
  std::map<std::string, size_t> index_;  // name -> position in header_.entries
};

// A checkpoint directory: `model.safetensors`, or shards listed by `model.safetensors.index.json`
// (every shard it names is opened and validated; the weight_map must agree with the shards'
// contents exactly), or failing both, every *.safetensors file in the directory.
class Checkpoint {
 public:
  // kAuto: FileLoad::kHugeCopy when the files take at most 3/4 of the memory available now
  // (MemAvailable) and WHALE_LOAD is not "map"; else (or with WHALE_LOAD=map) they are mapped.
  // WHALE_LOAD=copy forces the copy.
  enum class Load { kMap, kAuto };
  static Checkpoint Open(const std::string& dir, Load load = Load::kMap);
  // How the files were loaded: "mapped" or "copied to huge pages".
  const char* load_description() const { return copied_ ? "copied to huge pages" : "mapped"; }

  bool Has(const std::string& name) const { return where_.count(name) != 0; }
  // Throws Error naming the tensor and the directory if absent.
  Tensor Get(const std::string& name) const;
  const SafetensorsEntry& Entry(const std::string& name) const;
  // The shard file that holds `name`.
  const std::string& FileOf(const std::string& name) const;
  // All tensor names, sorted.
  std::vector<std::string> Names() const;
  const std::string& dir() const { return dir_; }
  size_t n_files() const { return files_.size(); }

 private:
  std::string dir_;
  bool copied_ = false;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, size_t> where_;  // name -> index in files_
};

// A tensor to be written: its bytes are produced on demand by `fill`, which receives a buffer
// of exactly prod(shape) * SizeOf(dtype) bytes, so that huge checkpoints stream to disk.
struct PendingTensor {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::function<void(std::span<uint8_t> out)> fill;
};

// Writes one safetensors file: the header padded with spaces to a multiple of 8 as the reference
// writer does, so the data section starts 8-byte aligned; then the tensors in the order given,
// back to back (the format allows no gaps), so a tensor is aligned to its element size only if
// the ones before it keep it so. Throws Error naming the file and tensor, before writing anything,
// for a duplicate or reserved ("__metadata__") name, a negative dimension, a rank above
// Tensor::kMaxRank, a size that overflows 64 bits, or a missing fill function.
void WriteSafetensors(const std::string& path, const std::vector<PendingTensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// Writes a checkpoint into `dir`: one `model.safetensors` when the total is at most
// `max_shard_bytes`, else shards `model-00001-of-00003.safetensors`... plus
// `model.safetensors.index.json` ({"metadata": {"total_size"}, "weight_map"}). Tensors are never
// split across shards. A `model.safetensors` or index left in `dir` by an earlier write of the
// other kind is removed. Every file's `__metadata__` holds `metadata` plus "format": "pt".
// Returns the file names written.
std::vector<std::string> WriteCheckpoint(const std::string& dir,
                                         const std::vector<PendingTensor>& tensors,
                                         uint64_t max_shard_bytes,
                                         const std::map<std::string, std::string>& metadata = {});

}  // namespace whale
