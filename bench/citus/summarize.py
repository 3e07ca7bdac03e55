#!/usr/bin/env python3
"""Summarise a bench/citus/notes.sh run (its out/ folder): ratios to plain PostgreSQL per
endpoint, each node's catalog, and the memory of the backends serving the bench database."""
import csv
import os
import statistics
import sys
from collections import defaultdict

out = sys.argv[1]


def read(name):
    path = os.path.join(out, name)
    return list(csv.DictReader(open(path), delimiter="\t")) if os.path.exists(path) else []


PLAIN = "tenantry_plain"
rows = read("results.tsv")
by = defaultdict(list)
for r in rows:
    by[(r["server"], r["endpoint"])].append(r)


def med(key, field):
    return statistics.median(float(r[field]) for r in by[key])


def ratio(a, b):
    return f"{a / b:.2f}" if b else "n/a"


def nodes(key):
    """Median DB CPU us/request per node, 'port=x' joined."""
    per = defaultdict(list)
    for r in by[key]:
        for part in filter(None, r["db_cpu_per_node"].split(",")):
            port, v = part.split("=")
            per[port].append(float(v))
    return ", ".join(f"{p}: {statistics.median(v):.0f}" for p, v in sorted(per.items()))


servers = [s for s in [PLAIN, "tenantry_citus_coord", "tenantry_citus_affine"] if any(k[0] == s for k in by)]
endpoints = sorted({k[1] for k in by}, key=lambda e: (len(e.split()), e))
if rows:
    print("Medians over rounds; ratios are server / plain (req/s: above 1 is faster; CPU: above 1 costs more).")
    print("DB CPU = the bench database's backends on every node of the server's database (coordinator and")
    print("workers for Citus), per request.")
    print()
    print("| endpoint | server | req/s | p50 ms | p99 ms | app CPU us/req | DB CPU us/req (per node) | "
          "req/s / plain | paired per round | p99 / plain | app CPU / plain | DB CPU / plain | non-2xx |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for ep in endpoints:
        p = (PLAIN, ep)
        for s in servers:
            k = (s, ep)
            if k not in by:
                continue
            bad = sum(int(r["non2xx"]) + int(r["errors"]) for r in by[k])
            if p in by and s != PLAIN:
                paired = [float(a["rps"]) / float(b["rps"]) for a in by[k] for b in by[p] if a["round"] == b["round"]]
                rps = f"**{ratio(med(k, 'rps'), med(p, 'rps'))}**"
                paired = ", ".join(f"{x:.2f}" for x in paired)
                p99 = ratio(med(k, "p99_ms"), med(p, "p99_ms"))
                app = ratio(med(k, "cpu_us_per_req"), med(p, "cpu_us_per_req"))
                db = ratio(med(k, "db_cpu_us_per_req"), med(p, "db_cpu_us_per_req"))
            else:
                rps = paired = p99 = app = db = "1"
            print(f"| {ep} | {s} | {med(k, 'rps'):.0f} | {med(k, 'p50_ms'):.2f} | {med(k, 'p99_ms'):.2f} | "
                  f"{med(k, 'cpu_us_per_req'):.0f} | {med(k, 'db_cpu_us_per_req'):.0f} ({nodes(k)}) | {rps} | "
                  f"{paired} | {p99} | {app} | {db} | {bad} |")
    print()

MIB = 1024 * 1024
catalog = read("catalog.tsv")
if catalog:
    plain = next((c for c in catalog if c["role"] == "plain"), None)
    print("Each node's catalog (before the load): pg_catalog = its tables with their indexes and TOAST")
    print("(pg_dist_* = Citus's metadata, included); tenant tables = tables in t000001.. schemas that are")
    print("not shards (on a Citus node: the shell tables of the distributed tables); ratio = node / plain.")
    print()
    print("| system | node | role | schemas | relations (pg_class) | pg_attribute rows | pg_catalog MiB | "
          "of which pg_dist_* MiB | database MiB | tenant tables | shards | pg_catalog / plain | relations / plain |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for c in catalog:
        cat, rel = int(c["catalog_bytes"]), int(c["relations"])
        r1 = ratio(cat, int(plain["catalog_bytes"])) if plain else "n/a"
        r2 = ratio(rel, int(plain["relations"])) if plain else "n/a"
        print(f"| {c['system']} | {c['port']} | {c['role']} | {c['schemas']} | {rel} | {c['pg_attribute_rows']} | "
              f"{cat / MIB:.1f} | {int(c['pg_dist_bytes']) / MIB:.1f} | {int(c['db_bytes']) / MIB:.0f} | "
              f"{c['tenant_tables']} | {c['shards']} | {r1} | {r2} |")
    print()

memory = read("memory.tsv")


def serving(ms):
    """The backends that did the work: CPU time at least a tenth of the busiest one's (the pools
    also hold idle connections). All of them in results without CPU times."""
    if not ms or "cpu_ticks" not in ms[0]:
        return ms
    top = max(int(m["cpu_ticks"]) for m in ms)
    return [m for m in ms if int(m["cpu_ticks"]) * 10 >= top]


if memory:
    groups = defaultdict(list)
    for m in memory:
        groups[(m["system"], m["port"], m["role"], m["application"])].append(m)
    base = [float(m["rss_anon_kb"]) for m in serving([m for m in memory if m["role"] == "plain"])]
    base = statistics.median(base) if base else None
    print("Backends of the bench database after the same requests on every side (RssAnon: the backend's private memory, i.e. its")
    print("catalog and plan caches; Pss: its share of everything it maps, shared buffers included);")
    print("citus_internal = the coordinator's connections to a worker; serving = backends with at least a")
    print("tenth of the busiest one's CPU time (the medians are theirs); ratio = that median / plain's.")
    print()
    print("| system | node | role | connections of | backends | serving | RssAnon median MiB | max MiB | "
          "sum (all) MiB | Pss median MiB | RssAnon / plain |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for (system, port, role, app), ms in groups.items():
        busy = serving(ms)
        anon = [float(m["rss_anon_kb"]) / 1024 for m in busy]
        pss = [float(m["pss_kb"]) / 1024 for m in busy]
        total = sum(float(m["rss_anon_kb"]) for m in ms) / 1024
        r = ratio(statistics.median(anon) * 1024, base) if base else "n/a"
        print(f"| {system} | {port} | {role} | {app} | {len(ms)} | {len(busy)} | {statistics.median(anon):.1f} | "
              f"{max(anon):.1f} | {total:.0f} | {statistics.median(pss):.1f} | {r} |")
