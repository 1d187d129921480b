// Request ids: generated for every request, or taken from a client's
// X-Request-Id header when it is safe to log and echo back.
#pragma once

#include <string>
#include <string_view>

namespace r1 {

constexpr size_t kMaxRequestIdLength = 128;

// 32 lowercase hex digits (128 random bits). Thread-safe: each thread draws
// from its own generator seeded from std::random_device.
std::string new_request_id();

// True when `id` is 1..kMaxRequestIdLength printable ASCII characters
// (0x20..0x7E) that neither start nor end with a space.
bool is_valid_request_id(std::string_view id);

// The id for a request whose X-Request-Id header is `client_id` ("" when
// absent): the client's when valid, else a new one.
std::string request_id_or_new(std::string_view client_id);

}  // namespace r1
