#!/usr/bin/env python3
"""The GPU check's GGUF step: the tiny qwen2 and llama models written as Q8_0
GGUF files by tools/reference/hf_to_gguf.py (llama.cpp's gguf-py, carried
in the bundle), scored on the CPU and on the GPU from the same file. The
GPU turns the blocks into bf16 on the host and keeps activations in bf16,
so the tolerance is gpu_model_test's: the most likely token agrees on at
least 90% of positions, and where it does, its logprob is within 0.08.

  python3 gpu-gguf.py RUN_SH WORK_DIR OUT_JSON
"""

import json
import os
import random
import subprocess
import sys

run, work, out_path = sys.argv[1:4]
here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
from hf_to_gguf import write_gguf  # noqa: E402
from gguf import GGMLQuantizationType as Q  # noqa: E402


def sh(*args):
    r = subprocess.run([run, *args], capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise SystemExit(f"{args[:2]} failed: {r.stderr[-2000:]}")
    return r.stdout


results = {}
ok = True
for arch, vocab in (("qwen2", 151643), ("llama", 128000)):
    folder = os.path.join(work, f"gguf-{arch}")
    if not os.path.exists(os.path.join(folder, "config.json")):
        sh("r1serve", "make-test-model", "--arch", arch, "--size", "tiny", "--dtype", "f32",
           "--seed", "13", "--out", folder)
    path = os.path.join(work, f"gguf-{arch}-Q8_0.gguf")
    write_gguf(folder, path, Q.Q8_0)
    rng = random.Random(5)
    ids = ",".join(str(rng.randrange(vocab)) for _ in range(48))
    top = {}
    for device in ("cpu", "cuda"):
        top[device] = json.loads(sh("r1serve", "score", "--model", path, "--ids", ids, "--top", "1",
                                    "--device", device))["top"]
    agree, worst = 0, 0.0
    for c, g in zip(top["cpu"], top["cuda"]):
        if c[0][0] == g[0][0]:
            agree += 1
            worst = max(worst, abs(c[0][1] - g[0][1]))
    share = agree / len(top["cpu"])
    passed = share >= 0.9 and worst <= 0.08
    ok &= passed
    results[arch] = {"positions": len(top["cpu"]), "top1_agreement": share,
                     "max_logprob_difference": worst, "passed": passed}
    print(arch, results[arch])
with open(out_path, "w") as f:
    json.dump(results, f, indent=1)
sys.exit(0 if ok else 1)
