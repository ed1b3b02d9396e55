// Subcommand registration: each apps/whale/cmd_*.cc file declares one subcommand with
// WHALE_COMMAND, so adding a command touches no shared file.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

namespace whale::app {

struct Command {
  std::string name;
  // Declares the subcommand's flags on `sub` and returns the action to run once parsed.
  std::function<std::function<int()>(CLI::App& sub)> setup;
  std::string help;
};

std::vector<Command>& Registry();

struct Registrar {
  Registrar(Command command) { Registry().push_back(std::move(command)); }
};

}  // namespace whale::app

#define WHALE_COMMAND(name, help, setup) \
  static ::whale::app::Registrar whale_command_registrar_##name({#name, setup, help})
