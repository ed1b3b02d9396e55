// The embedded web UI: every file of web/ is served byte for byte with its content type, "/" is
// the page, unknown paths are not found, and every local reference the page makes resolves.
#include "server/web_assets.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

namespace whale {
namespace {

const std::filesystem::path kWebDir = std::filesystem::path(WHALE_TEST_DATA) / ".." / ".." / "web";

// "/" + name, built by appending: GCC 12 at -O3 misreports `"/" + std::string` (-Wrestrict).
std::string Rooted(std::string_view name) {
  std::string path(1, '/');
  path.append(name);
  return path;
}

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

TEST(WebAssets, EveryFileOfWebIsEmbeddedUnchanged) {
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator(kWebDir)) {
    if (!entry.is_regular_file() || entry.path().filename().string().starts_with(".")) continue;
    const std::string path = Rooted(entry.path().filename().string());
    const WebAsset* asset = FindWebAsset(path);
    ASSERT_NE(asset, nullptr) << path;
    EXPECT_EQ(asset->path, path);
    EXPECT_EQ(asset->body, ReadFile(entry.path())) << path << " differs from " << entry.path();
    EXPECT_FALSE(asset->content_type.empty()) << path;
    ++count;
  }
  EXPECT_GE(count, 4);  // index.html, app.js, markdown.mjs, style.css at least
}

TEST(WebAssets, RootIsTheIndexPage) {
  const WebAsset* root = FindWebAsset("/");
  ASSERT_NE(root, nullptr);
  EXPECT_EQ(root, FindWebAsset("/index.html"));
  EXPECT_EQ(root->content_type, "text/html; charset=utf-8");
  EXPECT_NE(root->body.find("<!doctype html>"), std::string_view::npos);
}

TEST(WebAssets, ContentTypes) {
  EXPECT_EQ(FindWebAsset("/app.js")->content_type, "text/javascript; charset=utf-8");
  EXPECT_EQ(FindWebAsset("/markdown.mjs")->content_type, "text/javascript; charset=utf-8");
  EXPECT_EQ(FindWebAsset("/style.css")->content_type, "text/css; charset=utf-8");
  EXPECT_EQ(FindWebAsset("/favicon.svg")->content_type, "image/svg+xml");
}

TEST(WebAssets, UnknownPathsAreNotFound) {
  for (const char* path : {"", "index.html", "/nope.js", "/../CMakeLists.txt", "/index.html?x=1",
                           "//", "/web/index.html", "/INDEX.HTML", "/index.html/"}) {
    EXPECT_EQ(FindWebAsset(path), nullptr) << path;
  }
}

// A renamed or missing file would leave the page broken only in a browser; catch it here.
TEST(WebAssets, LocalReferencesResolve) {
  const std::regex html_ref(R"re((?:src|href)="([^"#:]+)")re");
  const std::regex js_import(R"re(from '\.(/[^']+)')re");
  int checked = 0;
  const std::string page(FindWebAsset("/")->body);
  for (auto it = std::sregex_iterator(page.begin(), page.end(), html_ref);
       it != std::sregex_iterator(); ++it) {
    EXPECT_NE(FindWebAsset(Rooted((*it)[1].str())), nullptr) << "index.html refers to " << (*it)[1];
    ++checked;
  }
  for (const char* script : {"/app.js", "/markdown.mjs"}) {
    const std::string body(FindWebAsset(script)->body);
    for (auto it = std::sregex_iterator(body.begin(), body.end(), js_import);
         it != std::sregex_iterator(); ++it) {
      EXPECT_NE(FindWebAsset((*it)[1].str()), nullptr) << script << " imports " << (*it)[1];
      ++checked;
    }
  }
  EXPECT_GE(checked, 4);
}

// "Works offline": nothing in the UI may load from another host.
TEST(WebAssets, NoExternalResources) {
  const std::regex external(
      R"re((?:src|href)\s*=\s*["'](?:https?:)?//|@import|url\(\s*["']?(?:https?:)?//)re");
  // The pattern itself catches the usual ways of loading from elsewhere.
  for (const char* sample :
       {R"(<script src="https://cdn.example/x.js">)", R"(<link href="//fonts.example/a.css">)",
        "@import 'x.css';", "src: url(https://fonts.example/f.woff2)"}) {
    ASSERT_TRUE(std::regex_search(sample, external)) << sample;
  }
  for (const char* path : {"/index.html", "/style.css", "/app.js", "/markdown.mjs"}) {
    const std::string body(FindWebAsset(path)->body);
    EXPECT_FALSE(std::regex_search(body, external)) << path << " loads something from the network";
  }
}

}  // namespace
}  // namespace whale
