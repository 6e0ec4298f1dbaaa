#!/usr/bin/env python3
"""The SLOs of the scale benchmark (issue 15): N native SLOs (default 1,000)
over the CloudFront traffic `slo-agent generate` writes, all with 28-day
rolling windows.

Distribution (for the default 1,000):

- Ten filters, each over paths the generated shop traffic really has
  (agent/src/demo/traffic.rs), all on host shop.example.com; each filter is
  shared by a hundred SLOs, written out identically in each of them (the
  same host, path list and methods, in the same order), so an engine can
  tell they are one filter:

  | filter | paths | methods | service |
  | --- | --- | --- | --- |
  | storefront | /, /about, /category/* | GET | storefront |
  | products | /products/* | GET | catalog |
  | search | /search | GET | search |
  | static | /static/*, /img/* | | assets |
  | product-api | /api/products/* | GET | catalog-api |
  | cart | /api/cart/* | GET, POST | cart |
  | checkout | /checkout | GET | checkout |
  | payment | /checkout/pay | POST | payments |
  | api | /api/* | | api |
  | missing | /old-page-* | | storefront |

  (`missing` holds the generated 404s: an SLO on it measures "no 5xx" over
  pages that are gone, which is fine for a benchmark.)

- Within a filter's hundred, SLO i (0-based) is availability when i is
  even (`good: {status: "< 500"}`) and latency when odd
  (`good: {latency: "<= N ms"}`), the thresholds cycling through five bounds
  chosen around that path's latency (see LATENCY below). So 500
  availability and 500 latency SLOs, five distinct latency thresholds per
  filter.
- Objectives cycle through 99, 99.5, 99.9, 99.95, 95, 98 and 99.99 percent.
- Names: `<filter>-<availability|latency>-<owner>`, where the owner is one
  of a hundred teams/tenants (`t00`…`t99`); labels `team`, `tier` (1–3)
  and `tenant`. A hundred owners each watching the same ten slices of one
  distribution is how the same filter ends up shared a hundred ways.

With --slos other than 1,000 the SLOs are dealt round-robin over the ten
filters (so every filter is shared about N/10 ways).

    python3 tests/bench/scale_specs.py [--slos 1000] [--out FILE]   # default stdout
"""

import argparse
import sys

HOST = "shop.example.com"

# (name, paths, methods, service)
FILTERS = [
    ("storefront", ["/", "/about", "/category/*"], ["GET"], "storefront"),
    ("products", ["/products/*"], ["GET"], "catalog"),
    ("search", ["/search"], ["GET"], "search"),
    ("static", ["/static/*", "/img/*"], [], "assets"),
    ("product-api", ["/api/products/*"], ["GET"], "catalog-api"),
    ("cart", ["/api/cart/*"], ["GET", "POST"], "cart"),
    ("checkout", ["/checkout"], ["GET"], "checkout"),
    ("payment", ["/checkout/pay"], ["POST"], "payments"),
    ("api", ["/api/*"], [], "api"),
    ("missing", ["/old-page-*"], [], "storefront"),
]

# Latency bounds (ms) per filter, around the path's generated latency
# (traffic.rs: static/pages 60 ms median on a miss, products 110, search
# 180, product API 120, cart 140, checkout 220, payment 450; hits ~8 ms).
LATENCY = {
    "storefront": [50, 100, 200, 300, 500],
    "products": [100, 150, 250, 400, 800],
    "search": [150, 250, 400, 600, 1000],
    "static": [25, 50, 100, 200, 400],
    "product-api": [100, 200, 300, 500, 1000],
    "cart": [150, 250, 400, 600, 1000],
    "checkout": [200, 300, 500, 800, 1500],
    "payment": [400, 600, 800, 1200, 2000],
    "api": [100, 200, 300, 500, 1000],
    "missing": [50, 100, 150, 250, 500],
}

OBJECTIVES = [99, 99.5, 99.9, 99.95, 95, 98, 99.99]


def slo_document(i):
    """The YAML document of SLO number `i` (0-based)."""
    fname, paths, methods, service = FILTERS[i % len(FILTERS)]
    k = i // len(FILTERS)  # the owner: the k-th SLO on this filter
    owner = f"t{k:02d}" if k < 100 else f"t{k}"
    latency = k % 2 == 1
    kind = "latency" if latency else "availability"
    objective = OBJECTIVES[k % len(OBJECTIVES)]
    filt = [f"      host: {HOST}", "      path: [" + ", ".join(f'"{p}"' for p in paths) + "]"]
    if methods:
        filt.append("      method: [" + ", ".join(methods) + "]")
    if latency:
        bound = LATENCY[fname][(k // 2) % 5]
        good = f'      latency: "<= {bound}ms"'
    else:
        good = '      status: "< 500"'
    return "\n".join([
        "apiVersion: slo-agent/v1",
        "kind: SLO",
        "metadata:",
        f"  name: {fname}-{kind}-{owner}",
        f'  labels: {{team: "team-{owner}", tier: "{k % 3 + 1}", tenant: "{owner}"}}',
        "spec:",
        f"  service: {service}",
        f"  objective: {objective}",
        "  window: 28d",
        "  indicator:",
        "    source: cloudfront",
        "    filter:",
        *filt,
        "    good:",
        good,
    ]) + "\n"


def specs_text(n):
    head = (f"# {n} SLOs of the scale benchmark, written by tests/bench/scale_specs.py: "
            f"{len(FILTERS)} filters shared about {n // len(FILTERS)} ways, availability and latency, "
            "28-day windows.\n")
    return head + "".join("---\n" + slo_document(i) for i in range(n))


def write_specs(path, n):
    """Write the specs to `path` unless it holds them already (a rewrite
    would make a running agent that reads them reload its specs)."""
    text = specs_text(n)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--slos", type=int, default=1000)
    ap.add_argument("--out", default="-")
    args = ap.parse_args()
    text = specs_text(args.slos)
    if args.out == "-":
        sys.stdout.write(text)
    else:
        with open(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
