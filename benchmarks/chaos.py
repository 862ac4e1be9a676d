#!/usr/bin/env python3
"""Souk's chaos run (see benchmarks/chaos): a production deployment under a mixed load while a
scheduler kills and freezes its processes, then a checker that proves the invariants.

Stdlib only. Every answer the load client got goes to client.jsonl in the work directory; the checker
reads that log and the databases, prints counts and violations, and exits 1 on any violation."""

import argparse
import http.client
import json
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zlib
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor

BINARY = os.environ.get("SOUK_BINARY", "")
FEED_INTERVAL_MS = 1000


def log(message):
    print(f"chaos: {message}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, seconds=60, alive=lambda: True):
    deadline = time.time() + seconds
    while time.time() < deadline and alive():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def children(pid):
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            found.append(int(entry))
    return found


# ---------------------------------------------------------------------------------------------------
# The processes


class Role:
    """One process of the deployment, restarted like systemd's Restart=always would (after 1 s)."""

    def __init__(self, name, work):
        self.name = name
        self.work = work
        self.process = None
        self.planned_down = False
        self.frozen = False
        self.unplanned_exits = 0
        self.logfile = open(os.path.join(work, f"{name}.log"), "ab")

    def command(self):
        raise NotImplementedError

    def ready(self):
        return True

    def start(self):
        self.process = subprocess.Popen(self.command(), stdout=self.logfile, stderr=subprocess.STDOUT, env=self.environment(), cwd="/")
        return self.ready()

    def environment(self):
        return dict(os.environ)

    def running(self):
        return self.process is not None and self.process.poll() is None

    def pids(self):
        return [self.process.pid] if self.running() else []

    def kill9(self):
        self.planned_down = True
        if self.running():
            self.thaw()
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def freeze(self):
        self.frozen = True
        for pid in self.pids():
            os.kill(pid, signal.SIGSTOP)

    def thaw(self):
        if self.frozen:
            for pid in self.pids():
                try:
                    os.kill(pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass
        self.frozen = False

    def restart(self):
        ok = self.start()
        self.planned_down = False
        return ok


class Souk(Role):
    def __init__(self, name, work, arguments, environment, port=None):
        super().__init__(name, work)
        self.arguments = arguments
        self.env = environment
        self.port = port

    def command(self):
        return [BINARY] + self.arguments + (["--port", str(self.port)] if self.port else [])

    def environment(self):
        return {**os.environ, **self.env}

    def ready(self):
        if self.port:
            return wait_port(self.port, 60, self.running)
        time.sleep(0.5)
        return self.running()


class Postgres(Role):
    def __init__(self, work, port):
        super().__init__("postgres", work)
        self.port = port
        self.bin = sorted(d for d in (f"/usr/lib/postgresql/{v}/bin" for v in os.listdir("/usr/lib/postgresql")) if os.path.exists(d + "/postgres"))[-1]
        self.data = os.path.join(work, "pgdata")
        self.url = f"postgres://souk@127.0.0.1:{port}/postgres"
        as_postgres(["initdb", "-D", self.data, "-U", "souk", "--auth=trust", "--no-sync"], self.bin, self.logfile)

    def command(self):
        return as_postgres_command([f"{self.bin}/postgres", "-D", self.data, "-p", str(self.port), "-k", self.work,
                                    "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=300"])

    def pids(self):
        if not self.running():
            return []
        return [self.process.pid] + children(self.process.pid)

    def start(self):
        # After a SIGKILL the old backends may hold the shared memory for a moment: try again.
        for _ in range(100):
            self.process = subprocess.Popen(self.command(), stdout=self.logfile, stderr=subprocess.STDOUT, cwd="/")
            if wait_port(self.port, 10, self.running):
                return True
            if self.running():
                self.process.kill()
            self.process.wait()
            time.sleep(0.3)
        return False

    def psql(self, sql):
        out = subprocess.run([f"{self.bin}/psql", "-X", "-At", "-F", "\t", "-v", "ON_ERROR_STOP=1", self.url, "-c", sql],
                             capture_output=True, text=True, check=True).stdout
        return [line.split("\t") for line in out.splitlines() if line]


class Redis(Role):
    def __init__(self, work, port):
        super().__init__("redis", work)
        self.port = port
        self.dir = os.path.join(work, "redis")
        os.makedirs(self.dir)
        self.url = f"redis://127.0.0.1:{port}/0"

    def command(self):
        return ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir, "--save", "",
                "--appendonly", "yes", "--appendfsync", "everysec"]

    def ready(self):
        return wait_port(self.port, 60, self.running)


def as_postgres_command(command):
    if os.getuid() != 0:
        return command
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups"] + command


def as_postgres(arguments, bindir, logfile):
    command = as_postgres_command([f"{bindir}/{arguments[0]}"] + arguments[1:])
    subprocess.run(command, stdout=logfile, stderr=subprocess.STDOUT, check=True, cwd="/")


# ---------------------------------------------------------------------------------------------------
# The load client


class Client:
    """One connection per `souk serve`, like a load balancer: a request that could not connect goes to
    the other instance; one whose answer was lost is recorded as unanswered."""

    def __init__(self, ports, record, rng):
        self.ports = ports
        self.record = record
        self.rng = rng
        self.connections = {}

    def connection(self, port):
        if port not in self.connections:
            self.connections[port] = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        return self.connections[port]

    def drop(self, port):
        connection = self.connections.pop(port, None)
        if connection:
            connection.close()

    def send(self, op, method, path, body=None, headers=None, raw=None):
        headers = dict(headers or {})
        payload = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        if body is not None:
            headers["Content-Type"] = "application/json"
        ports = self.ports[:]
        self.rng.shuffle(ports)
        started = time.time()
        for port in ports:
            try:
                connection = self.connection(port)
                connection.request(method, path, body=payload, headers=headers)
                response = connection.getresponse()
                data = response.read()
                answer = {
                    "op": op, "status": response.status, "at": started, "took": time.time() - started,
                    "retry_after": response.getheader("Retry-After"), "port": port,
                }
                try:
                    answer["json"] = json.loads(data) if data and response.getheader("Content-Type", "").startswith("application/json") else None
                except ValueError:
                    answer["json"] = None
                if response.getheader("Connection", "").lower() == "close":
                    self.drop(port)
                self.record(answer)
                return answer
            except ConnectionRefusedError:
                self.drop(port)
                continue  # never sent: the other instance may take it
            except (OSError, http.client.HTTPException):
                self.drop(port)
                answer = {"op": op, "status": 0, "at": started, "took": time.time() - started, "port": port}
                self.record(answer)
                return answer
        answer = {"op": op, "status": 0, "at": started, "took": time.time() - started, "port": None}
        self.record(answer)
        return answer


def png_image(width=64, height=48, seed=0):
    """A small RGB PNG, different for each seed."""
    rows = b"".join(b"\x00" + b"".join(bytes(((x * 4 + seed) % 256, (y * 5) % 256, (x + y + seed) % 256)) for x in range(width))
                    for y in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


class Load:
    """The mixed load and what it was told: every answer, and per operation what the checker needs."""

    TRANSIENT = {0, 503}

    def __init__(self, ports, work, seed, setup):
        self.ports = ports
        self.setup = setup
        self.seed = seed
        self.lock = threading.Lock()
        self.answers = []
        self.log = open(os.path.join(work, "client.jsonl"), "w")
        self.stop = threading.Event()
        self.store_orders = {}            # customer name -> its keyed entry (see keyed)
        self.keyed = {}                   # idempotency key -> {"kind", "path", "body", "buyer", "final": answer or None}
        self.edits = defaultdict(list)    # product id -> [(price, acknowledged)]
        self.edit_locks = {pid: threading.Lock() for pid in setup["edit"]}
        self.uploads = Counter()          # product id -> acknowledged uploads
        self.sale = None                  # the sale now offered
        self.won = []                     # (order id, buyer token) of admissions not yet paid for
        self.sales_created = []
        self.sequence = 0

    def record(self, answer):
        with self.lock:
            self.answers.append(answer)
            self.log.write(json.dumps(answer) + "\n")

    def next_number(self):
        with self.lock:
            self.sequence += 1
            return self.sequence

    def auth(self):
        return {"Authorization": f"Bearer {self.setup['token']}"}

    def run_thread(self, index):
        rng = random.Random(self.seed * 1000 + index)
        client = Client(self.ports, self.record, rng)
        operations = [(self.store_order, 25), (self.flash_purchase, 30), (self.flash_pay, 10), (self.checkout, 25), (self.edit, 8), (self.upload, 2), (self.read, 10)]
        functions = [f for f, _ in operations]
        weights = [w for _, w in operations]
        while not self.stop.is_set():
            rng.choices(functions, weights)[0](client, rng)

    def store_order(self, client, rng):
        """A guest's order with an Idempotency-Key: a lost answer is asked again, like a purchase."""
        name = f"chaos-{self.seed}-{self.next_number()}"
        items = [{"product_id": rng.choice(self.setup["store"]), "quantity": rng.randint(1, 3)}]
        body = {"customer": {"name": name, "phone": "+1 555 0100", "address": "1 Chaos Street"}, "items": items}
        key = str(uuid.uuid4())
        entry = {"kind": "store_order", "path": f"/api/v1/stores/{self.setup['username']}/orders", "body": body,
                 "buyer": None, "token": None, "final": None}
        with self.lock:
            self.keyed[key] = entry
            self.store_orders[name] = entry
        self.resolve(client, key, entry)

    def keyed_request(self, client, kind, path, body, buyer):
        """`buyer` is a signed-in customer (id, token): every purchase is made as somebody."""
        key = str(uuid.uuid4())
        entry = {"kind": kind, "path": path, "body": body, "buyer": buyer[0], "token": buyer[1], "final": None}
        with self.lock:
            self.keyed[key] = entry
        self.resolve(client, key, entry)

    def resolve(self, client, key, entry):
        headers = {"Idempotency-Key": key}
        if entry["token"]:
            headers["Authorization"] = f"Bearer {entry['token']}"
        answer = client.send(entry["kind"], "POST", entry["path"], entry["body"], headers)
        if answer["status"] not in self.TRANSIENT:
            with self.lock:
                entry["final"] = answer
                if entry["kind"] == "flash_purchase" and answer["status"] == 202:
                    self.won.append((answer["json"]["order_id"], entry["token"]))

    def flash_purchase(self, client, rng):
        sale = self.sale
        if sale is None:
            return
        buyer = rng.choice(self.setup["shoppers"])
        self.keyed_request(client, "flash_purchase", f"/api/v1/flash-sales/{sale}/purchases", {}, buyer)

    def flash_pay(self, client, rng):
        """Pays for a unit won earlier, by store credit or by the simulated provider's approved card;
        some wins are never paid, and their holds expire."""
        with self.lock:
            if not self.won or rng.random() < 0.3:
                return
            order, token = self.won.pop(rng.randrange(len(self.won)))
        body = {"method": rng.choice(["credit", "card"]), "shipping": {"name": "Chaos Buyer", "phone": "+212600000000", "address": "1 Rue du Chaos"}}
        if body["method"] == "card":
            body["card"] = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2040, "cvc": "123"}
        key = str(uuid.uuid4())
        entry = {"kind": "flash_pay", "path": f"/api/v1/orders/{order}/payment", "body": body, "buyer": None, "token": token, "final": None, "order": order}
        with self.lock:
            self.keyed[key] = entry
        self.resolve(client, key, entry)

    def checkout(self, client, rng):
        buyer = rng.choice(self.setup["buyers"])
        items = [{"product_id": p, "quantity": rng.randint(1, 2)} for p in rng.sample(self.setup["checkout"], rng.randint(1, 2))]
        self.keyed_request(client, "checkout", "/api/v1/checkouts", {"items": items}, buyer)

    def edit(self, client, rng):
        product = rng.choice(self.setup["edit"])
        lock = self.edit_locks[product]
        if not lock.acquire(blocking=False):
            return
        try:
            price = rng.randint(100, 99_999)
            answer = client.send("edit", "PATCH", f"/api/v1/products/{product}", {"price_minor": price}, self.auth())
            with self.lock:
                self.edits[product].append((price, answer["status"] == 200))
        finally:
            lock.release()

    def upload(self, client, rng):
        product = rng.choice(self.setup["image"])
        answer = client.send("upload", "PUT", f"/api/v1/products/{product}/image", None,
                             {**self.auth(), "Content-Type": "image/png"}, raw=png_image(seed=rng.randrange(256)))
        if answer["status"] == 202:
            with self.lock:
                self.uploads[product] += 1

    def read(self, client, rng):
        if rng.random() < 0.5:
            client.send("store_page", "GET", f"/s/{self.setup['username']}")
        else:
            client.send("store_api", "GET", f"/api/v1/stores/{self.setup['username']}")

    def vendor(self, rng):
        """Opens a new flash sale every 20 s and cancels the one before: sales open and close under faults."""
        client = Client(self.ports, self.record, rng)
        while not self.stop.is_set():
            previous = self.sale
            sale = self.create_sale(client, rng)
            if sale:
                self.sale = sale
                if previous:
                    self.until_answered(client, "cancel_sale", "POST", f"/api/v1/flash-sales/{previous}/cancel")
            self.stop.wait(20)

    def create_sale(self, client, rng):
        now = time.time()
        # Holds of 15 s: wins left unpaid expire during the run, and their units are sold again.
        body = {"product_id": rng.choice(self.setup["flash"]), "quantity": 100, "per_buyer_limit": 1, "hold_seconds": 15,
                "starts_at": iso(now - 1), "ends_at": iso(now + 86_400)}
        answer = self.until_answered(client, "create_sale", "POST", "/api/v1/flash-sales", body)
        if answer and answer["status"] == 201:
            sale = answer["json"]["id"]
            with self.lock:
                self.sales_created.append(sale)
            return sale
        return None

    def until_answered(self, client, op, method, path, body=None, seconds=120):
        deadline = time.time() + seconds
        while time.time() < deadline:
            answer = client.send(op, method, path, body, self.auth())
            if answer["status"] not in self.TRANSIENT:
                return answer
            time.sleep(0.5)
        return None

    def drain(self, seconds):
        """Asks again, with the same key, every keyed request that never got a final answer."""
        deadline = time.time() + seconds
        rng = random.Random(self.seed)
        client = Client(self.ports, self.record, rng)
        while time.time() < deadline:
            with self.lock:
                open_keys = [(k, e) for k, e in self.keyed.items() if e["final"] is None]
            if not open_keys:
                return 0
            for key, entry in open_keys:
                self.resolve(client, key, entry)
            time.sleep(0.5)
        with self.lock:
            return sum(1 for e in self.keyed.values() if e["final"] is None)


def iso(timestamp):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))


