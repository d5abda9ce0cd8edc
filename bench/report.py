#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""bench/report.py - turn the samples of a bench run into the results.

    bench/report.py RUN_DIR

RUN_DIR is what bench/run collected: samples.jsonl (one sample a line:
exp, name, round, value), meta-*.tsv (key<TAB>value facts). Writes:

  bench/results/latest.json  a flat object: for every figure and ratio its
                             median over the rounds (NAME) and the spread
                             (NAME_min, NAME_max); "meta" holds the facts
                             about the run (strings) and the targets.
  docs/img/bench-*.png       plots (gnuplot)
  docs/BENCHMARKS.md         the part between the markers
                             <!-- BEGIN bench/report.py --> and
                             <!-- END bench/report.py -->; the rest of the
                             file is written by hand and left alone.

A ratio A/B is computed per round, from the A and B of that round (measured
in the same boot, within a minute of each other), and its median and
spread are those of the per-round ratios.

To add an experiment: its guest script bench/vm/NAME.sh records samples with
bench_sample, and FIGURES / RATIOS / TABLES below say how to show them.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
RESULTS = os.path.join(ROOT, "bench", "results", "latest.json")
DOC = os.path.join(ROOT, "docs", "BENCHMARKS.md")
IMG = os.path.join(ROOT, "docs", "img")
BEGIN = "<!-- BEGIN bench/report.py -->"
END = "<!-- END bench/report.py -->"

SIZES = [(1, "1"), (100, "100"), (1000, "1k"), (10000, "10k"), (100000, "100k")]

