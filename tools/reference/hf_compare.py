#!/usr/bin/env python3
"""r1serve on the GPU against Hugging Face transformers on the GPU: the same
model folder (r1serve make-test-model), the same random prompts, the top-5
logprobs at every position.

transformers runs the folder in bf16 on cuda (AutoModelForCausalLM, eager
attention); r1serve runs `score --device cuda --top 5` through the bundle's
run.sh. For each position the logprobs of the tokens both lists share are
compared. Both sides compute in bf16 with f32 accumulation, in different
orders, so the stated tolerance is 0.1 nats per shared token with a mean
under 0.02, and the most likely token must agree at 90% of positions.

Writes one JSON object (--out) and exits non-zero when the comparison fails.
Runs where the GPU check runs (PyTorch, transformers); not in CI.
"""

import argparse
import json
import random
import subprocess
import sys


def r1serve_top(run, model, ids, top):
    cmd = [run, "r1serve", "score", "--device", "cuda", "--model", model,
           "--ids", ",".join(map(str, ids)), "--top", str(top), "--chunk", "64"]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(res.stdout)["top"]


def hf_top(model, ids, top, n_valid):
    import torch
    from transformers import AutoModelForCausalLM

    m = AutoModelForCausalLM.from_pretrained(model, torch_dtype=torch.bfloat16,
                                             attn_implementation="eager").cuda().eval()
    with torch.no_grad():
        logits = m(torch.tensor([ids], device="cuda")).logits[0].float()
    logits[:, n_valid:] = float("-inf")  # padding rows are not tokens
    lp = torch.log_softmax(logits, dim=-1)
    vals, idx = torch.topk(lp, top, dim=-1)
    return [[[int(i), float(v)] for i, v in zip(ri, rv)] for ri, rv in zip(idx.tolist(), vals.tolist())]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--run", required=True, help="the bundle's run.sh")
    ap.add_argument("--out", required=True)
    ap.add_argument("--top", type=int, default=5)
    args = ap.parse_args()

    with open(f"{args.model}/tokenizer.json") as f:
        tok = json.load(f)
    n_valid = len(tok["model"]["vocab"]) + len(tok.get("added_tokens", []))
    rng = random.Random(5)
    worst, total, shared, agree, positions = 0.0, 0.0, 0, 0, 0
    for length in (16, 200):
        ids = [rng.randrange(n_valid) for _ in range(length)]
        ours = r1serve_top(args.run, args.model, ids, args.top)
        theirs = hf_top(args.model, ids, args.top, n_valid)
        for a, b in zip(ours, theirs):
            positions += 1
            agree += a[0][0] == b[0][0]
            mine = {i: v for i, v in a}
            for i, v in b:
                if i in mine:
                    d = abs(mine[i] - v)
                    worst = max(worst, d)
                    total += d
                    shared += 1
    result = {
        "positions": positions,
        "shared_entries": shared,
        "max_abs_diff": round(worst, 5),
        "mean_abs_diff": round(total / max(shared, 1), 5),
        "top1_agreement": round(agree / max(positions, 1), 4),
        "tolerance": {"max": 0.1, "mean": 0.02, "top1": 0.9},
    }
    result["pass"] = (worst <= 0.1 and result["mean_abs_diff"] <= 0.02
                      and result["top1_agreement"] >= 0.9)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    print(json.dumps(result))
    sys.exit(0 if result["pass"] else 1)


if __name__ == "__main__":
    main()
