"""Plot the operator benchmark's figures against the tenant count.

Reads target/bench/operator-<tenants>.json (written by `cargo bench --bench operator`) and
writes docs/bench-operator.png: time to converge (with the write floor) and the operator's
peak RSS, each against the number of tenants. Used by `make bench-plot` / `make bench-scale`.
"""

import json
import pathlib
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent


def main() -> int:
    runs = []
    for path in sorted((ROOT / "target/bench").glob("operator-*.json")):
        r = json.loads(path.read_text())
        if r.get("converge_seconds") is None:
            print(f"{path.name}: did not converge; left out", file=sys.stderr)
            continue
        runs.append(r)
    runs.sort(key=lambda r: r["tenants"])
    if len(runs) < 2:
        print("need at least two converged runs in target/bench/", file=sys.stderr)
        return 1
    n = [r["tenants"] for r in runs]
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.2))
    a.plot(n, [r["converge_seconds"] for r in runs], "o-", label="operator: every tenant Ready")
    a.plot(n, [r["floor_seconds"] for r in runs], "s--", label="write floor (bare client)")
    a.set_xscale("log")
    a.set_yscale("log")
    a.set_xlabel("tenants")
    a.set_ylabel("seconds")
    a.set_title("Cold converge on kube-sim (2 CPUs)")
    a.grid(True, which="both", alpha=0.3)
    a.legend()
    for x, r in zip(n, runs):
        a.annotate(f"{1000 * r['converge_seconds'] / x:.2f} ms/tenant", (x, r["converge_seconds"]),
                   textcoords="offset points", xytext=(4, -12), fontsize=8)
    b.plot(n, [r["operator_peak_rss_bytes"] / 2**20 for r in runs], "o-", label="operator peak RSS")
    b.set_xscale("log")
    b.set_yscale("log")
    b.set_xlabel("tenants")
    b.set_ylabel("MiB")
    b.set_title("Operator memory (VmHWM)")
    b.grid(True, which="both", alpha=0.3)
    b.legend()
    fig.tight_layout()
    out = ROOT / "docs/bench-operator.png"
    fig.savefig(out, dpi=110)
    print(f"wrote {out.relative_to(ROOT)} from {len(runs)} runs: {n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
