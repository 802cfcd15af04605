#pragma once

// Helpers shared by the fuzz targets (fuzz/*_fuzzer.cc). Header-only: every
// target is one file plus this header.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

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

}  // namespace ferry::fuzz