# name -> what it is (table rows, in this order)
FIGURES = {
    "dataplane": [
        ("bridge_pps", "bare bridge, frame for another port, no mbvisor module"),
        ("nullhook_pps", "bare bridge + a hook at the same point that accepts everything (bench only)"),
        ("idle_pps", "mbvisor loaded, middlebox with 1,000 rules, frame for another port"),
        ("pass_pps", "frame for the 1,000-rule middlebox, no rule matches"),
        ("limit_pps", "a hook at the same point that drops everything (bench only)"),
    ]
    + [("drop_%s_pps" % s, "dropped by mbfw, %s rule%s" % (s, "" if n == 1 else "s")) for n, s in SIZES]
    + [("nft_drop_%s_pps" % s, "dropped by nftables bridge prerouting, %s linear rule%s"
        % (s, "" if n == 1 else "s")) for n, s in SIZES]
    + [("nft_set_drop_%s_pps" % s, "dropped by nftables bridge prerouting, one rule, a set of %s" % s)
       for n, s in SIZES],
    "anatomy": [
        ("anatomy_bridge_pps", "no hook, frame forwarded to another port"),
        ("anatomy_nullhook_pps", "+ a hook that accepts everything: the netfilter hook call"),
        ("anatomy_nomb_pps", "mbhook instead, no middlebox: mbhook_rx + a lookup in an empty table"),
        ("anatomy_idle_pps", "one middlebox registered, frame for another port: a lookup that misses"),
        ("anatomy_disabled_pps", "frame for a disabled middlebox: a hit, its counters"),
        ("anatomy_norules_pps", "frame for a middlebox without rules: + the call into mbfw"),
        ("anatomy_pass_pps", "one rule, not matched: + key extraction, one classifier subtable"),
        ("anatomy_limit_pps", "a hook that drops everything"),
        ("anatomy_drop_pps", "the frame matches the rule: dropped by mbfw"),
    ],
    "interrupts": [
        ("irq_none", "NIC interrupts of the middlebox VM, frames not filtered"),
        ("irq_guest_filter", "NIC interrupts, frames dropped by nftables in the VM (netdev ingress)"),
        ("irq_offload", "NIC interrupts, frames dropped by mbfw at the host's bridge (rule sent by mbctl)"),
        ("rx_none", "frames the VM's NIC received, not filtered"),
        ("rx_guest_filter", "frames the VM's NIC received, dropped by nftables in the VM"),
        ("rx_offload", "frames the VM's NIC received, dropped at the bridge"),
        ("softirq_none", "ms of softirq time in the VM (/proc/stat, tick-sampled), not filtered"),
        ("softirq_guest_filter", "ms of softirq time in the VM, dropped by nftables in the VM"),
        ("softirq_offload", "ms of softirq time in the VM, dropped at the bridge"),
        ("netrx_none", "NET_RX softirqs run in the VM (/proc/softirqs), not filtered"),
        ("netrx_guest_filter", "NET_RX softirqs run in the VM, dropped by nftables in the VM"),
        ("netrx_offload", "NET_RX softirqs run in the VM, dropped at the bridge"),
        ("lost_none", "frames the host's tap dropped (the VM too slow), not filtered"),
        ("lost_guest_filter", "frames the host's tap dropped, dropped by nftables in the VM"),
        ("lost_offload", "frames the host's tap dropped, dropped at the bridge"),
    ],
    "throughput": [
        ("tcp_lb_mbps", "iperf3, one TCP stream, Mbit/s: through mblb at the bridge"),
        ("tcp_ipvs_mbps", "iperf3: through IPVS (NAT) in the middlebox's namespace"),
        ("tcp_direct_mbps", "iperf3: directly to the backend (the limit)"),
        ("http_lb_rps", "ab, a connection per request, requests/s: through mblb at the bridge"),
        ("http_ipvs_rps", "ab: through IPVS (NAT) in the middlebox's namespace"),
        ("http_direct_rps", "ab: directly to the backend (the limit)"),
        ("tcp_vm_lb_mbps", "middlebox VM (nested): iperf3 through mblb at the bridge"),
        ("tcp_vm_ipvs_mbps", "middlebox VM: iperf3 through IPVS (NAT) inside the VM"),
        ("tcp_vm_direct_mbps", "middlebox VM: iperf3 directly to the backend"),
        ("http_vm_lb_rps", "middlebox VM: ab through mblb at the bridge"),
        ("http_vm_ipvs_rps", "middlebox VM: ab through IPVS (NAT) inside the VM"),
        ("http_vm_direct_rps", "middlebox VM: ab directly to the backend"),
    ],
    "control": [
        ("mbadm_batch_10k_rules_per_s", "`mbadm batch` of 10,000 rules"),
        ("nft_set_add_10k_elements_per_s", "`nft -f`: add 10,000 elements to a set"),
        ("mbadm_batch_100k_rules_per_s", "`mbadm batch` of 100,000 rules"),
        ("nft_set_add_100k_elements_per_s", "`nft -f`: add 100,000 elements to a set"),
        ("ctl_doorbell_ms", "ms from `mbctl` in the middlebox VM to the rule active, ivshmem-doorbell"),
        ("ctl_poll_ms", "ms from `mbctl` to the rule active, ivshmem-plain, mbhostd polling (1-100 ms)"),
        ("ctl_exec_ms", "ms of `mbctl --version` in the VM: what starting mbctl costs by itself"),
    ],
}

