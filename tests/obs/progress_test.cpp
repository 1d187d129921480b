// Progress: the byte counts it prints, and its summary line as a log record
// when stderr is not a terminal (as under ctest).
#include "obs/progress.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

namespace r1 {
namespace {

TEST(ProgressTest, BytesInDecimalUnits) {
  EXPECT_EQ(Progress::bytes_text(0), "0 B");
  EXPECT_EQ(Progress::bytes_text(999), "999 B");
  EXPECT_EQ(Progress::bytes_text(1000), "1 kB");
  EXPECT_EQ(Progress::bytes_text(1234567), "1.23 MB");
  EXPECT_EQ(Progress::bytes_text(45.6e6), "45.6 MB");
  EXPECT_EQ(Progress::bytes_text(456e6), "456 MB");
  EXPECT_EQ(Progress::bytes_text(4.68e9), "4.68 GB");
}

TEST(ProgressTest, SummaryCountsEveryThreadsBytes) {
  testing::internal::CaptureStderr();
  {
    Progress p("converting", 4000);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&p] {
        for (int i = 0; i < 100; ++i) p.add(10);
      });
    }
    for (std::thread& t : threads) t.join();
  }
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("converting: 4 kB in "), std::string::npos) << err;
}

}  // namespace
}  // namespace r1
