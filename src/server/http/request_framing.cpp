#include "server/http/request_framing.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <string>

namespace r1 {

namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// A decimal Content-Length; false when it is not one.
bool parse_length(std::string_view s, uint64_t* out) {
  if (s.empty() || s.size() > 18) return false;
  uint64_t n = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  *out = n;
  return true;
}

struct Framing {
  int n_lengths = 0;
  std::string_view length;
  bool chunked_last = false;  // Transfer-Encoding present, last coding chunked
  bool has_te = false;
  bool expect_continue = false;
};

Framing read_framing(std::string_view head) {
  Framing f;
  size_t pos = head.find("\r\n");  // past the request line
  while (pos != std::string_view::npos && pos + 2 < head.size()) {
    const size_t start = pos + 2;
    const size_t end = head.find("\r\n", start);
    if (end == std::string_view::npos || end == start) break;
    const std::string_view line = head.substr(start, end - start);
    pos = end;
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    const std::string_view name = line.substr(0, colon);
    const std::string_view value = trim(line.substr(colon + 1));
    if (iequals(name, "Content-Length")) {
      ++f.n_lengths;
      f.length = value;
    } else if (iequals(name, "Transfer-Encoding")) {
      f.has_te = true;
      const size_t comma = value.rfind(',');
      f.chunked_last = iequals(
          trim(comma == std::string_view::npos ? value : value.substr(comma + 1)), "chunked");
    } else if (iequals(name, "Expect")) {
      f.expect_continue = iequals(value, "100-continue");
    }
  }
  return f;
}

// Bytes of chunk-size lines and CRLFs a chunked body may add to its payload
// before it is handed over as too long.
constexpr size_t kFramingSlack = 64 << 10;
// The longest chunk-size line (size and extensions) waited for.
constexpr size_t kMaxSizeLine = 4096;

// Scans chunks from *pos; kReady once the last chunk and the trailer
// section have arrived (or the framing is broken or too long).
BodyFraming scan_chunks(std::string_view buf, size_t head_end, size_t max_body, size_t* pos) {
  for (;;) {
    // A size line longer than any sane one (extensions included) is the
    // reader's to refuse, ended or not.
    const size_t line_end = buf.find("\r\n", *pos);
    if (line_end == std::string_view::npos) {
      return buf.size() - *pos > kMaxSizeLine ? BodyFraming::kReady : BodyFraming::kNeedMore;
    }
    if (line_end - *pos > kMaxSizeLine) return BodyFraming::kReady;
    uint64_t size = 0;
    size_t i = *pos;
    int digits = 0;
    for (; i < line_end && std::isxdigit(static_cast<unsigned char>(buf[i])); ++i, ++digits) {
      if (digits >= 15) return BodyFraming::kReady;  // past any allowed body
      const char c = static_cast<char>(std::tolower(static_cast<unsigned char>(buf[i])));
      size = size * 16 + static_cast<uint64_t>(c <= '9' ? c - '0' : c - 'a' + 10);
    }
    if (digits == 0) return BodyFraming::kReady;  // malformed: the reader says 400
    if (size == 0) {
      // The last chunk: then trailer fields, ended by an empty line.
      if (buf.compare(line_end, 4, "\r\n\r\n") == 0) return BodyFraming::kReady;
      const size_t trailers_end = buf.find("\r\n\r\n", line_end);
      if (trailers_end != std::string_view::npos) return BodyFraming::kReady;
      return buf.size() - line_end > 65536 ? BodyFraming::kReady : BodyFraming::kNeedMore;
    }
    const size_t data = line_end + 2;
    // Past the limit the reader says 413. The chunk-size lines count here
    // too, so the bound on the bytes on the wire has room for them.
    if (size > max_body || data - head_end + size > max_body + kFramingSlack) {
      return BodyFraming::kReady;
    }
    if (buf.size() < data + size + 2) return BodyFraming::kNeedMore;
    if (buf.compare(data + size, 2, "\r\n") != 0) return BodyFraming::kReady;  // malformed
    *pos = data + size + 2;
  }
}

}  // namespace

size_t find_head_end(std::string_view buf, size_t start, size_t* scanned) {
  // Resume three bytes before where the last search ended: the CRLF CRLF
  // may straddle it.
  const size_t from = std::max(start, *scanned >= 3 ? *scanned - 3 : size_t{0});
  const size_t at = buf.find("\r\n\r\n", from);
  if (at == std::string_view::npos) {
    *scanned = buf.size();
    return 0;
  }
  return at + 4;
}

BodyFraming body_framing(std::string_view buf, size_t start, size_t head_end, size_t max_body,
                         size_t* chunk_pos) {
  const Framing f = read_framing(buf.substr(start, head_end - start));
  if (f.expect_continue) return BodyFraming::kReady;
  if (f.has_te) {
    if (f.n_lengths > 0 || !f.chunked_last) return BodyFraming::kReady;
    if (*chunk_pos < head_end) *chunk_pos = head_end;
    return scan_chunks(buf, head_end, max_body, chunk_pos);
  }
  if (f.n_lengths == 0) return BodyFraming::kReady;
  uint64_t length = 0;
  if (f.n_lengths > 1 || !parse_length(f.length, &length) || length > max_body) {
    return BodyFraming::kReady;
  }
  return buf.size() - head_end >= length ? BodyFraming::kReady : BodyFraming::kNeedMore;
}

}  // namespace r1