# (numerator, denominator, target): None (no target), a number X (the
# ratio must be >= X), or ("<=", X)
RATIOS = {
    "dataplane": [
        ("idle_pps", "bridge_pps", 0.97),
        ("pass_pps", "bridge_pps", 0.95),
        ("drop_1_pps", "limit_pps", 0.90),
        ("drop_100k_pps", "drop_1_pps", 0.90),
        ("drop_10k_pps", "nft_drop_10k_pps", 10.0),
        ("drop_10k_pps", "nft_set_drop_10k_pps", 1.0),
        ("nullhook_pps", "bridge_pps", None),
        ("drop_100_pps", "drop_1_pps", None),
        ("drop_10k_pps", "drop_1_pps", None),
        ("drop_1_pps", "nft_drop_1_pps", None),
        ("drop_1_pps", "nft_set_drop_1_pps", None),
        ("drop_100k_pps", "nft_set_drop_100k_pps", None),
        ("nft_drop_1_pps", "limit_pps", None),
        ("nft_set_drop_1_pps", "limit_pps", None),
    ],
    "anatomy": [
        ("anatomy_idle_pps", "anatomy_bridge_pps", None),
        ("anatomy_pass_pps", "anatomy_bridge_pps", None),
        ("anatomy_drop_pps", "anatomy_limit_pps", None),
    ],
    "interrupts": [
        ("irq_offload", "irq_guest_filter", ("<=", 0.01)),
        ("irq_guest_filter", "irq_none", None),
        ("rx_offload", "rx_guest_filter", None),
        ("softirq_offload", "softirq_guest_filter", None),
        ("softirq_guest_filter", "softirq_none", None),
        ("netrx_offload", "netrx_guest_filter", None),
    ],
    "throughput": [
        ("tcp_lb_mbps", "tcp_direct_mbps", 0.9),
        ("tcp_lb_mbps", "tcp_ipvs_mbps", 2.0),
        ("http_lb_rps", "http_direct_rps", 0.9),
        ("http_lb_rps", "http_ipvs_rps", 2.0),
        ("tcp_ipvs_mbps", "tcp_direct_mbps", None),
        ("http_ipvs_rps", "http_direct_rps", None),
        ("tcp_vm_lb_mbps", "tcp_vm_direct_mbps", 0.9),
        ("tcp_vm_lb_mbps", "tcp_vm_ipvs_mbps", 2.0),
        ("http_vm_lb_rps", "http_vm_direct_rps", 0.9),
        ("http_vm_lb_rps", "http_vm_ipvs_rps", 2.0),
    ],
    "control": [
        ("mbadm_batch_10k_rules_per_s", "nft_set_add_10k_elements_per_s", None),
        ("mbadm_batch_100k_rules_per_s", "nft_set_add_100k_elements_per_s", None),
        ("ctl_doorbell_ms", "ctl_poll_ms", None),
        ("ctl_exec_ms", "ctl_doorbell_ms", None),
    ],
}

TITLES = {
    "dataplane": "Time to process a frame at the bridge (part 1): frames per second",
    "anatomy": "Where a frame's time goes (explains part 1)",
    "interrupts": "Interrupts generated by packets (part 2): a middlebox VM, per 10,000 frames sent",
    "throughput": "Throughput of a client application (part 3): the middlebox as a network namespace, then as a VM",
    "control": "Control plane (part 4): rules installed per second, and from mbctl to an active rule",
}


def target_text(target):
    """'>= 0.9' or '<= 0.01' (JSON), for a target of RATIOS."""
    if isinstance(target, tuple):
        return "%s %g" % target
    return ">= %g" % target


def target_met(target, value):
    if isinstance(target, tuple):
        op, x = target
        return value <= x if op == "<=" else value >= x
    return value >= target


def ratio(num, den):
    """num/den; 0/x is 0; x/0 has no value (None): 0/0 says nothing, and
    a count over a count of 0 has no finite ratio."""
    if den == 0:
        return None
    return num / den


def die(msg):
    sys.stderr.write("bench/report.py: error: %s\n" % msg)
    sys.exit(1)


def read_samples(run):
    path = os.path.join(run, "samples.jsonl")
    samples = {}  # name -> {round: value}
    exps = {}  # name -> exp
    try:
        with open(path) as f:
            for i, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    s = json.loads(line)
                    name, rnd, val = s["name"], int(s["round"]), float(s["value"])
                except (ValueError, KeyError, TypeError) as e:
                    die("%s:%d: bad sample (%s)" % (path, i, e))
                if rnd in samples.setdefault(name, {}):
                    die("%s:%d: two samples of %s in round %d" % (path, i, name, rnd))
                samples[name][rnd] = val
                exps[name] = s.get("exp", "?")
    except OSError as e:
        die("cannot read %s: %s" % (path, e))
    if not samples:
        die("no samples in %s" % path)
    return samples, exps


