#!/usr/bin/env python3
"""Turns one loadtest/run.sh result folder into summary.json, summary.md and plot.png.

Percentiles of repeated points (rounds) come from the merged histograms the load generator
writes (``histogram``: [value_us, count] pairs), never from averaging percentiles.
Usage: report.py RESULT_DIR
"""

import datetime
import glob
import json
import math
import os
import sys

# A point meets the objective when p99 <= SLO, at most 0.1% of requests failed and the server
# kept up (answered at least 95% of the offered rate).
MAX_ERROR_RATE = 0.001
MIN_ACHIEVED = 0.95


def percentile(hist, total, q):
    """Smallest recorded value with at least q of the samples at or below it (HdrHistogram's rule)."""
    if total == 0:
        return None
    need = max(1, math.ceil(q * total))
    seen = 0
    for value, count in hist:
        seen += count
        if seen >= need:
            return value
    return hist[-1][0]


def merge(runs):
    """One point from several runs of the same target and rate."""
    hist = {}
    for r in runs:
        for value, count in r["histogram"]:
            hist[value] = hist.get(value, 0) + count
    hist = sorted(hist.items())
    ok = sum(c for _, c in hist)
    requests = sum(r["requests"] for r in runs)
    errors = sum(r["errors_total"] for r in runs)
    by_kind = {}
    for r in runs:
        e = r["errors"]
        for status, n in e["status"].items():
            by_kind[status] = by_kind.get(status, 0) + n
        for kind in ("connect", "io", "timeout", "unsent"):
            if e[kind]:
                by_kind[kind] = by_kind.get(kind, 0) + e[kind]
    pct = {name: percentile(hist, ok, q) for name, q in
           (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p99_9", 0.999), ("p99_99", 0.9999))}
    return {
        "rate": runs[0]["rate_requested"],
        "achieved": sum(r["rate_achieved"] for r in runs) / len(runs),
        "runs": len(runs),
        "requests": requests,
        "ok": ok,
        "errors": errors,
        "error_rate": errors / requests if requests else 0.0,
        "errors_by_kind": by_kind,
        **pct,
        "max": hist[-1][0] if hist else None,
        # Not mergeable as a percentile; the worst round's value flags a generator that fell behind.
        "gen_lag_p99": max((r.get("send_lag_us", {}).get("p99", 0) for r in runs), default=0),
        "tls": runs[0]["tls"],
        "connections": runs[0]["connections"],
    }


def passes(point, slo_us):
    return (point["p99"] is not None and point["p99"] <= slo_us
            and point["error_rate"] <= MAX_ERROR_RATE
            and point["achieved"] >= MIN_ACHIEVED * point["rate"])


def noisy(points, slo_us):
    """Offered rates that failed the objective below a rate that met it: with one core shared by
    the servers and other work, a stall can fail a light point. Such a curve's knee is unreliable."""
    passing = [p["rate"] for p in points if passes(p, slo_us)]
    top = max(passing, default=0)
    return [p["rate"] for p in points if p["rate"] < top and not passes(p, slo_us)]


def knee(points, slo_us):
    """The achieved rate of the highest passing point, and whether any point above it failed
    (if none did, the sweep ended first and the figure is a lower bound). The highest passing
    point rather than the last one before the first failure: on a shared machine one noisy low
    point should not zero a figure; merged rounds keep a lucky high point from standing alone."""
    passing = [p for p in points if passes(p, slo_us)]
    if not passing:
        return 0.0, bool(points)
    best = max(passing, key=lambda p: p["rate"])
    reached = any(p["rate"] > best["rate"] for p in points)
    return round(best["achieved"], 1), reached


def load_points(out):
    groups = {}
    for path in sorted(glob.glob(os.path.join(out, "runs", "*.json"))):
        r = json.load(open(path))
        if r["model"] != "open" or r["label"].startswith(("calibrate", "callgrind")):
            continue
        groups.setdefault(r["label"], {}).setdefault(r["rate_requested"], []).append(r)
    return {t: sorted((merge(rs) for rs in by_rate.values()), key=lambda p: p["rate"])
            for t, by_rate in groups.items()}


def ratio(a, b):
    return round(a / b, 3) if a is not None and b else None


def fmt_us(v):
    if v is None:
        return "-"
    return f"{v / 1000:.2f} ms" if v >= 1000 else f"{v} us"


def points_table(targets):
    lines = ["| target | offered/s | achieved/s | p50 | p90 | p99 | p99.9 | max | errors | generator lag p99 |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|"]
    for t, points in targets.items():
        for p in points:
            errs = ", ".join(f"{k}: {v}" for k, v in sorted(p["errors_by_kind"].items())) or "0"
            lines.append(f"| {t} | {p['rate']:g} | {p['achieved']:.0f} | {fmt_us(p['p50'])} | "
                         f"{fmt_us(p['p90'])} | {fmt_us(p['p99'])} | {fmt_us(p['p99_9'])} | "
                         f"{fmt_us(p['max'])} | {errs} ({p['error_rate'] * 100:.2f}%) | "
                         f"{fmt_us(p.get('gen_lag_p99'))} |")
    return lines


def plot(out, targets, slo_ms, title):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is missing: no plot.png (apt-get install python3-matplotlib)", file=sys.stderr)
        return None
    fig, (lat, thr) = plt.subplots(1, 2, figsize=(13, 5.2))
    colors = {"direct": "tab:gray", "haproxy": "tab:blue", "nginx": "tab:green", "esb": "tab:red"}
    for t, points in targets.items():
        c = colors.get(t)
        rates = [p["rate"] for p in points]
        for key, style, name in (("p50", ":", "p50"), ("p99", "-", "p99"), ("p99_9", "--", "p99.9")):
            ys = [p[key] / 1000 if p[key] is not None else float("nan") for p in points]
            lat.plot(rates, ys, style, marker="o", markersize=3, color=c, label=f"{t} {name}")
        thr.plot(rates, [p["achieved"] for p in points], "-", marker="o", markersize=3, color=c, label=t)
        bad = [(p["rate"], p["achieved"]) for p in points if p["error_rate"] > MAX_ERROR_RATE]
        if bad:
            thr.scatter(*zip(*bad), marker="x", s=60, color=c, label=f"{t}: errors > 0.1%")
    lat.axhline(slo_ms, color="black", linewidth=0.8, linestyle="-.", label=f"SLO p99 {slo_ms:g} ms")
    lat.set_yscale("log")
    lat.set_xlabel("offered rate (requests/s, open model)")
    lat.set_ylabel("latency from intended send time (ms)")
    lat.set_title("latency percentiles vs offered rate")
    lat.grid(True, which="both", alpha=0.3)
    lat.legend(fontsize=7, ncol=2)
    top = max((p["rate"] for ps in targets.values() for p in ps), default=1)
    thr.plot([0, top], [0, top], color="black", linewidth=0.6, linestyle=":", label="achieved = offered")
    thr.set_xlabel("offered rate (requests/s)")
    thr.set_ylabel("achieved rate (responses/s)")
    thr.set_title("throughput")
    thr.grid(True, alpha=0.3)
    thr.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = os.path.join(out, "plot.png")
    fig.savefig(path, dpi=110)
    return path


def header(meta):
    m = meta.get("machine", {})
    return [f"- date: {meta['date']}",
            f"- machine: {m.get('cpu')}, {m.get('cores')} cores, {m.get('mem_gib')} GiB, Linux {m.get('kernel')}; "
            f"servers pinned to core {m.get('server_core')}, load generator to core {m.get('loadgen_core')}",
            f"- peers: {m.get('haproxy')}; {m.get('nginx')}; {m.get('openssl')}"]


def warm(out, meta):
    slo_ms = float(meta["slo_p99_ms"])
    slo_us = slo_ms * 1000
    targets = load_points(out)
    order = [t for t in ("direct", "haproxy", "nginx", "esb") if t in targets]
    targets = {t: targets[t] for t in order}
    per_target, at_slo = {}, {}
    for t, points in targets.items():
        rps, reached = knee(points, slo_us)
        at_slo[t] = rps
        per_target[t] = {"rps_at_slo": rps, "knee_reached": reached,
                         "failed_below_knee": noisy(points, slo_us), "points": points}
    # Added latency: p99 above direct's at the common rate nearest half of direct's knee.
    added, ref_rate = {}, None
    if "direct" in targets:
        common = set.intersection(*(set(p["rate"] for p in ps) for ps in targets.values()))
        if common:
            # Half of direct's knee; with no knee (nothing met the objective), the lightest load.
            goal = at_slo["direct"] / 2 if at_slo.get("direct") else 0
            ref_rate = min(common, key=lambda r: abs(r - goal))
            base = next(p for p in targets["direct"] if p["rate"] == ref_rate)["p99"]
            for t in targets:
                if t != "direct":
                    p99 = next(p for p in targets[t] if p["rate"] == ref_rate)["p99"]
                    added[t] = p99 - base if p99 is not None and base is not None else None
    blocked = meta.get("esb_blocked") or None
    figures = {
        "slo_p99_ms": slo_ms,
        "esb_rps_at_slo": at_slo.get("esb"),
        "haproxy_rps_at_slo": at_slo.get("haproxy"),
        "nginx_rps_at_slo": at_slo.get("nginx"),
        "direct_rps_at_slo": at_slo.get("direct"),
        "esb_vs_haproxy": ratio(at_slo.get("esb"), at_slo.get("haproxy")),
        "esb_vs_nginx": ratio(at_slo.get("esb"), at_slo.get("nginx")),
        "esb_vs_direct": ratio(at_slo.get("esb"), at_slo.get("direct")),
        "haproxy_vs_direct": ratio(at_slo.get("haproxy"), at_slo.get("direct")),
        "nginx_vs_direct": ratio(at_slo.get("nginx"), at_slo.get("direct")),
        "esb_added_p99_us": added.get("esb"),
        "haproxy_added_p99_us": added.get("haproxy"),
        "nginx_added_p99_us": added.get("nginx"),
        "added_p99_at_rps": ref_rate,
    }
    scenario = meta["scenario"]
    summary = {"scenario": scenario, "status": "ok" if not blocked else "partial",
               "esb_blocked": blocked, "figures": figures, "settings": meta, "targets": per_target}
    if scenario == "docker-warm":
        proxy = (" through the engine's docker-proxy" if meta.get("docker_proxy") == "yes" else "")
        md = [f"# docker-warm: {meta['envs']} warm {meta.get('image')} containers (runtime: docker, "
              f"started by esb), one connection each", ""]
        md += header(meta)
        md += [f"- containers (esb-rie + echo, and docker-proxy) are started by the Docker engine "
               f"{meta.get('docker_server')} for esb: they are **not** pinned to core "
               f"{meta.get('machine', {}).get('server_core')} nor reniced, and may run on either core; "
               f"their RIE ports are published on 127.0.0.1{proxy}; esb.owner={meta.get('docker_owner')}"]
        direct = "direct is plain HTTP to the containers' published RIE ports"
    else:
        md = [f"# warm: {meta['envs']} warm esb-rie+echo environments, one connection each", ""]
        md += header(meta)
        direct = "direct is plain HTTP to RIE"
    md += [f"- open model, {meta['rounds']} interleaved round(s) per rate, {meta['duration_s']} s measured "
           f"after {meta['warmup_s']} s warm-up, {meta['envs']} keep-alive connections; TLS (keep-alive, "
           f"one handshake per connection) on haproxy, nginx and esb; {direct}",
           f"- objective: p99 <= {slo_ms:g} ms, errors <= {MAX_ERROR_RATE * 100:g}%, achieved >= "
           f"{MIN_ACHIEVED * 100:g}% of offered", ""]
    if blocked:
        md += [f"**esb: blocked** - {blocked}", ""]
    md += ["| figure | value |", "|---|---:|"]
    md += [f"| {k} | {'-' if v is None else v} |" for k, v in figures.items()]
    md += ["", "Knee not reached (the sweep ended first, the figure is a lower bound): " +
           (", ".join(t for t, v in per_target.items() if not v["knee_reached"]) or "none"), ""]
    shaky = {t: v["failed_below_knee"] for t, v in per_target.items() if v["failed_below_knee"]}
    if shaky:
        md += ["**Noisy run**: these targets failed the objective at rates below their knee, so "
               "stalls from outside the measured path decided some points; compare targets within "
               "this run only, and prefer a quieter machine or more rounds: " +
               "; ".join(f"{t} at {', '.join(f'{r:g}' for r in rs)}/s" for t, rs in shaky.items()), ""]
    summary["noisy"] = bool(shaky)
    md += points_table(targets)
    title = f"{scenario}, {meta['envs']} environments, {meta['date']}, {meta.get('machine', {}).get('cpu')}"
    return summary, md, plot(out, targets, slo_ms, title)


def capacity(out, meta):
    slo_ms = float(meta["slo_p99_ms"])
    targets = load_points(out)
    t = meta["target"]
    points = targets.get(t, [])
    rps, reached = knee(points, slo_ms * 1000)
    envs = int(meta["envs"])
    cap = float(meta["calibrated_max_rps"])
    per_env = rps / envs if envs else 0
    service_ms = envs / cap * 1000 if cap else None
    figures = {
        "target": t, "sleep_ms": int(meta["sleep_ms"]), "slo_p99_ms": slo_ms, "environments": envs,
        "rps_at_slo": rps, "knee_reached": reached, "per_env_rps_at_slo": round(per_env, 1),
        "closed_model_max_rps": cap, "service_time_ms": round(service_ms, 3) if service_ms else None,
        "utilisation_at_slo": round(rps / cap, 3) if cap else None,
    }
    sizing = {str(x): (math.ceil(x / per_env) if per_env else None) for x in (100, 500, 1000, 2000, 5000)}
    figures["environments_needed"] = sizing
    rule = (f"Sizing rule ({t}, sleep_ms={meta['sleep_ms']}, p99 <= {slo_ms:g} ms): one environment "
            f"sustains {per_env:.0f} req/s, so a rate of R req/s needs ceil(R / {per_env:.0f}) environments "
            f"(service time {figures['service_time_ms']} ms, knee at {figures['utilisation_at_slo']} of the "
            f"closed-model maximum).") if per_env else "No rate met the objective: no sizing rule."
    summary = {"scenario": "capacity", "status": "ok", "esb_blocked": meta.get("esb_blocked") or None,
               "figures": figures, "sizing_rule": rule, "settings": meta, "targets": {t: {"points": points}}}
    md = [f"# capacity: {t}, echo sleep_ms={meta['sleep_ms']}, {envs} environments", ""] + header(meta)
    if meta.get("esb_blocked") and t != "esb":
        md += ["", f"**esb blocked** ({meta['esb_blocked']}): this sweep measured the direct path instead."]
    md += ["", rule, "", "| rate needed | environments |", "|---:|---:|"]
    md += [f"| {k}/s | {v} |" for k, v in sizing.items()]
    md += ["", "| figure | value |", "|---|---:|"]
    md += [f"| {k} | {v} |" for k, v in figures.items() if k != "environments_needed"]
    md += [""] + points_table({t: points})
    title = f"capacity, {t}, sleep_ms={meta['sleep_ms']}, {envs} environments, {meta['date']}"
    return summary, md, plot(out, {t: points}, slo_ms, title)


def cold_storm(out, meta):
    status = meta.get("status")
    figures = {"time_to_last_response_ms": None, "environments_started": None, "errors": None,
               "max_capacity": int(meta["max_capacity"]), "requests": int(meta["requests"])}
    path = os.path.join(out, "runs", "cold-storm.json")
    pools = None
    if status == "ok" and os.path.exists(path):
        r = json.load(open(path))
        figures["time_to_last_response_ms"] = round(r["time_to_last_response_ms"], 1)
        figures["errors"] = r["errors_total"]
        figures["errors_by_status"] = r["errors"]["status"]
        figures["p50_ms"] = r["latency_us"]["p50"] / 1000
        figures["p99_ms"] = r["latency_us"]["p99"] / 1000
        try:
            pools = json.load(open(os.path.join(out, "logs", "pools-after.json")))
            figures.update(pool_figures(pools))
        except (OSError, ValueError):
            pass
    summary = {"scenario": "cold-storm", "status": status, "blocked_reason": meta.get("blocked_reason") or None,
               "figures": figures, "pools_after": pools, "settings": meta}
    md = ["# cold-storm: 100 concurrent requests to a cold function, max_capacity 10", ""] + header(meta)
    if status != "ok":
        md += ["", f"**blocked**: {meta.get('blocked_reason')}. No figures were measured."]
    md += ["", "| figure | value |", "|---|---:|"] + [f"| {k} | {v} |" for k, v in figures.items()]
    return summary, md, None


def pool_figures(pools):
    """From esb's GET /admin/pools: {"functions": [{"live", "counters": {"cold_starts", ...}}]}."""
    functions = pools.get("functions", []) if isinstance(pools, dict) else []
    total = lambda key: sum(f.get("counters", {}).get(key, 0) for f in functions)
    return {
        "environments_started": total("cold_starts"),
        "environments_live": sum(f.get("live", 0) for f in functions),
        "start_failures": total("start_failures"),
        "pool_rejections": total("rejections"),
        "pool_waits": total("waits"),
    }


def callgrind(out, meta):
    figures, rows = {}, []
    path = os.path.join(out, "callgrind.txt")
    for line in open(path) if os.path.exists(path) else []:
        name, i1, i2, m = line.split()
        per = (int(i2) - int(i1)) / int(m)
        figures[f"{name.replace('-', '_')}_instructions_per_request"] = round(per)
        rows.append(f"| {name} | {int(i1):,} | {int(i2):,} | {m} | {per:,.0f} |")
    figures["esb_vs_haproxy_instructions"] = ratio(figures.get("esb_instructions_per_request"),
                                                   figures.get("haproxy_instructions_per_request"))
    figures["esb_vs_nginx_instructions"] = ratio(figures.get("esb_instructions_per_request"),
                                                 figures.get("nginx_instructions_per_request"))
    if "esb_instructions_per_request" in figures and "esb_noauth_instructions_per_request" in figures:
        figures["esb_token_check_instructions"] = (figures["esb_instructions_per_request"]
                                                   - figures["esb_noauth_instructions_per_request"])
    blocked = meta.get("esb_blocked") or None
    summary = {"scenario": "callgrind", "status": "ok" if not blocked else "partial", "esb_blocked": blocked,
               "figures": figures, "settings": meta}
    md = ["# callgrind: instructions per request through each gateway", ""] + header(meta)
    md += ["- one keep-alive TLS connection, the same request each time; counters zeroed after a warm-up; "
           "per request = (I(2M) - I(M)) / M, so start-up, the handshake and connection setup cancel out", ""]
    if blocked:
        md += [f"**esb: blocked** - {blocked}", ""]
    md += ["| gateway | I(M) | I(2M) | M | instructions/request |", "|---|---:|---:|---:|---:|"] + rows
    return summary, md, None


def skipped(out, meta):
    summary = {"scenario": meta["scenario"], "status": meta.get("status"),
               "blocked_reason": meta.get("blocked_reason"), "figures": {}, "settings": meta}
    md = [f"# {meta['scenario']}: {meta.get('status')}", ""] + header(meta) + ["", meta.get("blocked_reason", "")]
    return summary, md, None


def docker_warm(out, meta):
    """The warm comparison with containers; skipped (no engine) or failed runs carry no figures."""
    if meta.get("status") in ("skipped", "failed"):
        return skipped(out, meta)
    return warm(out, meta)


def main():
    out = sys.argv[1]
    meta = json.load(open(os.path.join(out, "meta.json")))
    meta["date"] = datetime.datetime.fromtimestamp(os.path.getmtime(os.path.join(out, "meta.json")),
                                                   datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    kind = {"warm": warm, "capacity": capacity, "cold-storm": cold_storm, "callgrind": callgrind,
            "docker-warm": docker_warm}[meta["scenario"]]
    summary, md, png = kind(out, meta)
    summary["date"] = meta["date"]
    summary["machine"] = meta.get("machine")
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
        f.write("\n")
    if png:
        md += ["", "![latency and throughput against offered rate](plot.png)"]
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
