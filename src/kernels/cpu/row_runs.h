// How decode kernels walk a thread's rows: as kRowRuns equal runs read side
// by side, a row of each at a time, then the few rows left over one by one.
// Each run is a long sequential stream, so a core keeps kRowRuns streams in
// flight instead of one, which gets more from DRAM (on a Zen 5 core, four
// such streams with a 1 KB prefetch: 56-75 GB/s from two threads against
// 27-59 for one stream each; docs/PERFORMANCE.md). Four adjacent rows are
// not the same thing: they are four short streams, restarted every row.
#pragma once

namespace r1::kernels::cpu {

inline constexpr int kRowRuns = 4;

// group(i, run) takes rows i, i + run, ..., i + (kRowRuns - 1) * run for i in
// [0, run); single(r) takes each row from kRowRuns * run on.
template <typename Group, typename Single>
inline void for_row_runs(int n_rows, Group&& group, Single&& single) {
  const int run = n_rows / kRowRuns;
  for (int i = 0; i < run; ++i) group(i, run);
  for (int r = kRowRuns * run; r < n_rows; ++r) single(r);
}

}  // namespace r1::kernels::cpu
