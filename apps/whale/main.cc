// whale: the command-line front end. Each subcommand lives in its own cmd_*.cc file.
#include <algorithm>
#include <cstdio>
#include <exception>
#include <memory>

#include "command.h"
#include "util/error.h"

namespace whale::app {
std::vector<Command>& Registry() {
  static std::vector<Command> commands;
  return commands;
}
}  // namespace whale::app

int main(int argc, char** argv) {
  using namespace whale::app;
  CLI::App app{"whale: DeepSeek-V3/R1-architecture language models in C++"};
  app.require_subcommand(1);
  auto& commands = Registry();
  std::sort(commands.begin(), commands.end(),
            [](const Command& a, const Command& b) { return a.name < b.name; });
  std::function<int()> action;
  for (auto& command : commands) {
    CLI::App* sub = app.add_subcommand(command.name, command.help);
    auto run = std::make_shared<std::function<int()>>(command.setup(*sub));
    sub->callback([run, &action] { action = *run; });
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    return action();
  } catch (const whale::Error& e) {
    std::fprintf(stderr, "whale: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "whale: error: %s\n", e.what());
    return 1;
  }
}
