#pragma once

#include <string_view>

#include <nlohmann/json.hpp>

namespace ferry::logging {

// Structured JSON logs, one object per line on stderr, through spdlog.
// Each line has "ts" (RFC 3339, UTC), "level", "service", "msg" and any
// extra fields. Thread-safe. Never pass secrets in `fields`.

// Configures the process-wide logger. `level` is one of trace, debug, info,
// warn, error; anything else returns false and leaves the level at info.
bool Init(std::string_view service, std::string_view level);

void Debug(std::string_view msg, const nlohmann::json& fields = nlohmann::json::object());
void Info(std::string_view msg, const nlohmann::json& fields = nlohmann::json::object());
void Warn(std::string_view msg, const nlohmann::json& fields = nlohmann::json::object());
void Error(std::string_view msg, const nlohmann::json& fields = nlohmann::json::object());

}  // namespace ferry::logging