def read_meta(run):
    meta = {}
    for fn in sorted(os.listdir(run)):
        if fn.startswith("meta-") and fn.endswith(".tsv"):
            with open(os.path.join(run, fn)) as f:
                for line in f:
                    k, _, v = line.rstrip("\n").partition("\t")
                    if k:
                        meta[k] = v
    return meta


def summary(values):
    return statistics.median(values), min(values), max(values), len(values)


def fmt(x):
    """A number for a table: 3 significant digits for ratios, ints for rates."""
    if x >= 1000:
        return "{:,}".format(int(round(x)))
    if x >= 100:
        return "%.0f" % x
    if x >= 10:
        return "%.1f" % x
    if x == 0:
        return "0"
    if x < 0.01:
        return "%.3g" % x
    return "%.3f" % x


def compute(samples, exps):
    out = {}
    rows = {}  # exp -> list of table rows
    for exp, figs in FIGURES.items():
        for name, what in figs:
            if name not in samples:
                continue
            med, lo, hi, n = summary(list(samples[name].values()))
            out[name], out[name + "_min"], out[name + "_max"] = med, lo, hi
            rows.setdefault(exp, []).append((name, what, med, lo, hi, n))
    known = {n for figs in FIGURES.values() for n, _ in figs}
    for name in sorted(set(samples) - known):  # an experiment not described yet
        med, lo, hi, n = summary(list(samples[name].values()))
        out[name], out[name + "_min"], out[name + "_max"] = med, lo, hi
        rows.setdefault(exps[name], []).append((name, "", med, lo, hi, n))
    ratios = {}
    targets = {}
    for exp, rs in RATIOS.items():
        for num, den, target in rs:
            if num not in samples or den not in samples:
                continue
            rounds = sorted(set(samples[num]) & set(samples[den]))
            vals = [v for v in (ratio(samples[num][r], samples[den][r]) for r in rounds)
                    if v is not None]
            key = "%s/%s" % (num, den)
            if not vals:
                # every round's denominator was 0: no value, said so
                if rounds:
                    ratios.setdefault(exp, []).append((key, target, None, None, None, 0))
                    if target is not None:
                        targets[key] = {"target": target_text(target), "met": False,
                                        "note": "undefined: the denominator was 0 in every round"}
                continue
            med, lo, hi, n = summary(vals)
            out[key], out[key + "_min"], out[key + "_max"] = med, lo, hi
            ratios.setdefault(exp, []).append((key, target, med, lo, hi, n))
            if target is not None:
                targets[key] = {"target": target_text(target), "met": target_met(target, med)}
    return out, rows, ratios, targets


def gnuplot(script):
    try:
        subprocess.run(["gnuplot"], input=script, text=True, check=True)
    except FileNotFoundError:
        die("gnuplot not found (scripts/install-deps gnuplot-nox)")
    except subprocess.CalledProcessError as e:
        die("gnuplot failed (%s)" % e)


def plot_rules(out, tmp):
    series = [("drop_%s_pps", "mbfw (mbvisor)"), ("nft_drop_%s_pps", "nftables, linear rules"),
              ("nft_set_drop_%s_pps", "nftables, one rule and a set")]
    files = []
    for i, (pat, title) in enumerate(series):
        path = os.path.join(tmp, "s%d.dat" % i)
        with open(path, "w") as f:
            for n, s in SIZES:
                k = pat % s
                if k in out:
                    f.write("%d %g %g %g\n" % (n, out[k], out[k + "_min"], out[k + "_max"]))
        if os.path.getsize(path):
            files.append((path, title))
    if not files:
        return None
    png = os.path.join(IMG, "bench-rules.png")
    lines = [
        'set terminal pngcairo size 900,560 font "Sans,11"',
        'set output "%s"' % png,
        'set title "Frames dropped per second at the bridge vs. number of rules"',
        "set logscale xy",
        'set xlabel "rules (or set elements)"',
        'set ylabel "frames per second (%s)"' % out.get("_clock_label", ""),
        "set xrange [0.5:200000]",
        "set grid",
        "set key bottom left box opaque",
        "set format y \"%.0s%c\"",
        "set format x \"%.0s%c\"",
    ]
    plots = []
    for i, (path, title) in enumerate(files):
        plots.append('"%s" using 1:2:3:4 with yerrorlines lw 2 pt %d title "%s"' % (path, 5 + 2 * i, title))
    for key, title, style in (("limit_pps", "limit: drop everything at the hook", 'dt 2 lw 2 lc "dark-orange"'),
                              ("bridge_pps", "bare bridge, forwarding", 'dt 3 lw 2 lc "gray30"')):
        if key in out:
            plots.append('%g with lines %s title "%s"' % (out[key], style, title))
    lines.append("plot " + ", \\\n     ".join(plots))
    gnuplot("\n".join(lines) + "\n")
    return png


