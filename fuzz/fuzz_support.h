#pragma once

// Helpers shared by the fuzz targets (fuzz/*_fuzzer.cc). Header-only: every
// target is one file plus this header.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

namespace ferry::fuzz {

// The input split at '\n' into at most `n` fields; the last field keeps the
// rest (newlines included). Missing fields are empty.
inline std::vector<std::string> SplitFields(const uint8_t* data, size_t size, size_t n) {
  std::string text(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> out;
  size_t pos = 0;
  while (out.size() + 1 < n) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) break;
    out.push_back(text.substr(pos, nl - pos));
    pos = nl + 1;
  }
  out.push_back(pos <= text.size() ? text.substr(pos) : "");
  while (out.size() < n) out.emplace_back();
  return out;
}

// A property the code under test promised does not hold: report and abort,
// so that libFuzzer saves the input as a crash.
[[noreturn]] inline void Violated(const char* what, const std::string& detail) {
  std::fprintf(stderr, "fuzz property violated: %s: %s\n", what, detail.c_str());
  std::abort();
}

namespace internal {
// Counts the nodes of `node` as a tree (an alias is counted at every use),
// stopping once `left` is used up. Returns false when it was.
inline bool CountNodes(const YAML::Node& node, long& left, int depth) {
  if (--left < 0 || depth > 10000) return false;
  if (node.IsSequence()) {
    for (const auto& item : node) {
      if (!CountNodes(item, left, depth + 1)) return false;
    }
  } else if (node.IsMap()) {
    for (const auto& kv : node) {
      if (!CountNodes(kv.first, left, depth + 1) || !CountNodes(kv.second, left, depth + 1)) return false;
    }
  }
  return true;
}
}  // namespace internal

// KNOWN ISSUE (issue 15, "billion laughs"): the planner's YAML parsers have
// no budget on alias expansion yet, so a few hundred bytes of nested aliases
// exhaust any memory limit. Until the bounded-parsing budget lands, the YAML
// targets skip inputs that expand to more than `budget` nodes, so that the
// fuzzer keeps looking for other bugs instead of finding this one again and
// again. Remove this filter once the parsers refuse such input themselves.
inline bool ExpandsBeyond(const std::string& text, long budget) {
  try {
    for (const YAML::Node& doc : YAML::LoadAll(text)) {
      if (!internal::CountNodes(doc, budget, 0)) return true;
    }
  } catch (const std::exception&) {
    // Malformed: the parser under test reports it; nothing expands.
  }
  return false;
}

}  // namespace ferry::fuzz
