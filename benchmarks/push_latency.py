#!/usr/bin/env python3
"""Push latency of checkout results while the checkout storm runs.

Usage: push_latency.py URL PRODUCT_ID SECONDS OUT_FILE

For SECONDS, one buyer after another ("probe0".."probe9", credited by the caller) checks out one
unit of PRODUCT_ID, opens the order's server-sent-event stream at once and reads it until the final
event arrives; the arrival time (wall clock, microseconds) is written with the order id to OUT_FILE.
The benchmark then joins these with the time each saga was decided (checkouts.updated_at) to get
decision → browser latency.
"""
import http.client
import json
import sys
import time
import urllib.parse

url, product, seconds, out_path = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
parts = urllib.parse.urlparse(url)
deadline = time.time() + seconds
samples = []
n = 0
while time.time() < deadline:
    buyer = f"probe{n % 10}"
    n += 1
    post = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    post.request("POST", "/api/v1/checkouts", json.dumps({"buyer_id": buyer, "items": [{"product_id": product, "quantity": 1}]}),
                 {"Content-Type": "application/json"})
    answer = post.getresponse()
    body = json.loads(answer.read() or b"{}")
    post.close()
    if answer.status != 202:
        continue
    order = body["order_id"]
    stream = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    stream.request("GET", f"/api/v1/orders/{order}/events")
    response = stream.getresponse()
    arrived = None
    while arrived is None:
        line = response.fp.readline()
        if not line:
            break
        if line.startswith(b"data: "):
            event = json.loads(line[6:])
            if event.get("status") != "in_progress":
                arrived = int(time.time() * 1_000_000)
    stream.close()
    if arrived is not None:
        samples.append((order, arrived))
with open(out_path, "w") as out:
    for order, arrived in samples:
        out.write(f"{order} {arrived}\n")
