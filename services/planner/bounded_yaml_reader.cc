#include "services/planner/bounded_yaml_reader.h"

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <map>
#include <sstream>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "re2/re2.h"

namespace ferry::planner {
namespace {

using nlohmann::json;

// The int64 of "0x<digits>" or "0o<digits>" in `base`, or `s` itself when it
// does not fit.
json RadixInteger(const std::string& s, int base) {
  int64_t v = 0;
  const char* end = s.data() + s.size();
  auto [ptr, ec] = std::from_chars(s.data() + 2, end, v, base);
  if (ec != std::errc() || ptr != end) return s;
  return v;
}

// Thrown by the event handler, caught in Read: stops yaml-cpp's parser.
struct Refusal {
  absl::StatusCode code;
  std::string message;
  int line;
};

// Builds JSON from parser events within the limits (see the header).
class JsonBuilder final : public YAML::EventHandler {
 public:
  JsonBuilder(const ParseLimits& limits, int64_t byte_allowance, int first_line, int64_t& nodes, int64_t& bytes)
      : limits_(limits), byte_allowance_(byte_allowance), first_line_(first_line), nodes_(nodes), bytes_(bytes) {}

  json TakeRoot() { return std::move(root_); }
  int line() const { return line_; }

  void OnDocumentStart(const YAML::Mark& mark) override { At(mark); }
  void OnDocumentEnd() override {}

  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    At(mark);
    Leaf(nullptr, "null", 0, anchor);
  }

  void OnScalar(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                const std::string& value) override {
    At(mark);
    const int64_t size = static_cast<int64_t>(value.size());
    if (size > limits_.max_scalar_bytes) {
      Refuse(absl::StatusCode::kResourceExhausted,
             absl::StrCat("a scalar of ", size, " bytes, more than ", limits_.max_scalar_bytes, " (limit ",
                          kMaxScalarBytesFlag, ")"));
    }
    // "!" marks a quoted scalar; an explicit !!str keeps the text too.
    json typed = tag == "!" || tag == "tag:yaml.org,2002:str" ? json(value) : PlainScalar(value);
    Leaf(std::move(typed), value, size, anchor);
  }

  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    At(mark);
    auto it = anchors_.find(anchor);
    if (it == anchors_.end()) {
      Refuse(absl::StatusCode::kInvalidArgument,
             "an alias refers to a node that contains it (a recursive alias has no JSON form)");
    }
    const Anchored& a = it->second;
    CheckDepth(a.height);
    Charge(a.nodes, a.bytes);  // before the copy: refused before it is expanded
    produced_nodes_ += a.nodes;
    produced_bytes_ += a.bytes;
    Put(json(a.value), a.key_text, a.is_scalar, a.height);
  }

  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    Open(mark, json::array(), anchor);
  }
  void OnSequenceEnd() override { Close(); }

  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    Open(mark, json::object(), anchor);
  }
  void OnMapEnd() override { Close(); }

 private:
  // An open sequence or mapping.
  struct Frame {
    json value;
    YAML::anchor_t anchor = 0;
    int64_t nodes_at_start = 0;  // produced_nodes_ when it opened
    int64_t bytes_at_start = 0;
    int height = 1;              // levels of nesting, itself included
    bool want_key = true;        // mappings: the next node is a key
    std::string key;
  };
  // What an anchor names: a copy, and its size to charge at each alias.
  struct Anchored {
    json value;
    std::string key_text;  // a scalar's text, for use as a mapping key
    bool is_scalar = false;
    int64_t nodes = 0;
    int64_t bytes = 0;
    int height = 0;
  };

  void At(const YAML::Mark& mark) {
    if (!mark.is_null()) line_ = first_line_ + mark.line;
  }

  [[noreturn]] void Refuse(absl::StatusCode code, std::string message) const {
    throw Refusal{code, std::move(message), line_};
  }

  void Charge(int64_t nodes, int64_t bytes) {
    nodes_ += nodes;
    bytes_ += bytes;
    if (nodes_ > limits_.max_yaml_nodes) {
      Refuse(absl::StatusCode::kResourceExhausted,
             absl::StrCat("more than ", limits_.max_yaml_nodes, " YAML nodes after alias expansion (limit ",
                          kMaxYamlNodesFlag, ")"));
    }
    if (bytes_ > byte_allowance_) {
      Refuse(absl::StatusCode::kResourceExhausted,
             absl::StrCat("the application's manifests pass ", limits_.max_manifest_bytes,
                          " bytes, scalars counted after alias expansion (limit ", kMaxManifestBytesFlag, ")"));
    }
  }

  // `height` more levels below the current position.
  void CheckDepth(int height) const {
    if (static_cast<int64_t>(stack_.size()) + height > limits_.max_depth) {
      Refuse(absl::StatusCode::kResourceExhausted,
             absl::StrCat("nesting deeper than ", limits_.max_depth, " levels (limit ", kMaxDepthFlag, ")"));
    }
  }

  void Leaf(json value, const std::string& key_text, int64_t size, YAML::anchor_t anchor) {
    Charge(1, size);
    ++produced_nodes_;
    produced_bytes_ += size;
    if (anchor != 0) Remember(anchor, value, key_text, true, 1, size, 0);
    Put(std::move(value), key_text, true, 0);
  }

  void Open(const YAML::Mark& mark, json empty, YAML::anchor_t anchor) {
    At(mark);
    if (!stack_.empty() && stack_.back().value.is_object() && stack_.back().want_key) {
      Refuse(absl::StatusCode::kInvalidArgument, "a mapping key must be a scalar, not a sequence or mapping");
    }
    CheckDepth(1);
    Charge(1, 0);
    ++produced_nodes_;
    Frame f;
    f.value = std::move(empty);
    f.anchor = anchor;
    f.nodes_at_start = produced_nodes_ - 1;
    f.bytes_at_start = produced_bytes_;
    stack_.push_back(std::move(f));
  }

  void Close() {
    Frame f = std::move(stack_.back());
    stack_.pop_back();
    if (f.anchor != 0) {
      Remember(f.anchor, f.value, "", false, produced_nodes_ - f.nodes_at_start, produced_bytes_ - f.bytes_at_start,
               f.height);
    }
    Put(std::move(f.value), "", false, f.height);
  }

  // The copy kept for aliases is charged too: nested anchors cannot
  // multiply memory unseen.
  void Remember(YAML::anchor_t anchor, const json& value, const std::string& key_text, bool is_scalar, int64_t nodes,
                int64_t bytes, int height) {
    Charge(nodes, bytes);
    anchors_[anchor] = Anchored{value, key_text, is_scalar, nodes, bytes, height};
  }

  void Put(json value, const std::string& key_text, bool is_scalar, int height) {
    if (stack_.empty()) {
      root_ = std::move(value);
      return;
    }
    Frame& top = stack_.back();
    top.height = std::max(top.height, height + 1);
    if (top.value.is_array()) {
      top.value.push_back(std::move(value));
      return;
    }
    if (top.want_key) {
      if (!is_scalar) Refuse(absl::StatusCode::kInvalidArgument, "a mapping key must be a scalar, not a sequence or mapping");
      top.key = key_text;
      top.want_key = false;
      return;
    }
    top.value[top.key] = std::move(value);
    top.want_key = true;
  }

  const ParseLimits& limits_;
  const int64_t byte_allowance_;
  const int first_line_;
  int64_t& nodes_;  // charged, across the reader's documents
  int64_t& bytes_;
  int64_t produced_nodes_ = 0;  // placed in the tree: sizes of anchored nodes
  int64_t produced_bytes_ = 0;
  int line_ = 0;
  std::vector<Frame> stack_;
  std::map<YAML::anchor_t, Anchored> anchors_;
  json root_;
};

}  // namespace

