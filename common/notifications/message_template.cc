#include "common/notifications/message_template.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace ferry::notifications {

const std::vector<std::string>& TemplateFields() {
  static const std::vector<std::string>* fields = new std::vector<std::string>{
      "event", "message", "application", "environment", "commit", "short_commit",
      "plan",  "deployment", "repository", "actor", "time", "sequence", "ref", "service"};
  return *fields;
}

absl::StatusOr<MessageTemplate> MessageTemplate::Parse(const std::string& text, const std::string& field) {
  if (text.size() > kMaxTemplateBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": longer than ", kMaxTemplateBytes, " bytes (", text.size(), ")"));
  }
  std::vector<Part> parts;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t open = text.find("{{", pos);
    if (open == std::string::npos) {
      parts.push_back({false, text.substr(pos)});
      break;
    }
    if (open > pos) parts.push_back({false, text.substr(pos, open - pos)});
    size_t close = text.find("}}", open + 2);
    if (close == std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(field, ": \"{{\" at byte ", open, " is never closed by \"}}\""));
    }
    std::string name(absl::StripAsciiWhitespace(text.substr(open + 2, close - open - 2)));
    const auto& known = TemplateFields();
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      return absl::InvalidArgumentError(absl::StrCat(field, ": unknown placeholder {{", name.substr(0, 64),
                                                     "}}; known: ", absl::StrJoin(known, ", ")));
    }
    parts.push_back({true, name});
    pos = close + 2;
  }
  return MessageTemplate(std::move(parts));
}

std::string MessageTemplate::Render(const std::map<std::string, std::string>& values) const {
  std::string out;
  for (const Part& p : parts_) {
    if (!p.placeholder) {
      out += p.text;
    } else if (auto it = values.find(p.text); it != values.end()) {
      out += it->second;
    }
    if (out.size() > kMaxRenderedBytes) break;
  }
  if (out.size() > kMaxRenderedBytes) {
    // Cut on a UTF-8 character boundary.
    size_t cut = kMaxRenderedBytes;
    while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80) --cut;
    out.resize(cut);
  }
  return out;
}

}  // namespace ferry::notifications
