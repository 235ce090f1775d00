#!/usr/bin/python3
"""A deterministic list of N IPv4 CIDRs for scenario g of bench/run.sh, none of which covers
127.0.0.0/8 (the benchmark client): 90% distinct /24s in 1-126.x.x, 10% /32s in 128-223.x.x.x,
so that no two entries overlap (nginx's geo module warns about duplicates).
Usage: blocklist.py N > blocklist.txt
"""
import random
import sys

n = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
rng = random.Random(8)
nets, hosts = set(), set()
while len(nets) < n - n // 10:
    nets.add((rng.randint(1, 126), rng.randint(0, 255), rng.randint(0, 255)))
while len(hosts) < n // 10:
    hosts.add((rng.randint(128, 223), rng.randint(0, 255), rng.randint(0, 255), rng.randint(1, 254)))
out = [f"{a}.{b}.{c}.0/24" for a, b, c in sorted(nets)] + [f"{a}.{b}.{c}.{d}/32" for a, b, c, d in sorted(hosts)]
sys.stdout.write("\n".join(out) + "\n")
