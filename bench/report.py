#!/usr/bin/python3
"""Records and summarizes the measurements of bench/run.sh.

  report.py record --results FILE --scenario S --proxy P --round R --workers N
                   --cpu-ticks T --hz HZ --wall SECONDS (--wrk OUT | --stime OUT | --longpoll OUT)
      parses one tool output and appends one JSON line to FILE.
  report.py summarize --results FILE --md OUT.md --json OUT.json [--settings JSON]
      medians over rounds per scenario and proxy, the ratios mailgate/nginx and
      mailgate/haproxy and the targets of issue 8; prints the Markdown table.

Debian python3, standard library only.
"""
import argparse
import json
import re
import statistics
import sys

SCENARIOS = {
    "a": "keep-alive GET 1 KiB, 64 conns",
    "b": "new TLS connection per request (resumed), GET 1 KiB",
    "c": "keep-alive POST 64 KiB, 64 conns",
    "d": "keep-alive GET 1 MiB, 16 conns",
    "e": "held ActiveSync long-polls (KiB each)",
    "f": "full TLS handshake + GET 1 KiB (openssl s_time -new)",
    "g": "a with the policy rule set",
}
PROXIES = ["mailgate", "nginx", "haproxy"]
CADDY_D_US = 926.0  # ../shared/PERF-BASELINE.md: Caddy, scenario d, µs per 1 MiB request
SATURATED = 0.95


def seconds(text):
    """wrk durations: 812.00us, 1.23ms, 2.00s, 1.50m."""
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if not m:
        return None
    scale = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}[m.group(2)]
    return float(m.group(1)) * scale


def parse_wrk(text):
    out = {"errors": 0}
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", text)
    if m:
        out["requests"] = int(m.group(1))
        out["duration_s"] = seconds(m.group(2) + m.group(3))
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if m:
        out["rps"] = float(m.group(1))
    for pct in ("50", "99"):
        m = re.search(rf"^\s+{pct}%\s+(\S+)", text, re.M)
        if m and seconds(m.group(1)) is not None:
            out[f"p{pct}_ms"] = round(seconds(m.group(1)) * 1e3, 3)
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        out["socket_errors"] = {k: int(v) for k, v in zip(("connect", "read", "write", "timeout"), m.groups())}
        out["errors"] += sum(out["socket_errors"].values())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if m:
        out["non2xx"] = int(m.group(1))
        out["errors"] += int(m.group(1))
    return out


def parse_stime(text):
    out = {"errors": 0}
    m = re.search(r"(\d+) connections in (\d+) real seconds", text)
    if m:
        out["requests"] = int(m.group(1))
        out["duration_s"] = float(m.group(2))
        if out["duration_s"]:
            out["rps"] = out["requests"] / out["duration_s"]
    # s_time reports no statuses; a failed handshake ends the run with an error message.
    if re.search(r"error|ERROR", text):
        out["errors"] += 1
    return out


def record(args):
    with open(args.output, errors="replace") as f:
        text = f.read()
    rec = {"scenario": args.scenario, "proxy": args.proxy, "round": args.round,
           "workers": args.workers}
    if args.kind == "longpoll":
        try:
            rec.update(json.loads(text.strip().splitlines()[-1]))
        except (ValueError, IndexError):
            rec["errors"] = args.n or 1
            rec["failed"] = "no result from longpoll_client.py"
    else:
        rec.update(parse_wrk(text) if args.kind == "wrk" else parse_stime(text))
        cpu_s = args.cpu_ticks / args.hz
        rec["cpu_s"] = round(cpu_s, 3)
        rec["wall_s"] = round(args.wall, 3)
        # The load generator's own duration is the window the proxy could have been busy in.
        window = rec.get("duration_s") or args.wall
        rec["busy"] = round(cpu_s / (window * args.workers), 3) if window else None
        if rec.get("requests"):
            rec["us_per_req"] = round(cpu_s * 1e6 / rec["requests"], 2)
        else:
            rec["errors"] = max(rec.get("errors", 0), 1)
            rec["failed"] = "no requests completed"
    with open(args.results, "a") as f:
        f.write(json.dumps(rec) + "\n")


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(v, digits=1):
    if v is None:
        return "–"
    if isinstance(v, float) and v >= 1000:
        return f"{v:,.0f}"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def ratio(a, b):
    return round(a / b, 3) if a is not None and b else None