# ---------------------------------------------------------------------------------------------------
# Faults


class Faults:
    def __init__(self, roles, rng, work):
        self.journal = open(os.path.join(work, "faults.log"), "w")
        self.roles = roles
        self.rng = rng
        self.counts = Counter()
        self.windows = []    # (start, end, role name)
        self.stop = threading.Event()
        self.lock = threading.Lock()

    def schedule(self):
        while not self.stop.wait(self.rng.uniform(2, 5)):
            role = self.rng.choice(self.roles)
            started = time.time()
            if self.rng.random() < 0.75:
                pause = self.rng.uniform(0.5, 3)
                with self.lock:
                    role.kill9()
                kind = "SIGKILL"
                self.counts[f"SIGKILL {role.name}"] += 1
                time.sleep(pause)
                with self.lock:
                    role.restart()
            else:
                pause = self.rng.uniform(1, 8)
                role.freeze()
                kind = "SIGSTOP"
                self.counts[f"SIGSTOP {role.name}"] += 1
                time.sleep(pause)
                role.thaw()
            self.windows.append((started, time.time(), role.name))
            self.journal.write(f"{time.strftime('%H:%M:%S', time.localtime(started))} {self.windows[-1][1] - started:5.1f} s {kind} {role.name}\n")
            self.journal.flush()

    def supervise(self):
        """A process that exited without being killed is restarted after 1 s, as systemd would."""
        while not self.stop.wait(0.5):
            for role in self.roles:
                with self.lock:
                    if not role.planned_down and not role.running():
                        role.unplanned_exits += 1
                        started = time.time()
                        time.sleep(1)
                        role.restart()
                        self.windows.append((started, time.time(), role.name))


