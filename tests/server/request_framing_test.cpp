// find_head_end and body_framing on hand-written requests: each case says
// by construction whether the request has all arrived.
#include "server/http/request_framing.h"

#include <gtest/gtest.h>

#include <string>

namespace r1 {
namespace {

constexpr size_t kMaxBody = 1000;

// body_framing over `request` as one buffer, the head found first.
BodyFraming framing_of(const std::string& request, size_t max_body = kMaxBody) {
  size_t scanned = 0;
  const size_t head_end = find_head_end(request, 0, &scanned);
  EXPECT_NE(head_end, 0u) << request;
  size_t chunk_pos = 0;
  return body_framing(request, 0, head_end, max_body, &chunk_pos);
}

TEST(RequestFramingTest, HeadEndsAtTheFirstBlankLine) {
  const std::string r = "GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /next HTTP/1.1\r\n\r\n";
  size_t scanned = 0;
  EXPECT_EQ(find_head_end(r, 0, &scanned), r.find("GET /next"));
  // From a later start (a pipelined request).
  scanned = 0;
  EXPECT_EQ(find_head_end(r, r.find("GET /next"), &scanned), r.size());
}

TEST(RequestFramingTest, HeadArrivingAByteAtATimeIsFoundAcrossTheResumePoint) {
  const std::string whole = "POST /x HTTP/1.1\r\nA: b\r\n\r\n";
  size_t scanned = 0;
  for (size_t n = 1; n < whole.size(); ++n) {
    EXPECT_EQ(find_head_end(whole.substr(0, n), 0, &scanned), 0u) << n;
    EXPECT_EQ(scanned, n);
  }
  EXPECT_EQ(find_head_end(whole, 0, &scanned), whole.size());
  // A bare LF LF is not the end of a head.
  scanned = 0;
  EXPECT_EQ(find_head_end("GET / HTTP/1.1\n\n", 0, &scanned), 0u);
}

TEST(RequestFramingTest, NoBodyIsReady) {
  EXPECT_EQ(framing_of("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), BodyFraming::kReady);
}

TEST(RequestFramingTest, ContentLengthWaitsForEveryByte) {
  const std::string head = "POST / HTTP/1.1\r\ncontent-LENGTH:  5 \r\n\r\n";
  EXPECT_EQ(framing_of(head), BodyFraming::kNeedMore);
  EXPECT_EQ(framing_of(head + "abcd"), BodyFraming::kNeedMore);
  EXPECT_EQ(framing_of(head + "abcde"), BodyFraming::kReady);
  EXPECT_EQ(framing_of(head + "abcdeGET"), BodyFraming::kReady);  // and a pipelined start
}

TEST(RequestFramingTest, WhatTheReaderRefusesIsReadyAtOnce) {
  // Longer than the limit (413 unread), malformed, doubled (400), a coding
  // other than chunked last, and a client that waits for 100 Continue.
  EXPECT_EQ(framing_of("POST / HTTP/1.1\r\nContent-Length: 1001\r\n\r\n"), BodyFraming::kReady);
  EXPECT_EQ(framing_of("POST / HTTP/1.1\r\nContent-Length: 1000\r\n\r\n"), BodyFraming::kNeedMore);
  EXPECT_EQ(framing_of("POST / HTTP/1.1\r\nContent-Length: 5x\r\n\r\n"), BodyFraming::kReady);
  EXPECT_EQ(framing_of("POST / HTTP/1.1\r\nContent-Length: -5\r\n\r\n"), BodyFraming::kReady);
  EXPECT_EQ(framing_of("POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n"),
            BodyFraming::kReady);
  EXPECT_EQ(framing_of("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n"),
            BodyFraming::kReady);
  EXPECT_EQ(framing_of("POST / HTTP/1.1\r\nContent-Length: 5\r\n"
                       "Transfer-Encoding: chunked\r\n\r\n"),
            BodyFraming::kReady);
  EXPECT_EQ(framing_of("POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"),
            BodyFraming::kReady);
  EXPECT_EQ(framing_of("POST / HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"),
            BodyFraming::kReady);
}

TEST(RequestFramingTest, ChunkedWaitsForTheLastChunkAndTrailers) {
  const std::string head = "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n";
  const std::string body = "5;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\n\r\n";
  // Every proper prefix waits; the whole body is ready.
  for (size_t n = 0; n < body.size(); ++n) {
    EXPECT_EQ(framing_of(head + body.substr(0, n)), BodyFraming::kNeedMore) << n;
  }
  EXPECT_EQ(framing_of(head + body), BodyFraming::kReady);
  // Trailer fields after the last chunk.
  const std::string trailed = "3\r\nabc\r\n0\r\nX-Sum: 1\r\n";
  EXPECT_EQ(framing_of(head + trailed), BodyFraming::kNeedMore);
  EXPECT_EQ(framing_of(head + trailed + "\r\n"), BodyFraming::kReady);
}

TEST(RequestFramingTest, ChunkedResumesWhereItStopped) {
  const std::string head = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
  std::string buf = head + "3\r\nabc\r\n";
  size_t scanned = 0;
  const size_t head_end = find_head_end(buf, 0, &scanned);
  size_t chunk_pos = 0;
  EXPECT_EQ(body_framing(buf, 0, head_end, kMaxBody, &chunk_pos), BodyFraming::kNeedMore);
  EXPECT_EQ(chunk_pos, buf.size());  // past the whole first chunk
  buf += "0\r\n\r\n";
  EXPECT_EQ(body_framing(buf, 0, head_end, kMaxBody, &chunk_pos), BodyFraming::kReady);
}

TEST(RequestFramingTest, BrokenOrOversizeChunksAreReady) {
  const std::string head = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
  EXPECT_EQ(framing_of(head + "zz\r\n"), BodyFraming::kReady);         // no size
  EXPECT_EQ(framing_of(head + "3\r\nabcX\r\n"), BodyFraming::kReady);  // no CRLF after data
  EXPECT_EQ(framing_of(head + "3E9\r\n"), BodyFraming::kReady);        // 1001 > the limit
  EXPECT_EQ(framing_of(head + "3E8\r\n"), BodyFraming::kNeedMore);     // 1000 fits
  EXPECT_EQ(framing_of(head + "1000000000000000\r\n"), BodyFraming::kReady);
  EXPECT_EQ(framing_of(head + std::string(5000, '1')), BodyFraming::kReady);  // endless size line
}

}  // namespace
}  // namespace r1
