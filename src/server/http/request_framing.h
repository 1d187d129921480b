// Where an HTTP/1.1 request stands in a connection's receive buffer: whether
// its head has ended, and whether its body (framed by Content-Length or
// chunked) is all there. The connection reactor reads a request whole
// before a worker takes it, so a client that stalls mid-body holds no
// worker. Only framing is read here; cpp-httplib parses the request itself
// and refuses whatever is malformed, so anything this cannot frame is
// declared ready and left to it.
#pragma once

#include <cstddef>
#include <string_view>

namespace r1 {

// The offset one past the blank line that ends the head starting at
// `start`, or 0 while it has not arrived. `*scanned` (0 for a new head)
// remembers how far the search got, so a head that arrives a byte at a time
// is not searched from its start again each time.
size_t find_head_end(std::string_view buf, size_t start, size_t* scanned);

enum class BodyFraming {
  kNeedMore,  // the body has not all arrived
  kReady,     // all there, or nothing a reader should wait for (see below)
};

// Whether the body of the request whose head is buf[start, head_end) has
// arrived. kReady also when there is no body; when the body is longer than
// `max_body` (the reader refuses it unread); when the client expects
// "100 Continue" before sending it; and when the framing is malformed or
// doubled (the reader answers 400). `*chunk_pos` (0 for a new request)
// keeps the position of the next chunk-size line so a chunked body that
// arrives in pieces is scanned once.
BodyFraming body_framing(std::string_view buf, size_t start, size_t head_end, size_t max_body,
                         size_t* chunk_pos);

}  // namespace r1