# ---------------------------------------------------------------------------------------------------
# Setup and the checker


def set_up(ports, rng):
    client = Client(ports, lambda answer: None, rng)

    def must(op, method, path, body=None, headers=None, status=(200, 201)):
        answer = client.send(op, method, path, body, headers)
        if answer["status"] not in status:
            raise SystemExit(f"chaos: setup failed: {method} {path} -> {answer}")
        return answer["json"]

    username = f"chaos{rng.randrange(10**6)}"
    must("setup", "POST", "/api/v1/vendors", {"username": username, "password": "chaos-password-1", "store_name": "Chaos Store"})
    token = must("setup", "POST", "/api/v1/sessions", {"username": username, "password": "chaos-password-1"})["token"]
    auth = {"Authorization": f"Bearer {token}"}
    setup = {"username": username, "token": token, "initial_stock": {}}
    for group, count, stock in [("store", 3, 1_000_000), ("checkout", 4, 1_000_000), ("flash", 3, 1_000_000), ("edit", 3, 50), ("image", 2, 50)]:
        setup[group] = []
        for n in range(count):
            product = must("setup", "POST", "/api/v1/products", {"name": f"{group} product {n}", "description": "chaos", "price_minor": 100 + 37 * n,
                                                                 "currency": "USD", "stock": stock, "available": True}, auth)
            setup[group].append(product["id"])
            setup["initial_stock"][product["id"]] = stock
    # Customers sign up and in through the API (in parallel: bcrypt is the slow part): 40 who check
    # out with store credit, 200 who buy in the flash sales.
    def customer(n):
        email = f"{username}-{n}@chaos.example"
        made = Client(ports, lambda answer: None, random.Random(n))
        signup = made.send("setup", "POST", "/api/v1/customers", {"email": email, "password": "chaos-password-1", "name": f"Shopper {n}"})
        login = made.send("setup", "POST", "/api/v1/customers/sessions", {"email": email, "password": "chaos-password-1"})
        if signup["status"] != 201 or login["status"] != 201:
            raise SystemExit(f"chaos: setup failed: customer {n}: {signup} {login}")
        return (signup["json"]["id"], login["json"]["token"])
    with ThreadPoolExecutor(8) as pool:
        customers = list(pool.map(customer, range(240)))
    setup["buyers"], setup["shoppers"] = customers[:40], customers[40:]
    for buyer, _ in setup["buyers"] + setup["shoppers"]:
        must("setup", "POST", f"/api/v1/wallets/{buyer}/credit", {"amount_minor": 1_000_000_000}, auth)
    return setup


