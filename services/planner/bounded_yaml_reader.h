#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "services/planner/parse_limits.h"

namespace ferry::planner {

// Reads YAML (JSON is YAML) into JSON values within ParseLimits, in one pass
// over yaml-cpp's parser events: yaml-cpp's node tree is never built, this
// code does not recurse (an explicit stack), and every node is counted as it
// is produced. An alias is counted by the size of the node it repeats before
// that node is copied, so nine levels of nine aliases are refused at the
// first alias that would pass the budget, not after expanding it; an alias
// inside its own anchor (a cycle) is refused. Scalars are typed with the YAML
// 1.2 core schema; quoted ones stay strings. Map keys are the scalars' text;
// the last of duplicate keys wins.
//
// Nodes and bytes accumulate over the Read calls of one reader.
class BoundedYamlReader {
 public:
  // `byte_allowance`: scalar bytes (keys included, aliases expanded) that all
  // Reads together may produce: what is left of the application's
  // max_manifest_bytes.
  BoundedYamlReader(const ParseLimits& limits, int64_t byte_allowance);

  // The first document of `text` as JSON (null when it has none).
  // `first_line` is the 1-based line of `text` in its file. A failure's
  // message has no file or line (the caller adds them; error_line() is the
  // line, 0 when unknown): INVALID_ARGUMENT "malformed YAML: ..." or a
  // structural problem; RESOURCE_EXHAUSTED naming the limit and its flag.
  absl::StatusOr<nlohmann::json> Read(const std::string& text, int first_line);

  int error_line() const { return error_line_; }
  int64_t nodes() const { return nodes_; }
  int64_t bytes() const { return bytes_; }

 private:
  const ParseLimits limits_;
  const int64_t byte_allowance_;
  int64_t nodes_ = 0;
  int64_t bytes_ = 0;
  int error_line_ = 0;
};

// `s` typed as a plain (unquoted) YAML 1.2 core-schema scalar: null, bool,
// integer (decimal, 0x, 0o; a string when it does not fit), float, else the
// string itself.
nlohmann::json PlainScalar(const std::string& s);

}  // namespace ferry::planner
