#include "common/status/nul_free.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

namespace ferry {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

bool HasNul(const std::string& s) { return s.find('\0') != std::string::npos; }

absl::Status Refuse(const std::string& path) { return absl::InvalidArgumentError(absl::StrCat(path, ": ", kNulInText)); }

absl::Status Walk(const Message& message, const std::string& prefix);

// One element of a map field: its key names it in the path.
absl::Status WalkMapEntry(const Message& entry, const std::string& path) {
  const FieldDescriptor* key = entry.GetDescriptor()->map_key();
  const FieldDescriptor* value = entry.GetDescriptor()->map_value();
  const Reflection* r = entry.GetReflection();
  std::string name;
  if (key->cpp_type() == FieldDescriptor::CPPTYPE_STRING) {
    name = r->GetString(entry, key);
    if (HasNul(name)) return Refuse(absl::StrCat(path, " (a key)"));
  } else {
    // Integer and bool keys: their text form.
    switch (key->cpp_type()) {
      case FieldDescriptor::CPPTYPE_INT32: name = absl::StrCat(r->GetInt32(entry, key)); break;
      case FieldDescriptor::CPPTYPE_INT64: name = absl::StrCat(r->GetInt64(entry, key)); break;
      case FieldDescriptor::CPPTYPE_UINT32: name = absl::StrCat(r->GetUInt32(entry, key)); break;
      case FieldDescriptor::CPPTYPE_UINT64: name = absl::StrCat(r->GetUInt64(entry, key)); break;
      case FieldDescriptor::CPPTYPE_BOOL: name = r->GetBool(entry, key) ? "true" : "false"; break;
      default: break;
    }
  }
  const std::string at = absl::StrCat(path, "[", name, "]");
  if (value->type() == FieldDescriptor::TYPE_STRING) {
    return HasNul(r->GetString(entry, value)) ? Refuse(at) : absl::OkStatus();
  }
  if (value->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) return Walk(r->GetMessage(entry, value), at + ".");
  return absl::OkStatus();
}

absl::Status Walk(const Message& message, const std::string& prefix) {
  const Reflection* r = message.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  r->ListFields(message, &fields);  // the set ones
  for (const FieldDescriptor* f : fields) {
    const std::string path = prefix + f->name();
    if (f->is_map()) {
      for (int i = 0; i < r->FieldSize(message, f); ++i) {
        absl::Status s = WalkMapEntry(r->GetRepeatedMessage(message, f, i), path);
        if (!s.ok()) return s;
      }
    } else if (f->type() == FieldDescriptor::TYPE_STRING) {
      if (!f->is_repeated()) {
        if (HasNul(r->GetString(message, f))) return Refuse(path);
        continue;
      }
      for (int i = 0; i < r->FieldSize(message, f); ++i) {
        if (HasNul(r->GetRepeatedString(message, f, i))) return Refuse(absl::StrCat(path, "[", i, "]"));
      }
    } else if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      if (!f->is_repeated()) {
        absl::Status s = Walk(r->GetMessage(message, f), path + ".");
        if (!s.ok()) return s;
        continue;
      }
      for (int i = 0; i < r->FieldSize(message, f); ++i) {
        absl::Status s = Walk(r->GetRepeatedMessage(message, f, i), absl::StrCat(path, "[", i, "]."));
        if (!s.ok()) return s;
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status RejectNulInStrings(const Message& message) { return Walk(message, ""); }

}  // namespace ferry
