#include "services/audit/json_text_canonicalizer.h"

#include <cmath>
#include <cstdlib>

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "services/audit/canonical_json.h"

namespace ferry::audit {

class JsonTextCanonicalizer::Impl {
 public:
  absl::Status Append(absl::string_view json, std::string* out) {
    in_ = json;
    pos_ = 0;
    out_ = out;
    keys_.clear();
    absl::Status st = Value(0);
    if (!st.ok()) return st;
    SkipSpace();
    if (pos_ != in_.size()) return Error("trailing characters");
    return absl::OkStatus();
  }

 private:
  static constexpr int kMaxDepth = 512;

  // One member of an object being re-encoded: its decoded key in keys_, and
  // its `"key":value` text in *out_.
  struct Member {
    size_t key_offset, key_size, text_offset, text_size;
  };

  absl::Status Error(const char* what) const {
    return absl::InvalidArgumentError(absl::StrCat("not canonicalisable JSON: ", what, " at offset ", pos_));
  }

  void SkipSpace() {
    while (pos_ < in_.size()) {
      char c = in_[pos_];
      if (c != ' ' && c != '\t' && c != '\n' && c != '\r') return;
      ++pos_;
    }
  }

  bool Literal(absl::string_view word) {
    if (in_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    out_->append(word.data(), word.size());
    return true;
  }

  absl::Status Value(int depth) {
    if (depth > kMaxDepth) return Error("nested too deeply");
    SkipSpace();
    if (pos_ >= in_.size()) return Error("unexpected end");
    switch (in_[pos_]) {
      case '{':
        return Object(depth);
      case '[':
        return Array(depth);
      case '"': {
        absl::string_view decoded;
        absl::Status st = String(&decoded, &scratch_);
        if (!st.ok()) return st;
        return AppendJsonString(decoded, out_);
      }
      case 't':
        return Literal("true") ? absl::OkStatus() : Error("bad literal");
      case 'f':
        return Literal("false") ? absl::OkStatus() : Error("bad literal");
      case 'n':
        return Literal("null") ? absl::OkStatus() : Error("bad literal");
      default:
        return Number();
    }
  }

  absl::Status Array(int depth) {
    ++pos_;
    out_->push_back('[');
    SkipSpace();
    if (pos_ < in_.size() && in_[pos_] == ']') {
      ++pos_;
      out_->push_back(']');
      return absl::OkStatus();
    }
    for (bool first = true;; first = false) {
      if (!first) out_->push_back(',');
      absl::Status st = Value(depth + 1);
      if (!st.ok()) return st;
      SkipSpace();
      if (pos_ >= in_.size()) return Error("unexpected end");
      char c = in_[pos_++];
      if (c == ']') break;
      if (c != ',') return Error("expected ',' or ']'");
    }
    out_->push_back(']');
    return absl::OkStatus();
  }

  absl::Status Object(int depth) {
    ++pos_;
    const size_t start = out_->size();
    out_->push_back('{');
    SkipSpace();
    if (pos_ < in_.size() && in_[pos_] == '}') {
      ++pos_;
      out_->push_back('}');
      return absl::OkStatus();
    }
    // members_[depth] is indexed afresh after each nested Value(), which may
    // grow members_.
    if (members_.size() <= static_cast<size_t>(depth)) members_.resize(depth + 1);
    members_[depth].clear();
    for (bool first = true;; first = false) {
      if (!first) out_->push_back(',');
      SkipSpace();
      if (pos_ >= in_.size() || in_[pos_] != '"') return Error("expected a key");
      Member m;
      m.text_offset = out_->size();
      absl::string_view key;
      absl::Status st = String(&key, &scratch_);
      if (!st.ok()) return st;
      m.key_offset = keys_.size();
      m.key_size = key.size();
      keys_.append(key.data(), key.size());
      st = AppendJsonString(key, out_);
      if (!st.ok()) return st;
      SkipSpace();
      if (pos_ >= in_.size() || in_[pos_] != ':') return Error("expected ':'");
      ++pos_;
      out_->push_back(':');
      st = Value(depth + 1);
      if (!st.ok()) return st;
      m.text_size = out_->size() - m.text_offset;
      members_[depth].push_back(m);
      SkipSpace();
      if (pos_ >= in_.size()) return Error("unexpected end");
      char c = in_[pos_++];
      if (c == '}') break;
      if (c != ',') return Error("expected ',' or '}'");
    }
    out_->push_back('}');
    std::vector<Member>& members = members_[depth];
    auto key_of = [this](const Member& m) { return absl::string_view(keys_.data() + m.key_offset, m.key_size); };
    // Keys compare as unsigned bytes, i.e. by code point.
    auto less = [&](const Member& a, const Member& b) { return key_of(a) < key_of(b); };
    bool canonical = true;
    for (size_t i = 1; i < members.size() && canonical; ++i) canonical = less(members[i - 1], members[i]);
    if (canonical) return absl::OkStatus();
    // Sort (stably, so that of duplicate keys the last one wins, as in any
    // JSON object model) and rewrite the object from a copy of its text.
    std::stable_sort(members.begin(), members.end(), less);
    reorder_.assign(*out_, start, std::string::npos);
    out_->resize(start);
    out_->push_back('{');
    bool first = true;
    for (size_t i = 0; i < members.size(); ++i) {
      if (i + 1 < members.size() && !less(members[i], members[i + 1])) continue;  // a later duplicate wins
      if (!first) out_->push_back(',');
      first = false;
      out_->append(reorder_, members[i].text_offset - start, members[i].text_size);
    }
    out_->push_back('}');
    return absl::OkStatus();
  }

  // Parses a string at pos_; `*decoded` views its bytes, in the input when it
  // has no escapes, else in `*buffer`.
  absl::Status String(absl::string_view* decoded, std::string* buffer) {
    const size_t begin = ++pos_;
    while (pos_ < in_.size()) {
      unsigned char c = static_cast<unsigned char>(in_[pos_]);
      if (c == '"') {
        *decoded = in_.substr(begin, pos_ - begin);
        ++pos_;
        return absl::OkStatus();
      }
      if (c == '\\') break;
      if (c < 0x20) return Error("control character in a string");
      ++pos_;
    }
    buffer->assign(in_.data() + begin, pos_ - begin);
    while (pos_ < in_.size()) {
      unsigned char c = static_cast<unsigned char>(in_[pos_]);
      if (c == '"') {
        *decoded = *buffer;
        ++pos_;
        return absl::OkStatus();
      }
      if (c < 0x20) return Error("control character in a string");
      if (c != '\\') {
        buffer->push_back(static_cast<char>(c));
        ++pos_;
        continue;
      }
      if (++pos_ >= in_.size()) break;
      char e = in_[pos_++];
      switch (e) {
        case '"':
        case '\\':
        case '/':
          buffer->push_back(e);
          break;
        case 'b':
          buffer->push_back('\b');
          break;
        case 'f':
          buffer->push_back('\f');
          break;
        case 'n':
          buffer->push_back('\n');
          break;
        case 'r':
          buffer->push_back('\r');
          break;
        case 't':
          buffer->push_back('\t');
          break;
        case 'u': {
          int32_t cp = Hex4();
          if (cp < 0) return Error("bad \\u escape");
          if (cp >= 0xDC00 && cp <= 0xDFFF) return Error("lone low surrogate");
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (in_.substr(pos_, 2) != "\\u") return Error("lone high surrogate");
            pos_ += 2;
            int32_t low = Hex4();
            if (low < 0xDC00 || low > 0xDFFF) return Error("bad surrogate pair");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          }
          AppendUtf8(cp, buffer);
          break;
        }
        default:
          return Error("bad escape");
      }
    }
    return Error("unterminated string");
  }

