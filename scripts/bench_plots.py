"""Plots of fsc-bench's JSON (scripts/bench-plots runs this): the latency of one 3-party sum,
throughput, and each microprotocol at fsc against the original (through the same client).
usage: bench_plots.py FILE OUT_DIR"""

import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

FSC, ORIGINAL = "#1f6f8b", "#c05a28"


def latency(report, out):
    figures = report["latency"]
    samples = sorted(figures["samples_ms"])
    fig, (hist, cdf) = plt.subplots(1, 2, figsize=(10, 3.8))
    hist.hist(samples, bins=40, color=FSC)
    hist.set_xlabel("ms, submit at all three → succeeded at all three")
    hist.set_ylabel("sums")
    hist.set_title(f"One 3-party SecureSum through the v1 API, {figures['runs']} runs")
    for q, style in (("p50", "-"), ("p90", "--"), ("p99", ":")):
        hist.axvline(figures[f"{q}_ms"], color="black", linestyle=style, linewidth=1, label=f"{q} {figures[f'{q}_ms']:.2f} ms")
    hist.legend()
    cdf.plot(samples, [(i + 1) / len(samples) for i in range(len(samples))], color=FSC)
    cdf.set_xscale("log")
    cdf.set_xlabel("ms (log)")
    cdf.set_ylabel("fraction of sums at most")
    cdf.set_title("Cumulative")
    cdf.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "sum-latency.png"), dpi=110)
    plt.close(fig)


def throughput(report, out):
    bars = []
    if "throughput" in report:
        t = report["throughput"]
        bars.append((f"3 parties\n{t['sums']:,} sums", t["per_second"]))
    for entry in report.get("parties", []):
        bars.append((f"{entry['parties']} parties\n{entry['batch']} sums", entry["batch_per_second"]))
    if "tutorial" in report and report["tutorial"].get("original_ms"):
        tutorial = report["tutorial"]
    else:
        tutorial = None
    fig, ax = plt.subplots(figsize=(8, 3.8))
    labels = [b[0] for b in bars]
    values = [b[1] for b in bars]
    ax.bar(labels, values, color=FSC)
    for i, v in enumerate(values):
        ax.text(i, v, f"{v:,.0f}/s", ha="center", va="bottom")
    ax.set_ylabel("SecureSums finished per second\n(at every party)")
    title = "Batches through the v1 API, one broker, all nodes on this machine"
    if tutorial:
        title += f"\n(the original, one sum at a time through its client: {1000 / tutorial['original_ms']:.1f}/s)"
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "throughput.png"), dpi=110)
    plt.close(fig)


def protocols(report, out):
    rows = [e for e in report.get("compare", []) if e.get("fsc_ms")]
    if "tutorial" in report:
        t = report["tutorial"]
        rows.insert(0, {"microprotocol": "tutorial SecureSum (seed)", "parties": 3, "fsc_ms": t["fsc_ms"], "original_ms": t.get("original_ms")})
    rows.reverse()
    fig, ax = plt.subplots(figsize=(9, 0.42 * len(rows) + 1.6))
    y = range(len(rows))
    fsc = [r["fsc_ms"] for r in rows]
    original = [r.get("original_ms") or 0 for r in rows]
    ax.barh([i + 0.2 for i in y], fsc, height=0.4, color=FSC, label="fsc")
    ax.barh([i - 0.2 for i in y], original, height=0.4, color=ORIGINAL, label="original")
    for i, (a, b) in enumerate(zip(fsc, original)):
        ax.text(a, i + 0.2, f" {a:.0f} ms", va="center", fontsize=8)
        if b:
            ax.text(b, i - 0.2, f" {b:.0f} ms ({b / a:.0f}×)", va="center", fontsize=8)
    ax.set_yticks(list(y))
    ax.set_yticklabels([f"{r['microprotocol']} ({r['parties']}p)" for r in rows])
    ax.set_xscale("log")
    ax.set_xlabel("median ms per computation, through the unmodified Python client (log)")
    ax.set_title("Each microprotocol on a recorded vector's inputs: fsc and the original, same run")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "protocols-vs-original.png"), dpi=110)
    plt.close(fig)


def main():
    path, out = sys.argv[1], sys.argv[2]
    with open(path) as f:
        report = json.load(f)
    os.makedirs(out, exist_ok=True)
    if "latency" in report:
        latency(report, out)
    throughput(report, out)
    if "compare" in report or "tutorial" in report:
        protocols(report, out)
    print(f"plots written to {out}")


if __name__ == "__main__":
    main()
