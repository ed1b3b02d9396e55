// The web chat UI (web/*), embedded into the binary at build time by cmake/embed_web.cmake, so
// `whale serve` needs no files beside it and works offline. The definitions are generated into
// the build tree (web_assets.cc); edit web/, not the generated file.
#pragma once

#include <string_view>

namespace whale {

struct WebAsset {
  std::string_view path, content_type, body;
};

// The asset served at `path` ("/app.js"; "/" is index.html), or nullptr if there is none. Paths
// are matched exactly: no query string, no "..", no directory listing.
const WebAsset* FindWebAsset(std::string_view path);

}  // namespace whale
