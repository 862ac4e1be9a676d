#!/usr/bin/env python3
"""Search relevance: loads the judged catalogue (benchmarks/relevance/catalogue.json) into a running
Souk through its API, asks every judged query (benchmarks/relevance/judgments.json) and prints
precision@5 and nDCG@10, overall and per kind of query.

    benchmarks/relevance.py http://127.0.0.1:8080 [--verbose] [--floor postgres|sqlite]

With --floor, the run fails (exit 1) when either figure is below that engine's floor in
benchmarks/relevance/floor.json: what the judged set measured when it was judged, so a change to
search cannot make it worse unnoticed (scripts/relevance-check runs it in the test suite).

The Souk it talks to should hold nothing else (a fresh database): any other product that matches a
query counts as irrelevant. Three vendors sign up, within the default signup limit.

precision@5: the share of the first five results that are relevant (grade 1 or 2; a query with
fewer than five relevant products can reach only that many fifths). nDCG@10: the discounted gain
of the first ten results (gain 2^grade - 1) over the best order the judgments allow. The last
line is machine-readable: `relevance precision@5=0.812 ndcg@10=0.774 queries=64`.
"""
import json
import math
import os
import sys
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))


def call(base, method, path, body=None, token=None):
    request = urllib.request.Request(base + path, method=method, data=None if body is None else json.dumps(body).encode())
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)
    except urllib.error.HTTPError as error:
        raise SystemExit(f"relevance: {method} {path} answered {error.code}: {error.read().decode()[:300]}")


def load(base, catalogue):
    """Creates the stores and their products; returns product id -> key."""
    keys = {}
    for store in catalogue["stores"]:
        password = "relevance-" + store["username"]
        call(base, "POST", "/api/v1/vendors", {"username": store["username"], "password": password, "store_name": store["store_name"]})
        token = call(base, "POST", "/api/v1/sessions", {"username": store["username"], "password": password})["token"]
        for product in store["products"]:
            body = {field: product[field] for field in ("name", "description", "price_minor", "currency", "stock")}
            created = call(base, "POST", "/api/v1/products", body, token)
            keys[created["id"]] = product["key"]
    return keys


def dcg(grades):
    return sum((2 ** grade - 1) / math.log2(position + 2) for position, grade in enumerate(grades))


def measure(base, judgments, keys):
    rows = []
    for judged in judgments["queries"]:
        parameters = {"q": judged["q"], "limit": 10}
        if judged.get("store"):
            parameters["vendor"] = judged["store"]
        page = call(base, "GET", "/api/v1/search?" + urllib.parse.urlencode(parameters))
        found = [keys.get(hit["product"]["id"]) for hit in page["results"]][:10]
        relevant = judged["relevant"]
        grades = [relevant.get(key, 0) for key in found]
        precision = sum(1 for grade in grades[:5] if grade > 0) / 5
        ideal = dcg(sorted(relevant.values(), reverse=True)[:10])
        ndcg = dcg(grades) / ideal if ideal > 0 else 0.0
        rows.append((judged, precision, ndcg, found))
    return rows


def main():
    arguments = [argument for argument in sys.argv[1:] if not argument.startswith("--") and argument not in ("postgres", "sqlite")]
    if len(arguments) != 1:
        raise SystemExit(__doc__)
    base = arguments[0].rstrip("/")
    catalogue = json.load(open(os.path.join(HERE, "relevance", "catalogue.json")))
    judgments = json.load(open(os.path.join(HERE, "relevance", "judgments.json")))
    keys = load(base, catalogue)
    rows = measure(base, judgments, keys)

    kinds = {}
    for judged, precision, ndcg, found in rows:
        kinds.setdefault(judged["kind"], []).append((precision, ndcg))
        if "--verbose" in sys.argv:
            print(f"{precision:.2f} {ndcg:.2f}  {judged['q']!r}{' in ' + judged['store'] if judged.get('store') else ''}: {found[:5]}")
    print(f"{'kind':<18} {'queries':>7} {'P@5':>6} {'nDCG@10':>8}")
    for kind, scores in sorted(kinds.items()):
        print(f"{kind:<18} {len(scores):>7} {sum(p for p, _ in scores) / len(scores):>6.3f} {sum(n for _, n in scores) / len(scores):>8.3f}")
    precision = sum(p for _, p, _, _ in rows) / len(rows)
    ndcg = sum(n for _, _, n, _ in rows) / len(rows)
    print(f"relevance precision@5={precision:.3f} ndcg@10={ndcg:.3f} queries={len(rows)}")
    if "--floor" in sys.argv:
        engine = sys.argv[sys.argv.index("--floor") + 1]
        floor = json.load(open(os.path.join(HERE, "relevance", "floor.json")))[engine]
        # Compared as printed (three decimals): the floor is a printed figure.
        if round(precision, 3) < floor["precision@5"] or round(ndcg, 3) < floor["ndcg@10"]:
            raise SystemExit(f"relevance: below the floor on {engine} (precision@5 {floor['precision@5']}, nDCG@10 {floor['ndcg@10']})")


if __name__ == "__main__":
    main()
