#include "common/logging/logger.h"

#include <memory>
#include <string>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/json/json.h"

namespace ferry::logging {
namespace {

std::string& ServiceName() {
  static std::string* name = new std::string("ferry");
  return *name;
}

std::shared_ptr<spdlog::logger> Logger() {
  static std::shared_ptr<spdlog::logger> logger = [] {
    auto l = std::make_shared<spdlog::logger>("ferry", std::make_shared<spdlog::sinks::stderr_sink_mt>());
    l->set_pattern("%v");
    l->flush_on(spdlog::level::trace);
    return l;
  }();
  return logger;
}

void Emit(spdlog::level::level_enum level, std::string_view msg, const nlohmann::json& fields) {
  auto logger = Logger();
  if (!logger->should_log(level)) return;
  nlohmann::json line = {
      {"ts", absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone())},
      {"level", spdlog::level::to_string_view(level).data()},
      {"service", ServiceName()},
      {"msg", msg},
  };
  if (fields.is_object()) {
    for (const auto& [key, value] : fields.items()) line[key] = value;
  }
  logger->log(level, "{}", DumpJsonLossy(line));
}

}  // namespace

bool Init(std::string_view service, std::string_view level) {
  ServiceName() = std::string(service);
  spdlog::level::level_enum parsed = spdlog::level::from_str(std::string(level));
  bool known = level == "trace" || level == "debug" || level == "info" || level == "warn" || level == "error";
  Logger()->set_level(known ? parsed : spdlog::level::info);
  return known;
}

void Debug(std::string_view msg, const nlohmann::json& fields) { Emit(spdlog::level::debug, msg, fields); }
void Info(std::string_view msg, const nlohmann::json& fields) { Emit(spdlog::level::info, msg, fields); }
void Warn(std::string_view msg, const nlohmann::json& fields) { Emit(spdlog::level::warn, msg, fields); }
void Error(std::string_view msg, const nlohmann::json& fields) { Emit(spdlog::level::err, msg, fields); }

}  // namespace ferry::logging
