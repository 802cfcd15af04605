#pragma once

#include <cstddef>
#include <string>

namespace ferry::outbox {

// What the audit service accepts in one event (services/audit validates, the
// outbox fits its events to them).
inline constexpr size_t kMaxAuditIdBytes = 256;           // ids, actor and subject
inline constexpr size_t kMaxAuditMessageBytes = 4096;     // message
inline constexpr size_t kMaxAuditDetailsBytes = 64 * 1024;  // details, serialized
// The whole event, serialized (unknown fields included): above what the
// field limits allow, so only an event padded with something else hits it.
inline constexpr size_t kMaxAuditEventBytes = 96 * 1024;

// `text` cut to at most `max` bytes at a UTF-8 character boundary, ending
// with "…" when cut.
inline std::string FitText(const std::string& text, size_t max) {
  if (text.size() <= max) return text;
  const std::string ellipsis = "\xE2\x80\xA6";  // U+2026
  if (max < ellipsis.size()) return std::string();
  size_t end = max - ellipsis.size();
  // Back up over continuation bytes (10xxxxxx) to the start of a character.
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  return text.substr(0, end) + ellipsis;
}

}  // namespace ferry::outbox