class Checker:
    def __init__(self, load, postgres, redis, faults, environment, patient=True, feed=None):
        self.feed_role = feed
        self.patient = patient
        self.load = load
        self.pg = postgres
        self.redis_port = redis.port
        self.faults = faults
        self.environment = environment
        self.violations = []
        self.facts = []

    def violation(self, text):
        self.violations.append(text)

    def fact(self, text):
        self.facts.append(text)

    def souk(self, *arguments):
        return subprocess.run([BINARY, *arguments], capture_output=True, text=True, env={**os.environ, **self.environment})

    def vendor_id(self):
        return int(self.pg.psql(f"SELECT id FROM vendors WHERE username = '{self.load.setup['username']}'")[0][0])

    def wait_until(self, what, condition, seconds):
        deadline = time.time() + (seconds if self.patient else 0)
        while True:
            if condition():
                return True
            if time.time() >= deadline:
                break
            time.sleep(1)
        self.violation(f"{what} after {seconds} s")
        return False

    def run(self):
        vendor = self.vendor_id()
        self.answers()
        self.wait_until("checkouts still in progress", lambda: self.pg.psql(f"SELECT count(*) FROM checkouts WHERE vendor_id = {vendor} AND status = 'in_progress'")[0][0] == "0", 180)
        acked_flash = {e["final"]["json"]["order_id"] for e in self.load.keyed.values() if e["kind"] == "flash_purchase" and e["final"] and e["final"]["status"] == 202}
        self.wait_until("acknowledged flash-sale orders not yet in the database",
                        lambda: int(self.pg.psql("SELECT count(*) FROM flash_sale_orders")[0][0]) >= len(acked_flash), 120)
        consistent = self.souk("reconcile")
        if consistent.returncode != 0:
            self.violation(f"souk reconcile found Redis and the database apart:\n{consistent.stdout}{consistent.stderr}")
        self.close_sales(vendor)
        self.wait_until("jobs still queued or running", self.jobs_done, 120)
        if self.feed_role:
            self.feed_role.kill9()  # no new intervals while the lists are compared
        self.wait_until("the price log not applied", self.feed_applied, 60)
        self.store_orders(vendor)
        self.checkouts(vendor)
        self.flash_sales(vendor, acked_flash)
        self.flash_payments(vendor)
        self.stock(vendor)
        self.feed()
        self.edits_and_images()
        return self.violations

    def answers(self):
        statuses = Counter(a["status"] for a in self.load.answers)
        by_op = Counter((a["op"], a["status"]) for a in self.load.answers)
        self.fact(f"answers: {sum(statuses.values())} ({', '.join(f'{s}: {n}' for s, n in sorted(statuses.items()))}; 0 = no answer)")
        for (op, status), n in sorted(by_op.items()):
            self.fact(f"  {op:<15} {status}: {n}")
        for a in self.load.answers:
            if a["status"] >= 500 and a["status"] != 503:
                self.violation(f"{a['op']} answered {a['status']}: {a.get('json')}")
            elif a["status"] == 503 and not a.get("retry_after"):
                self.violation(f"{a['op']} answered 503 without Retry-After")
        took = sorted(a.get("took", 0) for a in self.load.answers)
        if took:
            self.fact(f"answer times: p50 {took[len(took) // 2] * 1000:.0f} ms, p99 {took[int(len(took) * 0.99)] * 1000:.0f} ms, longest {took[-1]:.1f} s (a client gives up after 20 s)")
        windows = self.faults.windows
        outside = [a for a in self.load.answers if a["status"] == 503 and not any(s - 1 <= a["at"] <= e + 15 for s, e, _ in windows)]
        self.fact(f"503 answers away from any fault (within 15 s after one counts as during): {len(outside)}")

    def close_sales(self, vendor):
        rows = self.pg.psql(f"SELECT id FROM flash_sales WHERE vendor_id = {vendor} AND closed_at IS NULL")
        client = Client(self.load.ports, self.load.record, random.Random(0))
        for (sale,) in rows:
            answer = self.load.until_answered(client, "cancel_sale", "POST", f"/api/v1/flash-sales/{sale}/cancel")
            if not answer or answer["status"] != 200:
                self.violation(f"sale {sale} could not be cancelled: {answer}")
        time.sleep(3)  # a sale closes 2 s after its end

        def closed():
            self.souk("reconcile", "--repair")
            return self.pg.psql(f"SELECT count(*) FROM flash_sales WHERE vendor_id = {vendor} AND closed_at IS NULL")[0][0] == "0"

        self.wait_until("flash sales not closed by the reconciler", closed, 60)

    def jobs_done(self):
        out = self.souk("jobs").stdout
        return "queued 0, running 0" in out

    def redis(self, *arguments):
        return subprocess.run(["redis-cli", "-p", str(self.redis_port), *arguments], capture_output=True, text=True).stdout.split("\n")

    def feed_applied(self):
        """Every entry of the price log (a Redis stream) was delivered to the appliers and acknowledged.
        (Redis reports no `lag` once acknowledged entries are trimmed: the group's last delivered id is
        compared with the stream's last id instead.)"""
        group = [line.strip() for line in self.redis("XINFO", "GROUPS", "souk:{feed}:log")]
        group = dict(zip(group[0::2], group[1::2]))
        stream = [line.strip() for line in self.redis("XINFO", "STREAM", "souk:{feed}:log")]
        last = next((stream[i + 1] for i, field in enumerate(stream[:-1]) if field == "last-generated-id"), None)
        return group.get("name") == "appliers" and group.get("pending") == "0" and last is not None and group.get("last-delivered-id") == last

    def store_orders(self, vendor):
        rows = self.pg.psql(f"SELECT id, customer_name FROM orders WHERE vendor_id = {vendor}")
        by_name = defaultdict(list)
        for order_id, name in rows:
            by_name[name].append(int(order_id))
        attempts = self.load.store_orders
        # Each order was sent with a key and asked again until it had a final answer (drain).
        acked = {n: e["final"] for n, e in attempts.items() if e["final"] and e["final"]["status"] == 201}
        for name, answer in acked.items():
            order_id = (answer.get("json") or {}).get("id")
            if by_name.get(name) != [order_id]:
                self.violation(f"store order {name} acknowledged as {order_id} is in the database as {by_name.get(name)}")
        for name, ids in by_name.items():
            if name not in attempts:
                self.violation(f"store order {name} in the database was never placed")
            elif len(ids) > 1:
                self.violation(f"store order {name} placed once is in the database {len(ids)} times")
            elif attempts[name]["final"] and attempts[name]["final"]["status"] != 201:
                self.violation(f"store order {name} refused with {attempts[name]['final']['status']} was taken")
        unknown = [n for n, e in attempts.items() if e["final"] is None]
        taken = sum(1 for n in unknown if n in by_name)
        self.fact(f"store orders: {len(attempts)} placed, {len(acked)} acknowledged, {len(unknown)} still without a final answer ({taken} of those taken)")

    def checkouts(self, vendor):
        entries = {k: e for k, e in self.load.keyed.items() if e["kind"] == "checkout"}
        buyers = ", ".join(f"'{b}'" for b, _ in self.load.setup["buyers"])
        requests = {(b, k): c for b, k, c in self.pg.psql(
            f"SELECT r.buyer_id, r.idempotency_key, COALESCE(r.checkout_id, '') FROM checkout_requests r WHERE r.buyer_id IN ({buyers})")}
        checkouts = {i: (s, int(t)) for i, s, t in self.pg.psql(f"SELECT id, status, total_minor FROM checkouts WHERE vendor_id = {vendor}")}
        # Payments for flash-sale wins are checkouts too, started by a payment rather than a checkout request.
        payments_of_wins = {i for (i,) in self.pg.psql(f"SELECT id FROM checkouts WHERE vendor_id = {vendor} AND flash_order_id IS NOT NULL")}
        acked = 0
        for key, entry in entries.items():
            final = entry["final"]
            if final is None:
                self.violation(f"checkout {key} never got a final answer")
                continue
            stored = requests.get((entry["buyer"], key))
            if final["status"] == 202:
                acked += 1
                order = final["json"]["order_id"]
                if stored != order or order not in checkouts:
                    self.violation(f"checkout {key} acknowledged as {order} is stored as {stored}")
            elif stored:
                self.violation(f"checkout {key} refused with {final['status']} has checkout {stored}")
        known = {c for c in requests.values() if c}
        for checkout in checkouts:
            if checkout not in known and checkout not in payments_of_wins:
                self.violation(f"checkout {checkout} has no request the client made")
        statuses = Counter(s for s, _ in checkouts.values())
        self.fact(f"checkouts: {len(entries)} requested, {acked} accepted; {dict(statuses)}")
        payments = {c: int(a) for c, a in self.pg.psql(
            f"SELECT p.checkout_id, p.amount_minor FROM payments p JOIN checkouts c ON c.id = p.checkout_id WHERE c.vendor_id = {vendor}")}
        for checkout, (status, total) in checkouts.items():
            if status == "confirmed" and payments.get(checkout) != total:
                self.violation(f"confirmed checkout {checkout} of {total} has payment {payments.get(checkout)}")
            if status != "confirmed" and checkout in payments:
                self.violation(f"{status} checkout {checkout} has a payment")
        captures = Counter(c for (c,) in self.pg.psql(f"SELECT checkout_id FROM wallet_ledger WHERE vendor_id = {vendor} AND kind = 'capture'"))
        for checkout, n in captures.items():
            if n > 1 or checkouts.get(checkout, ("", 0))[0] != "confirmed":
                self.violation(f"checkout {checkout} captured {n} times with status {checkouts.get(checkout)}")
        ledger = {b: int(s) for b, s in self.pg.psql(
            f"SELECT buyer_id, SUM(amount_minor) FROM wallet_ledger WHERE vendor_id = {vendor} AND kind = 'credit' GROUP BY buyer_id")}
        confirmed_by_buyer = defaultdict(int)
        for b, t in self.pg.psql(f"SELECT buyer_id, total_minor FROM checkouts WHERE vendor_id = {vendor} AND status = 'confirmed' AND card_token IS NULL"):
            confirmed_by_buyer[b] += int(t)
        for buyer, balance, held, captured in self.pg.psql(
                f"SELECT buyer_id, balance_minor, held_minor, captured_minor FROM store_credits WHERE vendor_id = {vendor}"):
            balance, held, captured = int(balance), int(held), int(captured)
            if balance + held + captured != ledger.get(buyer):
                self.violation(f"credit of {buyer}: {balance} + {held} held + {captured} captured != {ledger.get(buyer)} credited")
            if held != 0:
                self.violation(f"credit of {buyer}: {held} still held after every checkout was decided")
            if captured != confirmed_by_buyer[buyer]:
                self.violation(f"credit of {buyer}: {captured} captured but confirmed checkouts total {confirmed_by_buyer[buyer]}")

    def flash_sales(self, vendor, acked):
        sales = {int(i): (int(q), int(s), int(l)) for i, q, s, l in self.pg.psql(
            f"SELECT id, quantity, sold, per_buyer_limit FROM flash_sales WHERE vendor_id = {vendor}")}
        orders = self.pg.psql(f"SELECT o.order_id, o.sale_id, o.buyer_id, o.status FROM flash_sale_orders o JOIN flash_sales s ON s.id = o.sale_id WHERE s.vendor_id = {vendor}")
        stored = Counter(o for o, _, _, _ in orders)
        # An expired hold gave its unit back: `sold` counts the orders that still hold one.
        per_sale = Counter(int(s) for _, s, _, status in orders if status != "expired")
        per_buyer = Counter((int(s), b) for _, s, b, _ in orders)
        for order in acked:
            if stored[order] != 1:
                self.violation(f"admitted flash-sale order {order} stored {stored[order]} times")
        for order in stored:
            if order not in acked:
                self.violation(f"flash-sale order {order} stored but never acknowledged")
        for sale, (quantity, sold, _) in sales.items():
            if per_sale[sale] > quantity or per_sale[sale] != sold:
                self.violation(f"sale {sale}: {per_sale[sale]} orders, sold {sold}, quantity {quantity}")
        for (sale, buyer), n in per_buyer.items():
            if n > sales[sale][2]:
                self.violation(f"sale {sale}: buyer {buyer} admitted {n} times (limit {sales[sale][2]})")
        unresolved = sum(1 for e in self.load.keyed.values() if e["kind"] == "flash_purchase" and e["final"] is None)
        if unresolved:
            self.violation(f"{unresolved} flash-sale purchases never got a final answer")
        answers = Counter(e["final"]["status"] for e in self.load.keyed.values() if e["kind"] == "flash_purchase" and e["final"])
        self.fact(f"flash sales: {len(sales)} opened, {len(acked)} admissions acknowledged, {len(stored)} stored; answers {dict(answers)}")

    def flash_payments(self, vendor):
        """Each win paid at most once, and only while held; paid orders counted on their sales."""
        orders = {o: (int(s), status) for o, s, status in self.pg.psql(
            f"SELECT o.order_id, o.sale_id, o.status FROM flash_sale_orders o JOIN flash_sales s ON s.id = o.sale_id WHERE s.vendor_id = {vendor}")}
        confirmed = Counter(o for (o,) in self.pg.psql(
            f"SELECT flash_order_id FROM checkouts WHERE vendor_id = {vendor} AND flash_order_id IS NOT NULL AND status = 'confirmed'"))
        for order, (_, status) in orders.items():
            if confirmed[order] > 1:
                self.violation(f"flash-sale order {order} paid {confirmed[order]} times")
            if status == "paid" and confirmed[order] != 1:
                self.violation(f"flash-sale order {order} is paid with {confirmed[order]} confirmed payments")
            if status != "paid" and confirmed[order]:
                self.violation(f"flash-sale order {order} is {status} but a payment for it was confirmed")
            if status == "paying":
                self.violation(f"flash-sale order {order} still paying after every checkout was decided")
        for sale, paid, expired in self.pg.psql(f"SELECT id, paid, expired FROM flash_sales WHERE vendor_id = {vendor}"):
            counted = Counter(status for s, status in orders.values() if s == int(sale))
            if int(paid) != counted["paid"] or int(expired) != counted["expired"]:
                self.violation(f"sale {sale}: paid {paid}, expired {expired}; its orders say {dict(counted)}")
        stored_payments = defaultdict(set)
        for order, checkout in self.pg.psql(f"SELECT flash_order_id, id FROM checkouts WHERE vendor_id = {vendor} AND flash_order_id IS NOT NULL"):
            stored_payments[order].add(checkout)
        entries = [e for e in self.load.keyed.values() if e["kind"] == "flash_pay"]
        for entry in entries:
            final = entry["final"]
            if final is None:
                self.violation(f"payment for {entry['order']} never got a final answer")
            elif final["status"] == 202 and (final.get("json") or {}).get("checkout_id") not in stored_payments[entry["order"]]:
                self.violation(f"payment for {entry['order']} accepted as {(final.get('json') or {}).get('checkout_id')} is not stored")
        answers = Counter((e["body"]["method"], e["final"]["status"]) for e in entries if e["final"])
        statuses = Counter(status for _, status in orders.values())
        by_card = self.pg.psql(f"SELECT count(*) FROM payments p JOIN checkouts c ON c.id = p.checkout_id WHERE c.vendor_id = {vendor} AND p.method = 'card'")[0][0]
        self.fact(f"flash-sale payments: {len(entries)} tried {dict(sorted(answers.items()))}; orders {dict(statuses)}; {by_card} paid by card")

    def stock(self, vendor):
        initial = self.load.setup["initial_stock"]
        now = {int(i): int(s) for i, s in self.pg.psql(f"SELECT id, stock FROM products WHERE vendor_id = {vendor}")}
        used = defaultdict(int)
        for p, q in self.pg.psql(f"SELECT i.product_id, i.quantity FROM order_items i JOIN orders o ON o.id = i.order_id WHERE o.vendor_id = {vendor} AND o.status <> 'cancelled'"):
            used[int(p)] += int(q)
        # A payment for a flash-sale win has the sale's unit as its line: counted with the sale below.
        for p, q in self.pg.psql(f"SELECT i.product_id, i.quantity FROM checkout_items i JOIN checkouts c ON c.id = i.checkout_id WHERE c.vendor_id = {vendor} AND c.status <> 'failed' AND c.flash_order_id IS NULL"):
            used[int(p)] += int(q)
        for p, q, s, closed in self.pg.psql(f"SELECT product_id, quantity, sold, closed_at IS NOT NULL FROM flash_sales WHERE vendor_id = {vendor}"):
            used[int(p)] += int(s) if closed == "t" else int(q)
        for product, stock in initial.items():
            if now[product] + used[product] != stock:
                self.violation(f"product {product}: {now[product]} in stock + {used[product]} sold != {stock} at the start")
        self.fact(f"stock: {len(initial)} products balance" if not any("in stock +" in v for v in self.violations) else "stock: see violations")

    def feed(self):
        ticks = self.pg.psql("SELECT item, count(*), min(at), max(at) FROM price_ticks GROUP BY item")
        if not ticks:
            self.violation("the price feed wrote no ticks")
        for item, count, first, last in ticks:
            expected = (int(last) - int(first)) // FEED_INTERVAL_MS + 1
            if int(count) != expected:
                self.violation(f"price list {item}: {count} ticks from {first} to {last} ms, {expected} intervals")
        # The same lists in Redis (members "at:price" scored by at): one price per interval, the
        # same as the database's.
        for item, _, first, last in ticks:
            lines = self.redis("ZRANGE", f"souk:price:{item}", first, last, "BYSCORE")
            cached = [line.strip().split(":") for line in lines if ":" in line]
            stored = {int(a): p for a, p in self.pg.psql(f"SELECT at, price_minor FROM price_ticks WHERE item = '{item}'")}
            if len({int(a) for a, _ in cached}) != len(cached) or {int(a): p for a, p in cached} != stored:
                self.violation(f"price list {item}: Redis holds {len(cached)} ticks, the database {len(stored)}, and they differ")
        positions = self.pg.psql("SELECT count(*), COALESCE(min(position), 0), COALESCE(max(position), 0), count(DISTINCT (source, interval_at)) FROM price_log")[0]
        count, first, last, distinct = map(int, positions)
        if count and (last - first + 1 != count or distinct != count):
            self.violation(f"price log: {count} entries, positions {first}..{last}, {distinct} distinct intervals")
        self.fact(f"price feed: {len(ticks)} items, {sum(int(t[1]) for t in ticks)} ticks, {count} log entries")

    def edits_and_images(self):
        client = Client(self.load.ports, lambda a: None, random.Random(1))
        auth = self.load.auth()
        for product, history in self.load.edits.items():
            answer = client.send("check", "GET", f"/api/v1/products/{product}", headers=auth)
            price = (answer.get("json") or {}).get("price_minor")
            acked = [i for i, (_, ok) in enumerate(history) if ok]
            allowed = {p for p, _ in history[acked[-1]:]} if acked else {p for p, _ in history} | {None}
            if acked and price not in allowed:
                self.violation(f"product {product}: price {price} but the last acknowledged edit set {history[acked[-1]][0]}")
        for product, n in self.load.uploads.items():
            answer = client.send("check", "GET", f"/api/v1/products/{product}", headers=auth)
            body = answer.get("json") or {}
            if not body.get("thumbnails") or body.get("status") == "processing":
                self.violation(f"product {product}: {n} uploads acknowledged, but status {body.get('status')} and thumbnails {body.get('thumbnails')}")
        self.fact(f"edits: {sum(len(h) for h in self.load.edits.values())}; uploads acknowledged: {sum(self.load.uploads.values())}")


