#!/usr/bin/env python3
"""Collects a gpu-check.sh run under OUT into results.json and table.md, and
prints the table (the last thing the check prints)."""
import json
import pathlib
import sys


def main() -> None:
    out = pathlib.Path(sys.argv[1])
    results = {"steps": [], "bench": [], "hf_compare": None, "tests": {}}
    status = out / "steps.tsv"
    if status.exists():
        for line in status.read_text().splitlines():
            name, rc, secs = line.split("\t")
            results["steps"].append({"step": name, "rc": int(rc), "seconds": int(secs)})
    for name in ("kernels", "models"):
        f = out / f"{name}.json"
        if f.exists():
            j = json.loads(f.read_text())
            results["tests"][name] = {"tests": j.get("tests"), "failures": j.get("failures"),
                                      "disabled": j.get("disabled")}
    for f in sorted(out.glob("bench_*.out")):
        for line in f.read_text().splitlines():
            if line.startswith("{"):
                d = json.loads(line)
                d["run"] = f.stem
                results["bench"].append(d)
    hf = out / "hf_compare.json"
    if hf.exists():
        results["hf_compare"] = json.loads(hf.read_text())
    (out / "results.json").write_text(json.dumps(results, indent=1))

    lines = ["| step | rc | s |", "|---|---|---|"]
    lines += [f"| {s['step']} | {s['rc']} | {s['seconds']} |" for s in results["steps"]]
    for name, t in results["tests"].items():
        lines.append(f"\n{name}: {t['tests']} tests, {t['failures']} failures")
    if results["hf_compare"]:
        h = results["hf_compare"]
        lines.append(f"\nHF transformers vs r1serve (1.5B shape, bf16): max |dlogprob| "
                     f"{h.get('max_abs_diff')}, top-1 agreement {h.get('top1_agreement')}, "
                     f"pass {h.get('pass')}")
    lines += ["", "| run | batch | prefill tok/s | decode tok/s | step ms | copy GB/s | of bound |",
              "|---|---|---|---|---|---|---|"]
    for d in results["bench"]:
        lines.append(
            f"| {d['run']} | {d['batch']} | {d['prefill_tokens_per_second']:.0f} | "
            f"{d['decode_tokens_per_second']:.0f} | {d['decode_step_ms_median']:.2f} | "
            f"{d.get('copy_gbps_median', 0):.0f} | {d['decode_fraction_of_bound']:.2f} |")
    table = "\n".join(lines)
    (out / "table.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
