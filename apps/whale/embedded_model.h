// The embedded default model (whale-tiny-r1): when models/whale-tiny-r1/ existed at configure
// time, its files are linked into the whale binary (cmake/embed_model.cmake) and extracted once,
// on first use, into the user's cache directory.
#pragma once

#include <span>
#include <string>

namespace whale::app {

// One embedded file: its name in the model directory and its bytes [begin, end).
struct EmbeddedFile {
  const char* name;
  const unsigned char* begin;
  const unsigned char* end;
};

// Defined in the generated embedded_model_data.cc: the files (empty without a model) and a hash
// of their contents (16 hex digits) that names the extracted directory.
std::span<const EmbeddedFile> EmbeddedFiles();
const char* EmbeddedModelHash();

// Whether this binary was built with models/whale-tiny-r1.
bool HasEmbeddedModel();

// The directory holding the embedded model's files: $XDG_CACHE_HOME/whale/whale-tiny-r1-<hash>/
// (else ~/.cache/whale/...), written on first use into a temporary directory and renamed into
// place, so concurrent first runs are safe. Throws Error when the binary has no embedded model.
std::string EmbeddedModelDir();

// `model_flag` when given, else EmbeddedModelDir(): the --model default of every command.
std::string ModelDirOrEmbedded(const std::string& model_flag);

}  // namespace whale::app
