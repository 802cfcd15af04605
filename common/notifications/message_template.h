#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace ferry::notifications {

// Largest template, and largest rendered message.
inline constexpr size_t kMaxTemplateBytes = 4096;
inline constexpr size_t kMaxRenderedBytes = 16384;

// The placeholders a template may use ({{event}}, {{message}}, ...).
const std::vector<std::string>& TemplateFields();

// A message template: text with {{field}} placeholders (spaces inside the
// braces allowed), nothing else: no logic, no lookups beyond the fixed
// fields, so a template cannot reach anything but the event's own public
// fields. Immutable.
class MessageTemplate {
 public:
  // INVALID_ARGUMENT naming `field` for a template over kMaxTemplateBytes,
  // an unclosed "{{" or an unknown placeholder.
  static absl::StatusOr<MessageTemplate> Parse(const std::string& text, const std::string& field);

  // The text with every placeholder replaced by its value ("" when the
  // event has none), cut at kMaxRenderedBytes.
  std::string Render(const std::map<std::string, std::string>& values) const;

 private:
  struct Part {
    bool placeholder = false;
    std::string text;  // literal text, or the field name
  };
  explicit MessageTemplate(std::vector<Part> parts) : parts_(std::move(parts)) {}
  std::vector<Part> parts_;
};

}  // namespace ferry::notifications