def check_the_checker(load, postgres, redis, faults, environment):
    """Breaks each invariant once in the data the run left, and requires the checker to see every
    break: a checker that cannot fail proves nothing. Returns what it missed."""
    pg = postgres.psql
    vendor = pg(f"SELECT id FROM vendors WHERE username = '{load.setup['username']}'")[0][0]
    acked_order = next(e["final"]["json"]["id"] for e in load.store_orders.values() if e["final"] and e["final"]["status"] == 201)
    breaks = {
        "store order": f"DELETE FROM orders WHERE id = {acked_order}",
        "confirmed checkout": f"UPDATE payments SET amount_minor = amount_minor + 1 WHERE checkout_id = (SELECT min(id) FROM checkouts WHERE vendor_id = {vendor} AND status = 'confirmed')",
        "credit of": f"UPDATE store_credits SET balance_minor = balance_minor + 1 WHERE vendor_id = {vendor} AND buyer_id = '{load.setup['buyers'][0][0]}'",
        "admitted flash-sale order": "DELETE FROM flash_sale_orders WHERE seq = (SELECT max(seq) FROM flash_sale_orders)",
        "in stock +": f"UPDATE products SET stock = stock - 1 WHERE id = {load.setup['checkout'][0]}",
        "but a payment for it was confirmed": "UPDATE flash_sale_orders SET status = 'held' WHERE order_id = (SELECT order_id FROM flash_sale_orders WHERE status = 'paid' ORDER BY seq LIMIT 1)",
        "price list": "DELETE FROM price_ticks WHERE (item, at) = (SELECT item, at FROM price_ticks ORDER BY item, at OFFSET 5 LIMIT 1)",
    }
    for statement in breaks.values():
        pg(statement)
    load.answers.append({"op": "tamper", "status": 500, "at": time.time(), "json": None})
    violations = Checker(load, postgres, redis, faults, environment, patient=False).run()
    missed = [name for name in list(breaks) + ["answered 500"] if not any(name in v for v in violations)]
    return missed


