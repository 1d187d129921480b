// libFuzzer target: the connection reactor's request framing
// (find_head_end, body_framing) on arbitrary bytes as they would arrive on
// a socket, in pieces. Properties: the head end found piece by piece (with
// the resume point) is the one a search of the whole buffer finds, and is
// the first CRLF CRLF; body_framing resumed piece by piece answers as a
// fresh scan of the same bytes does, and once the body is ready more bytes
// never make it wait again.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "server/http/request_framing.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const size_t max_body = 1 + size_t{data[0]} * 16;
  const size_t step = 1 + data[1] % 16;  // bytes per piece
  const std::string_view all(reinterpret_cast<const char*>(data) + 2, size - 2);

  // The head, piece by piece.
  size_t scanned = 0;
  size_t head_end = 0;
  size_t n = 0;
  while (head_end == 0 && n < all.size()) {
    n = std::min(all.size(), n + step);
    head_end = r1::find_head_end(all.substr(0, n), 0, &scanned);
    if (head_end == 0 && scanned != n) std::abort();
  }
  const size_t first = all.find("\r\n\r\n");
  if ((first == std::string_view::npos) != (head_end == 0)) std::abort();
  if (head_end == 0) return 0;
  if (head_end != first + 4 || head_end > n) std::abort();

  // The body, from the piece the head ended in, piece by piece.
  size_t chunk_pos = 0;
  bool ready = false;
  for (;;) {
    const std::string_view seen = all.substr(0, n);
    const r1::BodyFraming resumed = r1::body_framing(seen, 0, head_end, max_body, &chunk_pos);
    size_t fresh_pos = 0;
    const r1::BodyFraming fresh = r1::body_framing(seen, 0, head_end, max_body, &fresh_pos);
    if (resumed != fresh || fresh_pos != chunk_pos) std::abort();
    if (chunk_pos > n) std::abort();
    if (ready && resumed != r1::BodyFraming::kReady) std::abort();
    ready = resumed == r1::BodyFraming::kReady;
    if (n == all.size()) break;
    n = std::min(all.size(), n + step);
  }
  return 0;
}
