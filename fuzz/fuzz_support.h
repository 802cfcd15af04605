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
  if (--left < 0 || depth > 1000) return false;  // deeper only through aliases (a cycle: &a [*a])
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
// exhaust any memory limit, and an alias inside its own anchor (a cycle,
// fuzz/regressions/manifest_parser/recursive_alias) recurses until the stack
// overflows. Until the bounded-parsing budget lands, the YAML targets skip
// inputs that expand to more than `budget` nodes or 1,000 levels, so that the
// fuzzer keeps looking for other bugs instead of finding this one again and
// again. Remove this filter once the parsers refuse such input themselves.
// Documents are split at "---" lines and loaded one by one with YAML::Load,
// as the parsers do: yaml-cpp 0.7's YAML::LoadAll loops forever on some
// malformed input (found by this fuzzer; Ferry does not call it).
// FERRY_FUZZ_NO_YAML_FILTER=1 turns the filter off (to check a fix).
inline bool ExpandsBeyond(const std::string& text, long budget) {
  if (const char* off = std::getenv("FERRY_FUZZ_NO_YAML_FILTER"); off != nullptr && *off == '1') return false;
  std::vector<std::string> docs(1);
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t nl = text.find('\n', pos);
    std::string line = text.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    if (line == "---" || line.rfind("--- ", 0) == 0 || line == "---\r") {
      docs.emplace_back();
    } else {
      docs.back() += line;
      docs.back() += '\n';
    }
    if (nl == std::string::npos) break;
    pos = nl + 1;
  }
  for (const std::string& doc : docs) {
    try {
      if (!internal::CountNodes(YAML::Load(doc), budget, 0)) return true;
    } catch (const std::exception&) {
      // Malformed: the parser under test reports it; nothing expands.
    }
  }
  return false;
}

}  // namespace ferry::fuzz
