#!/usr/bin/env python3
"""Credits every customer of a shoppers file in the vendor's store, over one keep-alive connection.

Usage: credit.py URL VENDOR_TOKEN SHOPPERS_FILE AMOUNT_MINOR

SHOPPERS_FILE holds "<customer id> <token>" lines, as `souk customers mint` prints them.
"""
import http.client
import json
import sys
import urllib.parse

url, vendor_token, shoppers, amount = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
parts = urllib.parse.urlparse(url)
connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
credited = 0
with open(shoppers) as lines:
    for line in lines:
        if not line.strip():
            continue
        customer = line.split()[0]
        connection.request("POST", f"/api/v1/wallets/{customer}/credit", json.dumps({"amount_minor": amount}),
                           {"Content-Type": "application/json", "Authorization": f"Bearer {vendor_token}"})
        answer = connection.getresponse()
        body = answer.read()
        if answer.status != 200:
            sys.exit(f"credit.py: crediting {customer} answered {answer.status}: {body[:200]!r}")
        credited += 1
print(credited)
