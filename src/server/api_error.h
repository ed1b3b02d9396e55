// ApiError: a request the server answers with an OpenAI-shaped error (spec openai-api.md section
// 4):
// {"error": {"message", "type", "param", "code"}} and the matching HTTP status.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

namespace whale {

class ApiError : public std::runtime_error {
 public:
  ApiError(int status_, std::string type_, std::string code_, std::optional<std::string> param_,
           const std::string& message)
      : std::runtime_error(message),
        status(status_),
        type(std::move(type_)),
        code(std::move(code_)),
        param(std::move(param_)) {}

  // 400 invalid_request_error / invalid_value, naming the field.
  static ApiError InvalidValue(const std::string& param, const std::string& message) {
    return ApiError(400, "invalid_request_error", "invalid_value", param, message);
  }

  nlohmann::json Body() const {
    nlohmann::json error = {
        {"message", what()},
        {"type", type},
        {"param", param ? nlohmann::json(*param) : nlohmann::json(nullptr)},
        {"code", code.empty() ? nlohmann::json(nullptr) : nlohmann::json(code)}};
    for (const auto& [key, value] : extra.items()) error[key] = value;
    return {{"error", error}};
  }

  int status;
  std::string type;
  std::string code;
  std::optional<std::string> param;
  nlohmann::json extra = nlohmann::json::object();  // numeric extension fields (n_ctx, ...)
};

}  // namespace whale
