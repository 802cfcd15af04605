#pragma once

#include <cstdint>

namespace ferry::planner {

// Budgets on turning repository text (YAML, JSON, render tool output) into
// objects. Everything in a repository is untrusted: a 1 KB file of nested
// YAML aliases expands to gigabytes, a file of 100,000 '[' overflows a
// recursive parser. Each refusal is a render failure (the application's plan
// fails alone) naming the file, the line where known, the limit and the
// planner flag that sets it (the flag names below). Defaults are far above
// real repositories; docs/limits.md lists them.
struct ParseLimits {
  // YAML nodes (scalars, keys, sequences, mappings) produced from one
  // document, counting every alias expansion (and the copy kept for each
  // anchor). The largest real objects (CRDs with big schemas) have tens of
  // thousands; across documents, max_manifest_bytes bounds the work.
  int64_t max_yaml_nodes = 1'000'000;
  // Nesting of sequences and mappings (YAML and JSON). CRD schemas, the
  // deepest real objects, nest two levels per schema level and stay under
  // 100; yaml-cpp itself refuses around 500.
  int max_depth = 256;
  // Bytes of one scalar (a ConfigMap value, an embedded file).
  int64_t max_scalar_bytes = 4 << 20;
  // Documents ("---" separated) in one file or tool output (empty and
  // comment-only ones not counted).
  int max_documents = 1000;
  // Objects one application renders to (List items count one each).
  int max_objects = 10'000;
  // Bytes of one application's rendered objects (the sum of their compact
  // JSON); also bounds the scalar bytes produced while reading, aliases
  // expanded, so an alias of a large scalar cannot multiply it.
  int64_t max_manifest_bytes = 32 << 20;
};

// The planner flags (services/planner/main.cc), named in every refusal.
inline constexpr char kMaxYamlNodesFlag[] = "--max-yaml-nodes";
inline constexpr char kMaxDepthFlag[] = "--max-yaml-depth";
inline constexpr char kMaxScalarBytesFlag[] = "--max-yaml-scalar-bytes";
inline constexpr char kMaxDocumentsFlag[] = "--max-yaml-documents";
inline constexpr char kMaxObjectsFlag[] = "--max-objects-per-app";
inline constexpr char kMaxManifestBytesFlag[] = "--max-manifest-bytes-per-app";

}  // namespace ferry::planner
