// StopStringMatcher: stops split across pieces, overlapping stops, multi-byte
// text, release of held text at the end, and a randomized whole-string oracle.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "server/api/stop_matcher.h"

namespace r1 {
namespace {

struct StopRun {
  std::string text;
  bool stopped = false;
  size_t stop_index = 0;
  std::vector<std::string> emitted;  // each non-empty piece returned
};

StopRun run_stop_pieces(const std::vector<std::string>& stops,
                        const std::vector<std::string>& pieces) {
  StopStringMatcher matcher(stops);
  StopRun run;
  for (const std::string& piece : pieces) {
    StopMatch m = matcher.push(piece);
    if (!m.text.empty()) run.emitted.push_back(m.text);
    run.text += m.text;
    if (m.stopped) {
      EXPECT_FALSE(run.stopped) << "stopped twice";
      run.stopped = true;
      run.stop_index = m.stop_index;
    }
  }
  std::string tail = matcher.flush();
  if (!tail.empty()) run.emitted.push_back(tail);
  if (run.stopped) {
    EXPECT_TRUE(tail.empty());
  }
  run.text += tail;
  return run;
}

// The specification, byte by byte: after each byte, the first stop (in list
// order, longest first at one end) that is a suffix of the text so far ends it.
StopRun stop_oracle(const std::vector<std::string>& stops, const std::string& text) {
  StopRun run;
  for (size_t end = 1; end <= text.size(); ++end) {
    std::string_view seen(text.data(), end);
    size_t best_len = 0;
    for (size_t i = 0; i < stops.size(); ++i) {
      if (stops[i].empty() || stops[i].size() <= best_len) continue;
      if (seen.ends_with(stops[i])) {
        best_len = stops[i].size();
        run.stop_index = i;
      }
    }
    if (best_len > 0) {
      run.stopped = true;
      run.text = text.substr(0, end - best_len);
      return run;
    }
  }
  run.text = text;
  return run;
}

bool utf8_whole(const std::string& s) {
  // No piece may start with a continuation byte or end inside a sequence.
  if (s.empty()) return true;
  auto cont = [](unsigned char c) { return (c & 0xC0) == 0x80; };
  if (cont(static_cast<unsigned char>(s[0]))) return false;
  size_t i = s.size();
  size_t n_cont = 0;
  while (i > 0 && cont(static_cast<unsigned char>(s[i - 1]))) --i, ++n_cont;
  if (i == 0) return false;
  unsigned char lead = static_cast<unsigned char>(s[i - 1]);
  size_t want = lead < 0x80 ? 0 : lead >= 0xF0 ? 3 : lead >= 0xE0 ? 2 : 1;
  return want == n_cont;
}

TEST(StopStringMatcherTest, StopSplitAtEveryBoundary) {
  const std::string text = "Hello STOP world";
  for (size_t i = 0; i <= text.size(); ++i) {
    for (size_t j = i; j <= text.size(); ++j) {
      StopRun run =
          run_stop_pieces({"STOP"}, {text.substr(0, i), text.substr(i, j - i), text.substr(j)});
      ASSERT_TRUE(run.stopped) << i << "," << j;
      ASSERT_EQ(run.text, "Hello ") << i << "," << j;
    }
  }
}

TEST(StopStringMatcherTest, HoldsOnlyWhatMayBecomeAStop) {
  StopStringMatcher matcher({"</answer>"});
  StopMatch m = matcher.push("the </ans");
  EXPECT_EQ(m.text, "the ");
  EXPECT_FALSE(m.stopped);
  EXPECT_EQ(matcher.n_held_bytes(), 5u);
  m = matcher.push("wer is 4");  // not the stop after all
  EXPECT_EQ(m.text, "</answer is 4");
  EXPECT_EQ(matcher.n_held_bytes(), 0u);
}

TEST(StopStringMatcherTest, FlushReleasesHeldText) {
  StopRun run = run_stop_pieces({"END"}, {"the E", "N"});
  EXPECT_FALSE(run.stopped);
  EXPECT_EQ(run.text, "the EN");
}

TEST(StopStringMatcherTest, NoStopsPassesThrough) {
  StopStringMatcher matcher({});
  EXPECT_EQ(matcher.push("abc").text, "abc");
  EXPECT_EQ(matcher.n_held_bytes(), 0u);
  StopStringMatcher only_empty({""});
  EXPECT_EQ(only_empty.push("abc").text, "abc");
  EXPECT_FALSE(only_empty.stopped());
}

TEST(StopStringMatcherTest, OverlappingStops) {
  // The stop that completes first wins, whatever the order of the list.
  StopRun run = run_stop_pieces({"abcd", "bc"}, {"xab", "ce"});
  EXPECT_TRUE(run.stopped);
  EXPECT_EQ(run.text, "xa");
  EXPECT_EQ(run.stop_index, 1u);
  // "ab" completes before "abc" could.
  run = run_stop_pieces({"abc", "ab"}, {"xa", "bc"});
  EXPECT_EQ(run.text, "x");
  EXPECT_EQ(run.stop_index, 1u);
  // "b" completes before "abc", also when both arrive in one piece.
  for (auto pieces : {std::vector<std::string>{"ab", "c"}, std::vector<std::string>{"abc"}}) {
    run = run_stop_pieces({"abc", "b"}, pieces);
    EXPECT_EQ(run.text, "a");
    EXPECT_EQ(run.stop_index, 1u);
  }
  // Both complete at the same byte: the longer one cuts.
  run = run_stop_pieces({"b", "ab"}, {"xab"});
  EXPECT_EQ(run.text, "x");
  EXPECT_EQ(run.stop_index, 1u);
  // A stop that overlaps itself.
  run = run_stop_pieces({"aab"}, {"a", "a", "a", "b"});
  EXPECT_TRUE(run.stopped);
  EXPECT_EQ(run.text, "a");
  // One stop is a suffix of a longer held prefix of another.
  run = run_stop_pieces({"xxy", "xz"}, {"x", "x", "z"});
  EXPECT_TRUE(run.stopped);
  EXPECT_EQ(run.text, "x");
  EXPECT_EQ(run.stop_index, 1u);
}

TEST(StopStringMatcherTest, StopInsideOnePiece) {
  StopRun run = run_stop_pieces({"\n\n"}, {"line one\n\nline two"});
  EXPECT_TRUE(run.stopped);
  EXPECT_EQ(run.text, "line one");
}

TEST(StopStringMatcherTest, NothingAfterTheStop) {
  StopStringMatcher matcher({"."});
  EXPECT_TRUE(matcher.push("a.b").stopped);
  StopMatch after = matcher.push("more");
  EXPECT_TRUE(after.text.empty());
  EXPECT_FALSE(after.stopped);
  EXPECT_TRUE(matcher.flush().empty());
}

TEST(StopStringMatcherTest, MultiByteText) {
  StopRun run = run_stop_pieces({"世界"}, {"你好", "世", "界!"});
  EXPECT_TRUE(run.stopped);
  EXPECT_EQ(run.text, "你好");
  run = run_stop_pieces({"世界"}, {"你好", "世", "人"});
  EXPECT_FALSE(run.stopped);
  EXPECT_EQ(run.text, "你好世人");
  for (const std::string& piece : run.emitted) EXPECT_TRUE(utf8_whole(piece)) << piece;
  // A stop sharing a lead byte with the text: "é" (C3 A9) vs "ó" (C3 B3).
  run = run_stop_pieces({"éa"}, {"ó", "é", "b"});
  EXPECT_FALSE(run.stopped);
  EXPECT_EQ(run.text, "óéb");
  for (const std::string& piece : run.emitted) EXPECT_TRUE(utf8_whole(piece)) << piece;
}

TEST(StopStringMatcherTest, RandomPiecesMatchOracle) {
  std::mt19937 rng(99);
  const std::string alphabet = "abc";
  for (int iter = 0; iter < 5000; ++iter) {
    std::vector<std::string> stops;
    int n_stops = static_cast<int>(rng() % 4);
    for (int s = 0; s < n_stops; ++s) {
      std::string stop;
      int len = static_cast<int>(rng() % 4);  // 0 = an empty stop, ignored
      for (int c = 0; c < len; ++c) stop += alphabet[rng() % alphabet.size()];
      stops.push_back(stop);
    }
    std::string text;
    int len = static_cast<int>(rng() % 16);
    for (int c = 0; c < len; ++c) text += alphabet[rng() % alphabet.size()];
    std::vector<std::string> pieces;
    for (size_t pos = 0; pos < text.size();) {
      size_t n = std::min<size_t>(rng() % 4, text.size() - pos);  // empty pieces too
      pieces.push_back(text.substr(pos, n));
      pos += n;
    }
    StopRun want = stop_oracle(stops, text);
    StopRun got = run_stop_pieces(stops, pieces);
    ASSERT_EQ(got.stopped, want.stopped) << text;
    ASSERT_EQ(got.text, want.text) << text;
    if (want.stopped) {
      ASSERT_EQ(got.stop_index, want.stop_index) << text;
    }
  }
}

}  // namespace
}  // namespace r1
