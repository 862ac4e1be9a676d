#!/usr/bin/env python3
"""Push latency of checkout results while the checkout storm runs.

Usage: push_latency.py URL PRODUCT_ID SECONDS OUT_FILE PROBES_FILE

For SECONDS, one buyer after another (the signed-in customers of PROBES_FILE, "<customer id> <token>"
lines, credited by the caller) checks out one
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
with open(sys.argv[5]) as lines:
    probes = [line.split()[1] for line in lines if line.strip()]
parts = urllib.parse.urlparse(url)
deadline = time.time() + seconds
samples = []
n = 0
while time.time() < deadline:
    token = probes[n % len(probes)]
    n += 1
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    post = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    post.request("POST", "/api/v1/checkouts", json.dumps({"items": [{"product_id": product, "quantity": 1}]}), headers)
    answer = post.getresponse()
    body = json.loads(answer.read() or b"{}")
    post.close()
    if answer.status != 202:
        continue
    order = body["order_id"]
    stream = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    stream.request("GET", f"/api/v1/orders/{order}/events", headers={"Authorization": f"Bearer {token}"})
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
