#!/usr/bin/env python3
"""Summarise bench/http/run.sh results: median over rounds per (N, server, endpoint), ratios."""
import csv
import statistics
import sys
from collections import defaultdict

rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
rss = {}
if len(sys.argv) > 2:
    for r in csv.DictReader(open(sys.argv[2]), delimiter="\t"):
        rss[r["n"]] = r
by = defaultdict(list)
for r in rows:
    by[(int(r["n"]), r["server"], r["endpoint"])].append(r)


def med(key, field):
    return statistics.median(float(r[field]) for r in by[key])


def cpu(key):
    """Median server CPU us/request ('' when not recorded, e.g. older results)."""
    vals = [float(r["cpu_us_per_req"]) for r in by[key] if r.get("cpu_us_per_req")]
    return statistics.median(vals) if vals else None


def fmt(x, spec=".1f"):
    return "n/a" if x is None else format(x, spec)


ns = sorted({k[0] for k in by})
variants = sorted({k[1] for k in by if k[1].startswith("tenantry_")})
PEERS = ["rustango", "rustango_scoped", "rls"]
servers = [s for s in ["tenantry", *variants, "control", "control_tx", *PEERS, "django-tenants"] if any(k[1] == s for k in by)]
# "/api/notes", "/api/whoami", then the same under other Host distributions ("/api/notes zipf").
endpoints = sorted({k[2] for k in by}, key=lambda e: (len(e.split()), e))
print("| N | endpoint | server | req/s (median) | p50 ms | p99 ms | server CPU us/req | rounds | non-2xx |")
print("|---|---|---|---|---|---|---|---|---|")
for n in ns:
    for ep in endpoints:
        for s in servers:
            k = (n, s, ep)
            if k not in by:
                continue
            bad = sum(int(r["non2xx"]) + int(r["errors"]) for r in by[k])
            print(f"| {n} | {ep} | {s} | {med(k, 'rps'):.0f} | {med(k, 'p50_ms'):.2f} | "
                  f"{med(k, 'p99_ms'):.2f} | {fmt(cpu(k))} | {len(by[k])} | {bad} |")
print()
print("| N | endpoint | Tenantry/control req/s | Tenantry/control p99 | paired req/s ratios per round | Tenantry/django-tenants req/s | control/Tenantry CPU per req | control_tx/Tenantry CPU per req |")
print("|---|---|---|---|---|---|---|---|")
for n, variant, ep in [(n, v, ep) for n in ns for v in ["tenantry", *variants] for ep in endpoints]:
        t, c = (n, variant, ep), (n, "control", ep)
        if t not in by or c not in by:
            continue
        paired = []
        for rt in by[t]:
            for rc in by[c]:
                if rt["round"] == rc["round"]:
                    paired.append(float(rt["rps"]) / float(rc["rps"]))
        d = (n, "django-tenants", ep)
        dj = f"{med(t, 'rps') / med(d, 'rps'):.1f}x" if d in by else "not run"
        ct, cc = cpu(t), cpu(c)
        ctx = cpu((n, "control_tx", ep)) if (n, "control_tx", ep) in by else None
        r1 = fmt(cc / ct, ".3f") if ct and cc else "n/a"
        r2 = fmt(ctx / ct, ".3f") if ct and ctx else "n/a"
        label = ep if variant == "tenantry" else f"{ep} ({variant})"
        print(f"| {n} | {label} | {med(t, 'rps') / med(c, 'rps'):.3f} | {med(t, 'p99_ms') / med(c, 'p99_ms'):.3f} | "
              f"{', '.join(f'{p:.3f}' for p in paired)} | {dj} | {r1} | {r2} |")
if rss:
    print()
    print("| N | Tenantry VmRSS after start (MiB) | after warming all N hosts (MiB) | after the load (MiB) | hosts warmed |")
    print("|---|---|---|---|---|")
    for n in sorted(rss, key=int):
        r = rss[n]
        print(f"| {n} | {int(r['rss_start_kb']) / 1024:.1f} | {int(r['rss_warm_kb']) / 1024:.1f} | "
              f"{int(r['rss_end_kb']) / 1024:.1f} | {r['warmed']} |")
if any(k[1] == "tenantry_baseline" for k in by):
    print()
    print("| N | endpoint | Tenantry/baseline req/s | paired per round | baseline/Tenantry CPU per req |")
    print("|---|---|---|---|---|")
    for n in ns:
        for ep in ("/api/notes", "/api/whoami"):
            t, b = (n, "tenantry", ep), (n, "tenantry_baseline", ep)
            if t not in by or b not in by:
                continue
            paired = [float(rt["rps"]) / float(rb["rps"]) for rt in by[t] for rb in by[b] if rt["round"] == rb["round"]]
            ct, cb = cpu(t), cpu(b)
            print(f"| {n} | {ep} | {med(t, 'rps') / med(b, 'rps'):.3f} | {', '.join(f'{p:.3f}' for p in paired)} | "
                  f"{fmt(cb / ct, '.3f') if ct and cb else 'n/a'} |")

if any(k[1] in PEERS for k in by):
    print()
    print("Against the Rust alternatives (same run, medians over rounds; ratios are Tenantry / alternative:")
    print("above 1 means Tenantry is faster, p99 below 1 means Tenantry's tail is shorter):")
    print()
    print("| N | endpoint | server | req/s | p50 ms | p99 ms | CPU us/req | Tenantry/it req/s | paired per round | Tenantry/it p99 | it/Tenantry CPU per req | non-2xx |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for n in ns:
        for ep in endpoints:
            t = (n, "tenantry", ep)
            if t not in by:
                continue
            for s in ["tenantry", "control", *PEERS]:
                k = (n, s, ep)
                if k not in by:
                    continue
                bad = sum(int(r["non2xx"]) + int(r["errors"]) for r in by[k])
                if s == "tenantry":
                    ratio = paired = p99 = cpur = "1"
                else:
                    ratio = f"{med(t, 'rps') / med(k, 'rps'):.2f}"
                    pr = [float(rt["rps"]) / float(rk["rps"]) for rt in by[t] for rk in by[k] if rt["round"] == rk["round"]]
                    paired = ", ".join(f"{p:.2f}" for p in pr)
                    p99 = f"{med(t, 'p99_ms') / med(k, 'p99_ms'):.2f}"
                    ct, ck = cpu(t), cpu(k)
                    cpur = fmt(ck / ct, ".2f") if ct and ck else "n/a"
                print(f"| {n} | {ep} | {s} | {med(k, 'rps'):.0f} | {med(k, 'p50_ms'):.2f} | {med(k, 'p99_ms'):.2f} | "
                      f"{fmt(cpu(k))} | {ratio} | {paired} | {p99} | {cpur} | {bad} |")
