#!/usr/bin/env python3
"""Generates a synthetic data-centre topology in the format of
data/grid5000/ (clusters.csv, site_rtt.csv): sites placed at random in a
box of the given size, inter-site RTT from the straight-line distance
(2 * 1.25 * km / 200 km/ms, plus 0.1 ms per site), clusters of random size
on each site.  Deterministic for a seed.  Usage:

  gen-topo.py NAME SITES CLUSTERS_PER_SITE MIN_HOSTS MAX_HOSTS BOX_KM SEED OUTDIR
"""
import math
import os
import random
import sys


def main():
    name, sites, cps, hmin, hmax, box, seed, out = sys.argv[1:9]
    sites, cps, hmin, hmax = int(sites), int(cps), int(hmin), int(hmax)
    box, rng = float(box), random.Random(int(seed))
    os.makedirs(out, exist_ok=True)
    pos = [(rng.uniform(0, box), rng.uniform(0, box)) for _ in range(sites)]
    total = 0
    with open(os.path.join(out, "clusters.csv"), "w") as f:
        f.write("site,cluster,hosts\n")
        for s in range(sites):
            for c in range(cps):
                h = rng.randint(hmin, hmax)
                total += h
                f.write(f"{name}-s{s},{name}-s{s}-c{c},{h}\n")
    with open(os.path.join(out, "site_rtt.csv"), "w") as f:
        f.write(f"# SYNTHETIC: bench/gen-topo.py {' '.join(sys.argv[1:8])}\n")
        f.write("# RTT = 2 * 1.25 * distance_km / (200 km/ms) + 0.2 ms\n")
        f.write("site_a,site_b,rtt_ms\n")
        for a in range(sites):
            for b in range(a + 1, sites):
                d = math.dist(pos[a], pos[b])
                f.write(f"{name}-s{a},{name}-s{b},{2 * 1.25 * d / 200 + 0.2:.3f}\n")
    print(f"{out}: {sites} sites, {sites * cps} clusters, {total} hosts")


if __name__ == "__main__":
    main()