def plot_control(out, tmp):
    rows = []
    for s in ("10k", "100k"):
        a = out.get("mbadm_batch_%s_rules_per_s" % s)
        b = out.get("nft_set_add_%s_elements_per_s" % s)
        if a is not None and b is not None:
            rows.append((s, a, b))
    if not rows:
        return None
    path = os.path.join(tmp, "control.dat")
    with open(path, "w") as f:
        for s, a, b in rows:
            f.write('"%s" %g %g\n' % (s, a, b))
    png = os.path.join(IMG, "bench-control.png")
    gnuplot("\n".join([
        'set terminal pngcairo size 760,460 font "Sans,11"',
        'set output "%s"' % png,
        'set title "Rules installed per second, one batch"',
        "set style data histogram",
        "set style histogram clustered gap 1",
        "set style fill solid 0.8 border -1",
        "set boxwidth 0.9",
        "set yrange [0:*]",
        "set grid ytics",
        'set ylabel "per second (%s)"' % out.get("_clock_label", ""),
        'set xlabel "rules in the batch"',
        "set key below",
        "set xrange [-0.6:1.6]",
        "set format y \"%.0s%c\"",
        'plot "%s" using 2:xtic(1) title "mbadm batch (mbvisor)", "" using 3 title "nft -f add element (set)"' % path,
    ]) + "\n")
    return png


def markdown(out, rows, ratios, targets, meta, pngs):
    icount = meta.get("clock", "").startswith("icount")
    md = [BEGIN, "", "*Generated by `bench/report.py` from the run of %s; do not edit by hand.*"
          % meta.get("date", "?"), ""]
    md += ["### The run", "", "| | |", "|---|---|"]
    for k, label in (("date", "date"), ("git", "commit"), ("clock", "clock"),
                     ("rounds", "rounds"), ("secs_per_sample", "seconds per sample"),
                     ("pktgen_burst", "pktgen burst"), ("host_cpu", "host CPU"),
                     ("host_cpus", "host CPUs"), ("host_kernel", "host kernel"),
                     ("host_load_before", "host load average before"),
                     ("host_load_after", "host load average after"), ("qemu", "QEMU"),
                     ("guest_kernel", "guest kernel"), ("guest_cpu", "guest CPU"),
                     ("guest_cpus", "guest CPUs"), ("guest_mem_kib", "guest memory (KiB)"),
                     ("guest_mitigations", "guest Spectre v2 / retbleed"),
                     ("nft_version", "nftables"), ("irq_frames", "interrupts: frames per flood"),
                     ("irq_pps", "interrupts: frames per second (pktgen delay)"),
                     ("irq_nested_boot_secs", "interrupts: nested boot until ready (s, guest clock)"),
                     ("iperf3_version", "iperf3"), ("ab_version", "ab"),
                     ("vm_throughput", "throughput with the middlebox VM"),
                     ("tcp_secs", "throughput: seconds per iperf3 sample"),
                     ("http_secs", "throughput: seconds per ab sample"),
                     ("wall_secs", "wall time of the run (s)")):
        if k in meta:
            md.append("| %s | %s |" % (label, meta[k].replace("|", "/")))
    md.append("")
    for exp in list(FIGURES) + sorted(set(rows) - set(FIGURES)):
        if exp not in rows:
            continue
        # With -icount shift=2 a guest second is 250M instructions, so a
        # rate says how many instructions one frame cost (all included).
        insns = icount and any(r[0].endswith("_pps") for r in rows[exp])
        md += ["### %s" % TITLES.get(exp, exp), "",
               "| figure | what | median | min | max | rounds |%s" % (" instructions per frame |" if insns else ""),
               "|---|---|---:|---:|---:|---:|%s" % ("---:|" if insns else "")]
        for name, what, med, lo, hi, n in rows[exp]:
            extra = ""
            if insns:
                extra = " %s |" % ("{:,}".format(int(round(250e6 / med))) if name.endswith("_pps") else "")
            md.append("| `%s` | %s | %s | %s | %s | %d |%s" % (name, what, fmt(med), fmt(lo), fmt(hi), n, extra))
        md.append("")
        if exp in ratios:
            md += ["Ratios (per round, then the median and spread of those):", "",
                   "| ratio | median | min | max | target | |", "|---|---:|---:|---:|---:|---|"]
            for key, target, med, lo, hi, n in ratios[exp]:
                if target is None:
                    t, v = "", ""
                else:
                    t = target_text(target).replace(">=", "≥").replace("<=", "≤")
                    v = "**missed**"
                    if med is not None and target_met(target, med):
                        v = "met"
                if med is None:
                    md.append("| `%s` | n/a (denominator 0 in every round) | | | %s | %s |" % (key, t, v))
                    continue
                md.append("| `%s` | %s | %s | %s | %s | %s |" % (key, fmt(med), fmt(lo), fmt(hi), t, v))
            md.append("")
    for png in pngs:
        if png:
            rel = os.path.relpath(png, os.path.dirname(DOC))
            md += ["![%s](%s)" % (os.path.basename(png), rel), ""]
    md.append(END)
    return "\n".join(md)


