#include "train/config_file.h"

#include <fstream>
#include <sstream>

namespace whale {

nlohmann::json ReadJsonConfigFile(const std::string& path, const std::string& what) {
  std::ifstream in(path);
  if (!in) Fail("cannot open ", what, " ", path);
  std::stringstream text;
  text << in.rdbuf();
  try {
    return nlohmann::json::parse(text.str());
  } catch (const nlohmann::json::exception& e) {
    Fail(path, ": not valid JSON: ", e.what());
  }
}

}  // namespace whale