json PlainScalar(const std::string& s) {
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  // RE2: linear in the scalar's length, which Git does not bound.
  static const RE2 kInt("[-+]?[0-9]+");
  static const RE2 kHex("0x[0-9a-fA-F]+");
  static const RE2 kOct("0o[0-7]+");
  static const RE2 kFloat("[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?");
  if (RE2::FullMatch(s, kInt)) {
    int64_t v = 0;
    if (absl::SimpleAtoi(s, &v)) return v;
    uint64_t u = 0;
    if (absl::SimpleAtoi(s, &u)) return u;
    return s;
  }
  // Hex and octal too big for an int64 stay strings, as decimal ones do.
  if (RE2::FullMatch(s, kHex)) return RadixInteger(s, 16);
  if (RE2::FullMatch(s, kOct)) return RadixInteger(s, 8);
  if (RE2::FullMatch(s, kFloat)) {
    double d = 0;
    if (absl::SimpleAtod(s, &d)) return d;
  }
  if (s == ".inf" || s == ".Inf" || s == "+.inf") return s;  // not representable in JSON
  return s;
}

BoundedYamlReader::BoundedYamlReader(const ParseLimits& limits, int64_t byte_allowance)
    : limits_(limits), byte_allowance_(byte_allowance) {}

absl::StatusOr<json> BoundedYamlReader::Read(const std::string& text, int first_line) {
  error_line_ = 0;
  JsonBuilder builder(limits_, byte_allowance_, first_line, nodes_, bytes_);
  try {
    std::istringstream in(text);
    YAML::Parser parser(in);
    parser.HandleNextDocument(builder);
  } catch (const Refusal& r) {
    error_line_ = r.line;
    return absl::Status(r.code, r.message);
  } catch (const YAML::DeepRecursion& e) {
    error_line_ = e.mark.is_null() ? builder.line() : first_line + e.mark.line;
    return absl::ResourceExhaustedError(absl::StrCat("nesting deeper than the YAML parser allows (", e.depth(),
                                                     " levels; limit ", kMaxDepthFlag, ")"));
  } catch (const YAML::Exception& e) {
    error_line_ = e.mark.is_null() ? 0 : first_line + e.mark.line;
    return absl::InvalidArgumentError(absl::StrCat("malformed YAML: ", e.msg));
  } catch (const std::exception& e) {  // e.g. std::bad_alloc: the file fails, not the process
    error_line_ = builder.line();
    return absl::InvalidArgumentError(absl::StrCat("cannot read YAML: ", e.what()));
  }
  return builder.TakeRoot();
}

}  // namespace ferry::planner
