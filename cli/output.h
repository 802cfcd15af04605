#pragma once

// What the ferry command prints: aligned tables for people (-o wide adds
// columns), one JSON or YAML document per object for scripts (-o json:
// one object a line; -o yaml: documents separated by ---), colour only on a
// terminal and never with NO_COLOR, and times as ages ("3m", "2d").

#include <google/protobuf/message.h>
#include <google/protobuf/timestamp.pb.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace ferry::cli {

enum class Format { kTable, kWide, kJson, kYaml };

// "table" (or ""), "wide", "json", "yaml"; INVALID_ARGUMENT otherwise.
absl::StatusOr<Format> ParseFormat(const std::string& name);

enum class Color { kNone, kRed, kGreen, kYellow, kBlue, kCyan, kBold, kDim };

class Output {
 public:
  // `color_mode`: "auto" (a terminal, NO_COLOR unset, TERM not dumb),
  // "always" or "never".
  Output(Format format, const std::string& color_mode, std::FILE* out = stdout);

  Format format() const { return format_; }
  bool structured() const { return format_ == Format::kJson || format_ == Format::kYaml; }
  bool wide() const { return format_ == Format::kWide; }
  bool color() const { return color_; }
  bool terminal() const { return terminal_; }
  std::FILE* stream() const { return out_; }

  // `text` in `c` when colour is on.
  std::string Paint(const std::string& text, Color c) const;

  // One object in the structured format (a JSON line, or a YAML document).
  void Emit(const nlohmann::json& object) const;
  void Emit(const google::protobuf::Message& message) const;
  void Line(const std::string& text) const;

 private:
  Format format_;
  bool color_ = false;
  bool terminal_ = false;
  std::FILE* out_;
};

// A protobuf message as JSON with its proto field names (snake_case), the
// stable names scripts rely on.
nlohmann::json ToJson(const google::protobuf::Message& message);
std::string ToYaml(const nlohmann::json& value);

// An aligned table: a header row, then rows; cells may carry colour codes
// (widths ignore them). Columns marked wide show only with -o wide.
class Table {
 public:
  struct Column {
    std::string header;
    bool wide_only = false;
  };
  explicit Table(std::vector<Column> columns) : columns_(std::move(columns)) {}
  void Add(std::vector<std::string> cells) { rows_.push_back(std::move(cells)); }
  size_t size() const { return rows_.size(); }
  // The table as text, one line per row, two spaces between columns.
  std::string Render(bool wide) const;

 private:
  std::vector<Column> columns_;
  std::vector<std::vector<std::string>> rows_;
};

// Display width of `s`: code points, not counting ANSI colour sequences.
size_t DisplayWidth(const std::string& s);
// `s` cut to `width` display columns with "…" when longer.
std::string Truncate(const std::string& s, size_t width);

// The first 7 characters of a sha ("" stays "").
std::string ShortSha(const std::string& sha);
// The first line of a commit message.
std::string Subject(const std::string& message);
// "5s", "3m", "2h", "4d" between `then` and `now`; "-" for an unset time.
std::string Age(const google::protobuf::Timestamp& then, absl::Time now);
std::string Age(absl::Time then, absl::Time now);
// "1.2s", "3m04s"; "-" when either end is unset.
std::string Elapsed(const google::protobuf::Timestamp& start, const google::protobuf::Timestamp& end);
// RFC 3339 in UTC, seconds precision; "-" for an unset time.
std::string TimeText(const google::protobuf::Timestamp& t);
absl::Time ToTime(const google::protobuf::Timestamp& t);
bool IsSet(const google::protobuf::Timestamp& t);

}  // namespace ferry::cli