# ---------------------------------------------------------------------------------------------------


def main():
    global BINARY
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=2)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, client.jsonl)")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1, 1_000_000)
    if not BINARY or not os.path.exists(BINARY):
        raise SystemExit("chaos: set SOUK_BINARY to a built souk (benchmarks/chaos does)")
    BINARY = os.path.abspath(BINARY)
    rng = random.Random(seed)
    work = tempfile.mkdtemp(prefix="souk-chaos.", dir="/tmp")
    os.chmod(work, 0o755)
    if os.getuid() == 0:
        shutil.chown(work, "postgres", "postgres")
    log(f"seed {seed}, {args.minutes} min, work directory {work}")

    postgres = Postgres(work, free_port())
    redis = Redis(work, free_port())
    roles = [postgres, redis]
    try:
        for role in roles:
            if not role.start():
                raise SystemExit(f"chaos: {role.name} did not start")
        environment = {
            "SOUK_DATABASE_URL": postgres.url, "SOUK_REDIS_URL": redis.url, "SOUK_DATA_DIR": os.path.join(work, "data"),
            "SOUK_RATE_LIMITS": "off", "SOUK_VERIFIER_DELAY": "100ms-3s", "SOUK_VERIFY_DEADLINE": "5s",
            "SOUK_DATABASE_TIMEOUT": "5s", "SOUK_DATABASE_CONNECTIONS": "10", "SOUK_FEED_INTERVAL": "1s", "SOUK_LOG_LEVEL": "warning",
        }
        subprocess.run([BINARY, "migrate"], env={**os.environ, **environment}, check=True, stdout=subprocess.DEVNULL)
        ports = [free_port(), free_port()]
        souks = [Souk("serve1", work, ["serve"], environment, ports[0]), Souk("serve2", work, ["serve"], environment, ports[1]),
                 Souk("worker1", work, ["worker"], environment), Souk("worker2", work, ["worker"], environment),
                 Souk("feed", work, ["feed"], environment)]
        roles += souks
        for role in souks:
            if not role.start():
                raise SystemExit(f"chaos: {role.name} did not start (see {work}/{role.name}.log)")
        setup = set_up(ports, rng)
        load = Load(ports, work, seed, setup)
        faults = Faults(roles, random.Random(seed), work)
        threads = [threading.Thread(target=load.run_thread, args=(i,), daemon=True) for i in range(args.threads)]
        threads.append(threading.Thread(target=load.vendor, args=(random.Random(seed + 1),), daemon=True))
        helpers = [threading.Thread(target=faults.schedule, daemon=True), threading.Thread(target=faults.supervise, daemon=True)]
        started = time.time()
        for t in threads + helpers:
            t.start()
        end = started + args.minutes * 60
        while time.time() < end:
            time.sleep(min(30, max(0.1, end - time.time())))
            log(f"{int(time.time() - started)} s: {len(load.answers)} answers, faults {sum(faults.counts.values())}")
        faults.stop.set()
        helpers[0].join()
        load.stop.set()
        for t in threads:
            t.join(60)
        helpers[1].join()
        for role in roles:
            role.thaw()
            if not role.running():
                role.restart()
        log("load stopped; every process is up; asking again what was never answered")
        unresolved = load.drain(180)
        log(f"drained ({unresolved} keyed requests still unanswered); checking")
        checker = Checker(load, postgres, redis, faults, environment, feed=next(r for r in roles if r.name == "feed"))
        violations = checker.run()
        print()
        print(f"chaos run: seed {seed}, {args.minutes} min, {args.threads} client threads")
        print(f"faults: {sum(faults.counts.values())} ({', '.join(f'{k}: {v}' for k, v in sorted(faults.counts.items()))})")
        print(f"exits nobody caused (restarted): {sum(r.unplanned_exits for r in roles)} ({', '.join(f'{r.name}: {r.unplanned_exits}' for r in roles if r.unplanned_exits)})")
        for fact in checker.facts:
            print(fact)
        print(f"violations: {len(violations)}")
        for violation in violations[:50]:
            print(f"  VIOLATION {violation}")
        if violations:
            print(f"replay the faults with: benchmarks/chaos --minutes {args.minutes:g} --seed {seed} --keep")
            args.keep = True
            return 1
        missed = check_the_checker(load, postgres, redis, faults, environment)
        print(f"the checker, given data with each invariant broken once, saw every break: {'yes' if not missed else 'NO, it missed ' + ', '.join(missed)}")
        return 1 if missed else 0
    finally:
        for role in reversed(roles):
            role.thaw()
            if role.running():
                role.process.kill()
                role.process.wait()
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