def main():
    if len(sys.argv) != 2 or sys.argv[1] in ("-h", "--help"):
        sys.stderr.write(__doc__)
        sys.exit(0 if len(sys.argv) == 2 else 2)
    run = sys.argv[1]
    samples, exps = read_samples(run)
    meta = read_meta(run)
    out, rows, ratios, targets = compute(samples, exps)
    clock = meta.get("clock", "")
    out["_clock_label"] = "icount guest time" if clock.startswith("icount") else "wall clock"

    os.makedirs(IMG, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        pngs = [plot_rules(out, tmp), plot_control(out, tmp)]
    del out["_clock_label"]

    result = {k: (float("%.6g" % v) if abs(v) < 100 else round(v, 1)) for k, v in out.items()}
    meta["targets"] = targets
    result["meta"] = meta
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    with open(RESULTS + ".tmp", "w") as f:
        json.dump(result, f, indent=1, sort_keys=False)
        f.write("\n")
    os.replace(RESULTS + ".tmp", RESULTS)

    try:
        with open(DOC) as f:
            doc = f.read()
    except OSError as e:
        die("cannot read %s: %s" % (DOC, e))
    a, b = doc.find(BEGIN), doc.find(END)
    if a < 0 or b < a:
        die("%s has no %s ... %s block" % (DOC, BEGIN, END))
    doc = doc[:a] + markdown(out, rows, ratios, targets, meta, pngs) + doc[b + len(END):]
    with open(DOC + ".tmp", "w") as f:
        f.write(doc)
    os.replace(DOC + ".tmp", DOC)
    for key, t in targets.items():
        if key not in out:
            print("%-45s %8s  target %-7s %s" % (key, "n/a", t["target"], t.get("note", "MISSED")))
            continue
        print("%-45s %8.4f  target %-7s %s" % (key, out[key], t["target"], "met" if t["met"] else "MISSED"))
    print("wrote %s, %s and %s" % (os.path.relpath(RESULTS, ROOT), os.path.relpath(DOC, ROOT),
                                   ", ".join(os.path.relpath(p, ROOT) for p in pngs if p)))


if __name__ == "__main__":
    main()