def summarize(args):
    records = []
    with open(args.results) as f:
        for line in f:
            if line.strip():
                records.append(json.loads(line))
    settings = json.loads(args.settings) if args.settings else {}
    scenarios = [s for s in SCENARIOS if any(r["scenario"] == s for r in records)]
    proxies = [p for p in PROXIES if any(r["proxy"] == p for r in records)]

    summary = {}
    for s in scenarios:
        summary[s] = {"title": SCENARIOS[s], "proxies": {}}
        for p in proxies:
            rs = [r for r in records if r["scenario"] == s and r["proxy"] == p]
            if not rs:
                continue
            m = {"rounds": len(rs), "errors": sum(r.get("errors", 0) for r in rs)}
            if s == "e":
                m["kib_per_held"] = median(r.get("kib_per_held") for r in rs)
                m["held"] = median(r.get("held") for r in rs)
                m["open_seconds"] = median(r.get("open_seconds") for r in rs)
                m["primary"] = m["kib_per_held"]
            else:
                for key in ("us_per_req", "rps", "p50_ms", "p99_ms", "busy"):
                    m[key] = median(r.get(key) for r in rs)
                m["saturated_rounds"] = sum(1 for r in rs if (r.get("busy") or 0) >= SATURATED)
                m["primary"] = m["us_per_req"]
            summary[s]["proxies"][p] = m
        prim = {p: summary[s]["proxies"].get(p, {}).get("primary") for p in proxies}
        summary[s]["ratios"] = {
            "mailgate/nginx": ratio(prim.get("mailgate"), prim.get("nginx")),
            "mailgate/haproxy": ratio(prim.get("mailgate"), prim.get("haproxy")),
        }

    # Targets of issue 8 (ratios within one run).
    def prim(s, p):
        return summary.get(s, {}).get("proxies", {}).get(p, {}).get("primary")

    def better(s, extra=()):
        vals = [v for v in (prim(s, "nginx"), prim(s, "haproxy"), *extra) if v]
        return min(vals) if vals else None

    for s in scenarios:
        mg = prim(s, "mailgate")
        checks = []
        if s in ("a", "c", "g"):
            checks.append(("≤ 0.8× better of nginx/HAProxy", better(s), 0.8))
        if s == "d":
            checks.append(("≤ 0.8× best of nginx/HAProxy/Caddy 926", better(s, (CADDY_D_US,)), 0.8))
        if s in ("b", "f"):
            checks.append(("≤ 1.0× better of nginx/HAProxy", better(s), 1.0))
        if s == "e":
            checks.append(("≤ 0.5× HAProxy", prim(s, "haproxy"), 0.5))
        if s == "g":
            checks.append(("≤ 1.1× mailgate a", prim("a", "mailgate"), 1.1))
        out = []
        for label, ref, limit in checks:
            r = ratio(mg, ref)
            out.append({"target": label, "ratio": r, "limit": limit,
                        "met": None if r is None else r <= limit})
        summary[s]["targets"] = out

    lines = []
    lines.append("| scenario | metric | " + " | ".join(proxies) +
                 " | mailgate/nginx | mailgate/haproxy | target (ratio) |")
    lines.append("|---|---|" + "---:|" * len(proxies) + "---:|---:|---|")
    for s in scenarios:
        metric = "KiB / held long-poll" if s == "e" else "proxy CPU µs / request"
        cells = [fmt(summary[s]["proxies"].get(p, {}).get("primary")) for p in proxies]
        rt = summary[s]["ratios"]
        targets = "; ".join(
            f"{t['target']}: {fmt(t['ratio'], 2)} {'met' if t['met'] else ('MISSED' if t['met'] is False else '')}".strip()
            for t in summary[s]["targets"])
        lines.append(f"| {s} {SCENARIOS[s]} | {metric} | " + " | ".join(cells) +
                     f" | {fmt(rt['mailgate/nginx'], 2)} | {fmt(rt['mailgate/haproxy'], 2)} | {targets} |")
    lines.append("")
    lines.append("| scenario | proxy | µs/req | req/s | p50 ms | p99 ms | errors | proxy core busy | KiB/held |")
    lines.append("|---|---|---:|---:|---:|---:|---:|---|---:|")
    for s in scenarios:
        for p in proxies:
            m = summary[s]["proxies"].get(p)
            if not m:
                continue
            if s == "e":
                lines.append(f"| {s} | {p} | – | – | – | – | {m['errors']} | – | "
                             f"{fmt(m['kib_per_held'])} ({fmt(m['held'], 0)} held) |")
                continue
            busy = m.get("busy")
            sat = f"{fmt(busy, 2)} ({'saturated' if busy is not None and busy >= SATURATED else 'not saturated'}"
            sat += f", {m['saturated_rounds']}/{m['rounds']} rounds)" if m["rounds"] > 1 else ")"
            lines.append(f"| {s} | {p} | {fmt(m['us_per_req'])} | {fmt(m['rps'], 0)} | "
                         f"{fmt(m['p50_ms'], 2)} | {fmt(m['p99_ms'], 2)} | {m['errors']} | {sat} | – |")
    header = []
    if settings:
        header.append("Settings: " + ", ".join(f"{k}={v}" for k, v in settings.items()) + ".")
        header.append("Medians over rounds; errors are summed over rounds. Machine: machine.txt.")
        header.append("")
    md = "\n".join(header + lines) + "\n"
    with open(args.md, "w") as f:
        f.write(md)
    with open(args.json, "w") as f:
        json.dump({"settings": settings, "summary": summary, "runs": records}, f, indent=1)
        f.write("\n")
    sys.stdout.write(md)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("record")
    r.add_argument("--results", required=True)
    r.add_argument("--scenario", required=True)
    r.add_argument("--proxy", required=True)
    r.add_argument("--round", type=int, required=True)
    r.add_argument("--workers", type=int, default=1)
    r.add_argument("--cpu-ticks", type=int, default=0)
    r.add_argument("--hz", type=int, default=100)
    r.add_argument("--wall", type=float, default=0.0)
    r.add_argument("--n", type=int, default=0)
    g = r.add_mutually_exclusive_group(required=True)
    g.add_argument("--wrk", dest="output")
    g.add_argument("--stime", dest="output")
    g.add_argument("--longpoll", dest="output")
    s = sub.add_parser("summarize")
    s.add_argument("--results", required=True)
    s.add_argument("--md", required=True)
    s.add_argument("--json", required=True)
    s.add_argument("--settings")
    args = ap.parse_args()
    if args.cmd == "record":
        args.kind = next(k for k in ("wrk", "stime", "longpoll") if f"--{k}" in sys.argv)
        record(args)
    else:
        summarize(args)


if __name__ == "__main__":
    main()
