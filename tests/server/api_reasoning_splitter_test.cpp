// ReasoningSplitter and ReasoningTokenCounter: markers split at every byte
// boundary, output without thinking, thinking never closed, markers inside
// the answer, and a randomized comparison against a whole-string oracle.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "server/api/reasoning_splitter.h"
#include "server/api/reasoning_token_counter.h"

namespace r1 {
namespace {

struct Split {
  std::string reasoning;
  std::string content;
  bool closed = false;
};

Split run_pieces(bool starts_in_reasoning, const std::vector<std::string>& pieces) {
  ReasoningSplitter splitter(starts_in_reasoning);
  Split out;
  for (const std::string& piece : pieces) {
    ReasoningDelta delta = splitter.push(piece);
    // Reasoning never follows content.
    if (!out.content.empty()) {
      EXPECT_TRUE(delta.reasoning.empty()) << piece;
    }
    out.reasoning += delta.reasoning;
    out.content += delta.content;
  }
  ReasoningDelta tail = splitter.flush();
  if (!out.content.empty()) {
    EXPECT_TRUE(tail.reasoning.empty());
  }
  out.reasoning += tail.reasoning;
  out.content += tail.content;
  out.closed = splitter.reasoning_closed();
  return out;
}

// The specification, on the whole string at once.
Split oracle(bool starts_in_reasoning, std::string text) {
  Split out;
  bool reasoning = starts_in_reasoning;
  if (text.rfind("<think>", 0) == 0) {
    text.erase(0, 7);
    reasoning = true;
  }
  if (!reasoning) {
    out.content = text;
    return out;
  }
  size_t pos = text.find("</think>");
  if (pos == std::string::npos) {
    out.reasoning = text;
    return out;
  }
  out.reasoning = text.substr(0, pos);
  out.content = text.substr(pos + 8);
  out.closed = true;
  return out;
}

// Every way of cutting `text` into three pieces (two cut points).
void expect_all_two_cut_splits(bool starts_in_reasoning, const std::string& text,
                               const std::string& reasoning, const std::string& content) {
  for (size_t i = 0; i <= text.size(); ++i) {
    for (size_t j = i; j <= text.size(); ++j) {
      Split got = run_pieces(starts_in_reasoning,
                             {text.substr(0, i), text.substr(i, j - i), text.substr(j)});
      ASSERT_EQ(got.reasoning, reasoning) << "cuts " << i << "," << j;
      ASSERT_EQ(got.content, content) << "cuts " << i << "," << j;
    }
  }
}

std::vector<std::string> bytes_of(const std::string& text) {
  std::vector<std::string> pieces;
  for (char c : text) pieces.emplace_back(1, c);
  return pieces;
}

TEST(ReasoningSplitterTest, MarkerSplitAtEveryBoundary) {
  expect_all_two_cut_splits(true, "Let me think.</think>\n\nThe answer is 4.", "Let me think.",
                            "\n\nThe answer is 4.");
}

TEST(ReasoningSplitterTest, OneBytePerPiece) {
  Split got = run_pieces(true, bytes_of("a</think>b"));
  EXPECT_EQ(got.reasoning, "a");
  EXPECT_EQ(got.content, "b");
  EXPECT_TRUE(got.closed);
}

TEST(ReasoningSplitterTest, MarkerIsTheWholeOutputPiece) {
  Split got = run_pieces(true, {"reason", "</think>", "\n\n", "answer"});
  EXPECT_EQ(got.reasoning, "reason");
  EXPECT_EQ(got.content, "\n\nanswer");
}

TEST(ReasoningSplitterTest, EmitsReasoningAsSoonAsItIsSafe) {
  ReasoningSplitter splitter(true);
  EXPECT_EQ(splitter.push("Hmm, ").reasoning, "Hmm, ");
  ReasoningDelta d = splitter.push("x </th");
  EXPECT_EQ(d.reasoning, "x ");       // "</th" may be the start of the marker
  d = splitter.push("ink and more");  // it was not
  EXPECT_EQ(d.reasoning, "</think and more");
  EXPECT_TRUE(splitter.in_reasoning());
  d = splitter.push("</think>ok");
  EXPECT_EQ(d.reasoning, "");
  EXPECT_EQ(d.content, "ok");
  EXPECT_FALSE(splitter.in_reasoning());
}

TEST(ReasoningSplitterTest, NoThinkingWhenPromptDidNotOpenIt) {
  Split got = run_pieces(false, {"Hello", " world"});
  EXPECT_EQ(got.reasoning, "");
  EXPECT_EQ(got.content, "Hello world");
  EXPECT_FALSE(got.closed);
  // Text that only starts like "<think>" is content.
  expect_all_two_cut_splits(false, "<thinking>x</think>y", "", "<thinking>x</think>y");
  expect_all_two_cut_splits(false, "<b>bold</b>", "", "<b>bold</b>");
}

TEST(ReasoningSplitterTest, LeadingThinkOpensReasoning) {
  expect_all_two_cut_splits(false, "<think>\nplan</think>\n\nanswer", "\nplan", "\n\nanswer");
  // With the prompt already inside <think>, a repeated leading marker is dropped too.
  expect_all_two_cut_splits(true, "<think>plan</think>answer", "plan", "answer");
}

TEST(ReasoningSplitterTest, ThinkingNeverClosedKeepsEverything) {
  expect_all_two_cut_splits(true, "still thinking </thi", "still thinking </thi", "");
  Split got = run_pieces(true, {"abc", "</think"});
  EXPECT_EQ(got.reasoning, "abc</think");
  EXPECT_EQ(got.content, "");
  EXPECT_FALSE(got.closed);
}

TEST(ReasoningSplitterTest, ShortStreamsAreNotLost) {
  EXPECT_EQ(run_pieces(false, {"<thi"}).content, "<thi");
  EXPECT_EQ(run_pieces(true, {"<thi"}).reasoning, "<thi");
  EXPECT_EQ(run_pieces(false, {"<think>"}).reasoning, "");
  Split empty = run_pieces(true, {});
  EXPECT_EQ(empty.reasoning, "");
  EXPECT_EQ(empty.content, "");
}

TEST(ReasoningSplitterTest, MarkersInsideContentAreText) {
  expect_all_two_cut_splits(true, "r</think>a<think>b</think>c", "r", "a<think>b</think>c");
}

TEST(ReasoningSplitterTest, MultiByteText) {
  expect_all_two_cut_splits(true, "思考</think>答案", "思考", "答案");
}

TEST(ReasoningSplitterTest, RandomPiecesMatchOracle) {
  std::mt19937 rng(1234);
  const std::vector<std::string> atoms = {"<think>", "</think>", "<", "/", "t",  "h",  "i",
                                          "n",       "k",        ">", "a", "\n", "</", "<th"};
  for (int iter = 0; iter < 3000; ++iter) {
    std::string text;
    int n_atoms = static_cast<int>(rng() % 12);
    for (int a = 0; a < n_atoms; ++a) text += atoms[rng() % atoms.size()];
    std::vector<std::string> pieces;
    for (size_t pos = 0; pos < text.size();) {
      size_t len = std::min<size_t>(1 + rng() % 5, text.size() - pos);
      pieces.push_back(text.substr(pos, len));
      pos += len;
    }
    for (bool starts : {true, false}) {
      Split want = oracle(starts, text);
      Split got = run_pieces(starts, pieces);
      ASSERT_EQ(got.reasoning, want.reasoning) << text << " starts=" << starts;
      ASSERT_EQ(got.content, want.content) << text << " starts=" << starts;
      ASSERT_EQ(got.closed, want.closed) << text;
    }
  }
}

constexpr int32_t kThinkStart = 151648;
constexpr int32_t kThinkEnd = 151649;

TEST(ReasoningTokenCounterTest, CountsUpToAndIncludingThinkEnd) {
  ReasoningTokenCounter counter(true, kThinkStart, kThinkEnd);
  EXPECT_TRUE(counter.push(10));
  EXPECT_TRUE(counter.push(11));
  EXPECT_TRUE(counter.push(kThinkEnd));
  EXPECT_FALSE(counter.push(12));
  EXPECT_FALSE(counter.push(kThinkStart));  // a later <think> does not reopen
  EXPECT_FALSE(counter.push(13));
  EXPECT_EQ(counter.n_reasoning_tokens(), 3);
}

TEST(ReasoningTokenCounterTest, NoThinking) {
  ReasoningTokenCounter counter(false, kThinkStart, kThinkEnd);
  EXPECT_FALSE(counter.push(10));
  EXPECT_FALSE(counter.push(kThinkEnd));
  EXPECT_EQ(counter.n_reasoning_tokens(), 0);
}

TEST(ReasoningTokenCounterTest, LeadingThinkOpens) {
  ReasoningTokenCounter counter(false, kThinkStart, kThinkEnd);
  EXPECT_TRUE(counter.push(kThinkStart));
  EXPECT_TRUE(counter.push(5));
  EXPECT_TRUE(counter.push(kThinkEnd));
  EXPECT_FALSE(counter.push(6));
  EXPECT_EQ(counter.n_reasoning_tokens(), 3);
}

TEST(ReasoningTokenCounterTest, NeverClosedCountsAll) {
  ReasoningTokenCounter counter(true, std::nullopt, std::nullopt);
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(counter.push(kThinkEnd));
  EXPECT_EQ(counter.n_reasoning_tokens(), 5);
  EXPECT_TRUE(counter.in_reasoning());
}

}  // namespace
}  // namespace r1