  // Four hex digits at pos_ (consumed), or -1.
  int32_t Hex4() {
    if (pos_ + 4 > in_.size()) return -1;
    int32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      char c = in_[pos_ + i];
      int d;
      if (c >= '0' && c <= '9') {
        d = c - '0';
      } else if (c >= 'a' && c <= 'f') {
        d = c - 'a' + 10;
      } else if (c >= 'A' && c <= 'F') {
        d = c - 'A' + 10;
      } else {
        return -1;
      }
      v = v * 16 + d;
    }
    pos_ += 4;
    return v;
  }

  static void AppendUtf8(int32_t cp, std::string* out) {
    if (cp < 0x80) {
      out->push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }

  // A JSON number, as the double it denotes, in canonical form. A plain
  // integer of at most 15 digits is exact as a double and FormatNumber would
  // print it unchanged (but "-0" as "0"), so it is copied; anything else goes
  // through strtod and FormatNumber.
  absl::Status Number() {
    const size_t begin = pos_;
    auto digits = [&] {
      size_t n = 0;
      while (pos_ < in_.size() && in_[pos_] >= '0' && in_[pos_] <= '9') ++pos_, ++n;
      return n;
    };
    if (pos_ < in_.size() && in_[pos_] == '-') ++pos_;
    const size_t int_begin = pos_;
    const size_t int_digits = digits();
    if (int_digits == 0) return Error("unexpected character");
    if (int_digits > 1 && in_[int_begin] == '0') return Error("leading zero");
    bool plain = true;
    if (pos_ < in_.size() && in_[pos_] == '.') {
      ++pos_;
      if (digits() == 0) return Error("no digits after '.'");
      plain = false;
    }
    if (pos_ < in_.size() && (in_[pos_] == 'e' || in_[pos_] == 'E')) {
      ++pos_;
      if (pos_ < in_.size() && (in_[pos_] == '+' || in_[pos_] == '-')) ++pos_;
      if (digits() == 0) return Error("no digits in exponent");
      plain = false;
    }
    absl::string_view text = in_.substr(begin, pos_ - begin);
    if (plain && int_digits <= 15) {
      if (text == "-0") text = "0";
      out_->append(text.data(), text.size());
      return absl::OkStatus();
    }
    number_.assign(text.data(), text.size());
    double d = std::strtod(number_.c_str(), nullptr);
    if (!std::isfinite(d)) return Error("number out of range for a double");
    out_->append(FormatCanonicalNumber(d));
    return absl::OkStatus();
  }

  absl::string_view in_;
  size_t pos_ = 0;
  std::string* out_ = nullptr;
  std::string keys_;     // decoded keys of the objects being re-encoded
  std::string scratch_;  // a string with escapes, decoded
  std::string reorder_;  // an object's text while its members are reordered
  std::string number_;
  std::vector<std::vector<Member>> members_;  // per depth
};

JsonTextCanonicalizer::JsonTextCanonicalizer() : impl_(std::make_unique<Impl>()) {}
JsonTextCanonicalizer::~JsonTextCanonicalizer() = default;

absl::Status JsonTextCanonicalizer::Append(absl::string_view json, std::string* out) { return impl_->Append(json, out); }

absl::Status AppendCanonicalJsonText(absl::string_view json, std::string* out) {
  JsonTextCanonicalizer canonicalizer;
  return canonicalizer.Append(json, out);
}

}  // namespace ferry::audit
