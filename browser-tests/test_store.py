"""End-to-end tests of Souk's HTML pages in headless Chromium (run them with browser-tests/run).

Each test is independent: it signs up its own vendor, so the tests can run in any order or alone
against one server. SOUK_URL names the server; on failure every browser the test opened leaves a
screenshot, its page source, its URL and its console log in SOUK_TEST_ARTIFACTS.
"""

import functools
import json
import os
import re
import shutil
import struct
import tempfile
import time
import unittest
import urllib.error
import urllib.request
import uuid
import zlib

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

BASE_URL = os.environ.get("SOUK_URL", "http://127.0.0.1:8080").rstrip("/")
ARTIFACTS = os.environ.get("SOUK_TEST_ARTIFACTS")  # made on the first failure when not given
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")

PAGE_TIMEOUT = 10  # an ordinary page or redirect
THUMBNAIL_TIMEOUT = 30  # the in-process job runner makes thumbnails in the background
VERIFIER_DELAY = os.environ.get("SOUK_VERIFIER_DELAY", "2s-3s")  # browser-tests/run starts souk with it
VERDICT_TIMEOUT = 20  # enough for the run script's delay (souk's own default is up to 100 s)


NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # the server is on loopback


def url(path):
    return BASE_URL + path


def unique(prefix):
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def png(width=64, height=48):
    """A small valid PNG (an RGB gradient), made with zlib and struct only."""
    rows = b"".join(
        b"\x00" + bytes(channel for x in range(width) for channel in (x * 4 % 256, y * 5 % 256, 160))
        for y in range(height)
    )

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")


def api(method, path, body=None, token=None):
    """A JSON API call for the setup that has no HTML page; returns (status, decoded body)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url(path), data=data, method=method)
    request.add_header("Accept", "application/json")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with NO_PROXY.open(request, timeout=10) as response:
            raw, status = response.read(), response.status
    except urllib.error.HTTPError as error:
        raw, status = error.read(), error.code
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode(errors="replace")


def dump_on_failure(test):
    """Leaves a screenshot, the page source, the URL and the console of every open browser when the test fails."""

    @functools.wraps(test)
    def wrapper(self, *args, **kwargs):
        try:
            return test(self, *args, **kwargs)
        except unittest.SkipTest:
            raise
        except BaseException:
            self.dump_browsers()
            raise

    return wrapper


class BrowserTestCase(unittest.TestCase):
    def setUp(self):
        self.browsers = []  # (label, driver)

    def browser(self, label):
        """A new Chromium session: its own profile, so its own cookies (a different person)."""
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1600",
                         "--disable-gpu", "--no-first-run", "--disable-extensions", "--lang=en-US"):
            options.add_argument(argument)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
        driver.set_page_load_timeout(PAGE_TIMEOUT * 3)
        self.browsers.append((label, driver))
        self.addCleanup(driver.quit)
        return driver

    def dump_browsers(self):
        global ARTIFACTS
        ARTIFACTS = ARTIFACTS or tempfile.mkdtemp(prefix="souk-browser-artifacts.")
        name = self.id().rsplit(".", 1)[-1]
        for label, driver in self.browsers:
            base = os.path.join(ARTIFACTS, f"{name}-{label}")
            try:
                driver.save_screenshot(base + ".png")
                with open(base + ".html", "w", encoding="utf-8") as file:
                    file.write(driver.page_source)
                with open(base + ".txt", "w", encoding="utf-8") as file:
                    file.write(f"url: {driver.current_url}\n\nconsole:\n")
                    for entry in driver.get_log("browser"):
                        file.write(f"{entry.get('level')} {entry.get('message')}\n")
                print(f"\n[{name}] {label}: {driver.current_url} -> {base}.png / .html / .txt")
            except WebDriverException as error:
                print(f"\n[{name}] {label}: could not dump the page: {error.msg}")

    # Waiting and finding

    def wait(self, driver, condition, message, timeout=PAGE_TIMEOUT, poll=0.1):
        return WebDriverWait(driver, timeout, poll_frequency=poll).until(condition, message)

    def wait_reloading(self, driver, condition, message, timeout):
        """Waits for a condition that only a fresh page shows, reloading between looks."""

        def check(d):
            result = condition(d)
            if not result:
                d.refresh()
            return result

        return self.wait(driver, check, message, timeout=timeout, poll=0.5)

    def submit(self, driver, button_text, scope=None):
        """Clicks the button with this text and waits for the next page to load."""
        root = scope or driver
        button = root.find_element(By.XPATH, f".//button[normalize-space()='{button_text}']")
        # The old page carries a token; the next page is a new window object without it. (Waiting for
        # the old <html> to go stale races with chromedriver, which may then answer "Node with given
        # id does not belong to the document" instead of a stale element.)
        token = uuid.uuid4().hex
        driver.execute_script("window.__soukPageToken = arguments[0]", token)
        before = driver.current_url
        button.click()

        def next_page_loaded(d):
            try:
                return d.execute_script("return document.readyState === 'complete' && window.__soukPageToken !== arguments[0]", token)
            except WebDriverException:  # between two documents
                return False

        self.wait(driver, next_page_loaded, f"clicking “{button_text}” on {before} loaded no new page")

    def fill(self, driver, field_id, value):
        field = driver.find_element(By.ID, field_id)
        field.clear()
        field.send_keys(value)

    def heading(self, driver):
        return driver.find_element(By.TAG_NAME, "h1").text.strip()

    def row(self, driver, name):
        """The table row of the product or order line whose <strong> is `name`, or None."""
        rows = driver.find_elements(By.XPATH, f"//table//tr[td/strong[normalize-space()='{name}']]")
        return rows[0] if rows else None

    def cell(self, row, column):
        return row.find_element(By.XPATH, f"./td[{column}]").text.strip()

    def loaded_image(self, driver, image):
        """True when the <img> has been fetched and decoded (natural size known)."""
        if image is None:
            return False
        try:
            return driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", image)
        except StaleElementReferenceException:
            return False

    def assert_no_script_errors(self, driver, where):
        """Fails on uncaught script errors and Content-Security-Policy refusals in the console."""
        problems = [entry["message"] for entry in driver.get_log("browser")
                    if entry.get("level") == "SEVERE"
                    and ("Uncaught" in entry["message"] or "Content Security Policy" in entry["message"]
                         or "Refused to" in entry["message"])]
        self.assertEqual(problems, [], f"script errors on {where}")

    # The vendor's side, through the forms

    def sign_up(self, driver):
        """Opens a new store through /signup and returns (username, store name, password)."""
        username, store_name, password = unique("v"), unique("Store "), "correct-horse-" + uuid.uuid4().hex[:6]
        driver.get(url("/"))
        driver.find_element(By.LINK_TEXT, "Open a store").click()
        self.wait(driver, EC.presence_of_element_located((By.ID, "store_name")), "the home page's “Open a store” led to no signup form")
        self.fill(driver, "username", username)
        self.fill(driver, "store_name", store_name)
        self.fill(driver, "password", password)
        self.submit(driver, "Create my store")
        self.assertEqual(driver.current_url, url("/dashboard"), f"signing up as {username} did not land on the dashboard")
        self.assertEqual(self.heading(driver), f"{store_name}: products", "the new vendor's dashboard heading")
        self.assertIn("No products yet.", driver.page_source, "a new store's dashboard should say it has no products")
        return username, store_name, password

    def sign_up_customer(self, driver, name, email, back_to=None):
        """Creates a shopper's account through /account/signup (coming back to `back_to`, if given)."""
        driver.get(url("/account/signup" + (f"?next={back_to}" if back_to else "")))
        self.fill(driver, "name", name)
        self.fill(driver, "email", email)
        self.fill(driver, "password", "shopper-password-1")
        self.submit(driver, "Create my account")
        if back_to:
            self.assertEqual(driver.current_url, url(back_to), f"signing up as {email} did not come back to {back_to}:\n{self.notice(driver)}")
        else:
            self.assertEqual(self.heading(driver), "My account", f"signing up as {email} did not open the account:\n{self.notice(driver)}")

    def sign_out_customer(self, driver):
        driver.get(url("/account"))
        self.submit(driver, "Sign out")

    def sign_in_customer(self, driver, email, back_to):
        driver.get(url(f"/account/login?next={back_to}"))
        self.fill(driver, "email", email)
        self.fill(driver, "password", "shopper-password-1")
        self.submit(driver, "Sign in")
        self.assertEqual(driver.current_url, url(back_to), f"signing in as {email} did not come back to {back_to}:\n{self.notice(driver)}")

    def add_product(self, driver, name, price, stock, description=""):
        """Adds a product through the dashboard's form and returns its id."""
        driver.get(url("/dashboard"))
        driver.find_element(By.LINK_TEXT, "Add a product").click()
        self.wait(driver, EC.url_to_be(url("/dashboard/products/new")), "“Add a product” did not open the product form")
        self.fill(driver, "name", name)
        self.fill(driver, "description", description)
        self.fill(driver, "price", price)
        self.fill(driver, "stock", str(stock))
        self.assertEqual(driver.find_element(By.ID, "currency").get_attribute("value"), "USD", "the product form's default currency")
        self.assertTrue(driver.find_element(By.NAME, "available").is_selected(), "a new product should be available by default")
        self.submit(driver, "Save")
        self.assertEqual(driver.current_url, url("/dashboard"), f"saving {name} did not return to the dashboard:\n{self.notice(driver)}")
        row = self.row(driver, name)
        self.assertIsNotNone(row, f"the dashboard does not list the new product {name}")
        self.assertEqual(self.cell(row, 3), str(stock), f"the dashboard's stock of {name}")
        edit = row.find_element(By.LINK_TEXT, "Edit").get_attribute("href")
        match = re.search(r"/dashboard/products/(\d+)/edit$", edit)
        self.assertIsNotNone(match, f"unexpected edit link {edit}")
        return int(match.group(1))

    def start_sale(self, vendor, product_id, quantity, limit=1):
        """Starts a flash sale now through the dashboard's form; returns its id."""
        vendor.get(url("/dashboard/flash-sales"))
        vendor.find_element(By.CSS_SELECTOR, f"#product_id option[value='{product_id}']").click()
        self.fill(vendor, "quantity", str(quantity))
        self.fill(vendor, "starts_in", "0")
        self.fill(vendor, "duration", "30")
        self.fill(vendor, "per_buyer_limit", str(limit))
        self.submit(vendor, "Start the sale")
        match = re.search(r"/dashboard/flash-sales/(\d+)$", vendor.current_url)
        self.assertIsNotNone(match, f"starting the sale did not open its live page:\n{self.notice(vendor)}")
        return match.group(1)

    def screenshots(self, driver, name):
        """With SOUK_SCREENSHOTS set to a directory, keeps the page at a phone's and a desktop's width."""
        directory = os.environ.get("SOUK_SCREENSHOTS")
        if not directory:
            return
        os.makedirs(directory, exist_ok=True)
        for width in (390, 1280):
            driver.set_window_size(width, 1600)
            height = driver.execute_script("return document.documentElement.scrollHeight")
            driver.set_window_size(width, min(max(height, 800), 6000))
            driver.save_screenshot(os.path.join(directory, f"{name}-{width}.png"))
        driver.set_window_size(1280, 1600)

    def notice(self, driver):
        return "\n".join(e.text for e in driver.find_elements(By.CSS_SELECTOR, ".notice, .error"))


class StoreTests(BrowserTestCase):
    @dump_on_failure
    def test_vendor_journey_signup_product_image_store_order_dashboard(self):
        vendor = self.browser("vendor")
        username, store_name, _ = self.sign_up(vendor)
        product = unique("Brass lantern ")
        product_id = self.add_product(vendor, product, "12.50", 7, description="Hand-beaten, with a glass chimney")

        # The image form is on the product's edit page, reached from the dashboard.
        self.row(vendor, product).find_element(By.LINK_TEXT, "Edit").click()
        self.wait(vendor, EC.url_to_be(url(f"/dashboard/products/{product_id}/edit")), "“Edit” did not open the product's page")
        image_dir = tempfile.mkdtemp(prefix="souk-image.")
        self.addCleanup(shutil.rmtree, image_dir, ignore_errors=True)
        image_path = os.path.join(image_dir, "lantern.png")
        with open(image_path, "wb") as file:
            file.write(png())
        vendor.find_element(By.ID, "image").send_keys(image_path)
        self.submit(vendor, "Upload")
        self.assertEqual(vendor.current_url, url("/dashboard"), f"uploading the image did not return to the dashboard:\n{self.notice(vendor)}")

        # A customer looks at the store while the thumbnails are still being made (this caches the page).
        customer = self.browser("customer")
        customer.get(url(f"/s/{username}"))
        self.assertIsNotNone(self.row(customer, product), f"the store page /s/{username} does not list {product}")

        # The job runner makes the thumbnails; the dashboard shows the image once they exist.
        def thumbnail(d):
            row = self.row(d, product)
            images = row.find_elements(By.CSS_SELECTOR, "img.thumb") if row else []
            return images[0] if images else None

        image = self.wait_reloading(vendor, thumbnail, f"no thumbnail of {product} on the dashboard within {THUMBNAIL_TIMEOUT} s", THUMBNAIL_TIMEOUT)
        self.assertRegex(image.get_attribute("src"), r"/media/[^/]+\.jpg$", "the dashboard thumbnail's address")
        self.wait(vendor, lambda d: self.loaded_image(d, thumbnail(d)), "the dashboard thumbnail did not load")
        self.assertNotIn("processing", self.row(vendor, product).text, "the product is still marked processing once it has a thumbnail")

        # The store link on the dashboard opens the store, with the product and its image.
        vendor.find_element(By.LINK_TEXT, f"/s/{username}").click()
        self.wait(vendor, EC.url_to_be(url(f"/s/{username}")), "the dashboard's store link did not open the store")
        self.assertEqual(self.heading(vendor), store_name, "the store page's heading")
        self.assertIsNotNone(thumbnail(vendor), f"the vendor's view of the store shows no image for {product}")
        self.wait(vendor, lambda d: self.loaded_image(d, thumbnail(d)), "the store page's image did not load (vendor)")
        self.assert_no_script_errors(vendor, "the store page (vendor)")

        # The customer, who saw the store before the image was ready, sees it on the next visit.
        customer.refresh()
        self.assertIsNotNone(thumbnail(customer), f"a visitor's store page still shows {product} without its image after the thumbnails were made")
        self.wait(customer, lambda d: self.loaded_image(d, thumbnail(d)), "the store page's image did not load (customer)")
        row = self.row(customer, product)
        self.assertIn("12.50", self.cell(row, 2), "the store page's price")
        self.assertEqual(self.cell(row, 3), "7", "the store page's stock before the order")

        # The customer orders 2 through the store page's form.
        quantity = row.find_element(By.NAME, f"qty_{product_id}")
        quantity.clear()
        quantity.send_keys("2")
        customer_name = unique("Amina ")
        self.fill(customer, "name", customer_name)
        self.fill(customer, "phone", "+212 600 123 456")
        self.fill(customer, "address", "12 Derb Sidi Ahmed, Marrakesh")
        self.submit(customer, "Place order")
        self.assertRegex(customer.current_url, rf"/s/{username}/orders/[A-Z0-9]+$",
                         f"placing the order did not open its confirmation:\n{self.notice(customer)}")
        self.assertEqual(self.heading(customer), f"Thank you, {customer_name}!", "the confirmation's heading")
        confirmation = customer.find_element(By.CSS_SELECTOR, "p.ok")
        reference = confirmation.find_element(By.TAG_NAME, "strong").text.strip()
        self.assertTrue(reference and customer.current_url.endswith("/" + reference), f"the confirmation's reference {reference!r} is not the one in its URL")
        self.assertIn(f"at {store_name} is placed", confirmation.text, "the confirmation's status line")
        self.assertEqual(self.cell(self.order_line(customer, product), 2), "2", "the confirmation's quantity")
        self.assertIn("25.00", customer.find_element(By.XPATH, "//tr[th[normalize-space()='Total']]").text, "the confirmation's total (2 × 12.50)")
        self.assert_no_script_errors(customer, "the order confirmation")

        # The store shows the stock taken by the order.
        customer.get(url(f"/s/{username}"))
        self.assertEqual(self.cell(self.row(customer, product), 3), "5", "the store page's stock after ordering 2 of 7")

        # Back as the vendor: the order is on the orders page, and the stock went down by 2.
        vendor.get(url("/dashboard"))
        vendor.find_element(By.LINK_TEXT, "Orders").click()
        self.wait(vendor, EC.url_to_be(url("/dashboard/orders")), "the header's “Orders” link did not open the orders page")
        orders = vendor.find_elements(By.XPATH, f"//table//tr[td/strong[normalize-space()='{reference}']]")
        self.assertEqual(len(orders), 1, f"the vendor's orders page does not list order {reference} once")
        order = orders[0]
        self.assertIn(customer_name, order.text, "the order's customer on the vendor's orders page")
        self.assertIn(f"2 × {product}", order.text, "the order's line on the vendor's orders page")
        self.assertIn("25.00", self.cell(order, 4), "the order's total on the vendor's orders page")
        self.assertEqual(order.find_element(By.CSS_SELECTOR, ".status").text, "placed", "the new order's status")
        self.assertTrue(order.find_elements(By.XPATH, ".//button[normalize-space()='Mark confirmed']"), "a placed order offers “Mark confirmed”")
        self.assertIn("store link", order.text, "the order's source on the vendor's orders page")
        self.screenshots(vendor, "dashboard-orders")
        vendor.find_element(By.LINK_TEXT, "Products").click()
        self.wait(vendor, EC.url_to_be(url("/dashboard")), "the header's “Products” link did not open the dashboard")
        self.assertEqual(self.cell(self.row(vendor, product), 3), "5", "the dashboard's stock after an order of 2 from 7")

    def order_line(self, driver, name):
        rows = driver.find_elements(By.XPATH, f"//table//tr[td[1][normalize-space()='{name}']]")
        self.assertTrue(rows, f"no line for {name} on {driver.current_url}")
        return rows[0]

    @dump_on_failure
    def test_flash_sale_store_countdown_buy_and_live_counters(self):
        vendor = self.browser("vendor")
        username, _, _ = self.sign_up(vendor)
        product = unique("Saffron tin ")
        product_id = self.add_product(vendor, product, "9.99", 20)

        # A customer has the store open before the sale exists.
        customer = self.browser("customer")
        customer.get(url(f"/s/{username}"))
        self.assertEqual(customer.find_elements(By.CSS_SELECTOR, ".sale"), [], "a store with no flash sale shows one")

        # The vendor starts a sale now through the dashboard's form and lands on its live page.
        vendor.find_element(By.LINK_TEXT, "Flash sales").click()
        self.wait(vendor, EC.url_to_be(url("/dashboard/flash-sales")), "the header's “Flash sales” link did not open the flash sales page")
        self.assertIn("No flash sales yet.", vendor.page_source, "a new vendor's flash sales page")
        vendor.find_element(By.CSS_SELECTOR, f"#product_id option[value='{product_id}']").click()
        self.fill(vendor, "quantity", "5")
        self.fill(vendor, "starts_in", "0")
        self.fill(vendor, "duration", "30")
        self.fill(vendor, "per_buyer_limit", "1")
        self.submit(vendor, "Start the sale")
        match = re.search(r"/dashboard/flash-sales/(\d+)$", vendor.current_url)
        self.assertIsNotNone(match, f"starting the sale did not open its live page:\n{self.notice(vendor)}")
        sale_id = match.group(1)
        self.assertEqual(self.heading(vendor), f"Flash sale: {product}", "the live sale page's heading")
        panel = vendor.find_element(By.CSS_SELECTOR, f"[data-live-sale='{sale_id}']")

        def counter(name):
            return panel.find_element(By.CSS_SELECTOR, f"td.{name}").text.strip()

        self.assertEqual((counter("admitted"), counter("persisted"), counter("remaining")), ("0", "0", "5"),
                         "a new sale's admitted, persisted and remaining counters")
        self.assertEqual(panel.find_element(By.CSS_SELECTOR, "strong.status").text, "active", "a sale that starts now is active")
        # From here on the vendor's page must change by itself: mark this page load.
        vendor.execute_script("window.__soukMarker = 'sale-page'")

        # The customer's next visit shows the sale, with a running countdown and a buy button.
        customer.refresh()
        sales = customer.find_elements(By.CSS_SELECTOR, f".sale[data-sale-id='{sale_id}']")
        self.assertEqual(len(sales), 1, f"the store page does not show flash sale {sale_id} after it was created")
        sale = sales[0]
        self.assertIn(f"Flash sale: {product} at", sale.find_element(By.TAG_NAME, "h2").text, "the sale's heading on the store page")
        countdown = sale.find_element(By.CSS_SELECTOR, ".countdown")
        self.wait(customer, lambda d: re.fullmatch(r"Ends in (\d+h )?\d+m \d+s", countdown.text),
                  f"the sale's countdown did not start (it shows {countdown.text!r})")
        first = countdown.text
        self.wait(customer, lambda d: countdown.text != first, f"the countdown stays at {first!r}", timeout=5)
        self.wait(customer, lambda d: sale.find_element(By.CSS_SELECTOR, ".remaining").text == "5 of 5 left",
                  "the store page's remaining units did not read “5 of 5 left”")
        self.assertEqual(self.cell(self.row(customer, product), 3), "15", "the product's stock on the store page once 5 units went to the sale")
        buy = sale.find_element(By.XPATH, ".//button[normalize-space()='Buy now']")
        self.assertTrue(buy.is_enabled(), "the sale's “Buy now” button is disabled while the sale runs")

        # The customer signs up from the store (a shopper buys as the account it is signed in as),
        # comes back, buys one, and the page says it was admitted.
        ana = unique("ana.b.") + "@example.com"
        self.sign_up_customer(customer, "Ana B", ana, back_to=f"/s/{username}")
        self.wait(customer, lambda d: d.find_element(By.ID, "name").get_attribute("value") == "Ana B",
                  "the signed-in shopper's name did not fill the store's order form in")
        self.screenshots(customer, "store-signed-in")
        sale = customer.find_element(By.CSS_SELECTOR, f".sale[data-sale-id='{sale_id}']")
        self.submit(customer, "Buy now", scope=sale)
        self.assertEqual(self.heading(customer), "You got it!", f"buying did not report an admission:\n{self.notice(customer)}")
        admitted = customer.find_element(By.CSS_SELECTOR, "p.ok")
        self.assertIn(f"Your {product} from", admitted.text, "the admission message")
        self.assertTrue(admitted.find_element(By.TAG_NAME, "strong").text.strip(), "the admission shows no order id")
        self.assert_no_script_errors(customer, "the flash sale admission")

        # The vendor's live page counts it without a reload.
        self.wait(vendor, lambda d: (counter("admitted"), counter("persisted"), counter("remaining")) == ("1", "1", "4"),
                  "the live sale page did not show 1 admitted, 1 persisted, 4 remaining by itself")

        # A second buyer (Ana signs out, Bilal signs up), from the store page again; the counters move on.
        self.sign_out_customer(customer)
        self.sign_up_customer(customer, "Bilal C", unique("bilal.") + "@example.com", back_to=f"/s/{username}")
        sale = customer.find_element(By.CSS_SELECTOR, f".sale[data-sale-id='{sale_id}']")
        self.wait(customer, lambda d: sale.find_element(By.CSS_SELECTOR, ".remaining").text == "4 of 5 left",
                  "the store page's remaining units did not read “4 of 5 left” after one purchase")
        self.submit(customer, "Buy now", scope=sale)
        self.assertEqual(self.heading(customer), "You got it!", f"the second buyer was not admitted:\n{self.notice(customer)}")
        self.wait(vendor, lambda d: (counter("admitted"), counter("persisted"), counter("remaining")) == ("2", "2", "3"),
                  "the live sale page did not show 2 admitted, 2 persisted, 3 remaining by itself")
        bar = vendor.find_element(By.CSS_SELECTOR, ".bar-admitted").get_attribute("style")
        self.assertIn("width: 40%", bar, "the admitted bar's width for 2 of 5")
        self.assertEqual(vendor.execute_script("return window.__soukMarker"), "sale-page", "the live sale page was reloaded instead of updated in place")
        self.assert_no_script_errors(vendor, "the live sale page")

        # The same buyer again (Ana signs back in) is the same purchase, never a second unit.
        self.sign_out_customer(customer)
        self.sign_in_customer(customer, ana, f"/s/{username}")
        sale = customer.find_element(By.CSS_SELECTOR, f".sale[data-sale-id='{sale_id}']")
        self.submit(customer, "Buy now", scope=sale)
        self.assertIn("already", customer.page_source, "a repeated purchase by the same buyer is not reported as already admitted")
        time.sleep(1.2)  # two SSE pushes (every 0.5 s): the counters must not have moved
        self.assertEqual((counter("admitted"), counter("remaining")), ("2", "3"), "a repeated purchase by the same buyer took another unit")

    @dump_on_failure
    def test_a_store_showing_two_sales_takes_orders_and_sells_in_both(self):
        vendor = self.browser("vendor")
        username, store_name, _ = self.sign_up(vendor)
        tea, jam, fig = unique("Mint tea "), unique("Fig jam "), unique("Dried figs ")
        tea_id = self.add_product(vendor, tea, "4.50", 10)
        jam_id = self.add_product(vendor, jam, "6.00", 10)
        fig_id = self.add_product(vendor, fig, "3.25", 10)
        sales = [self.start_sale(vendor, tea_id, 3), self.start_sale(vendor, jam_id, 3)]

        # The first visitor renders the page into the cache; the second is served from it, as
        # everyone who follows a shared link is: every form on it must carry their own token.
        self.browser("first").get(url(f"/s/{username}"))
        customer = self.browser("customer")
        customer.get(url(f"/s/{username}"))
        self.assertEqual(self.heading(customer), store_name)
        tokens = [field.get_attribute("value") for field in customer.find_elements(By.CSS_SELECTOR, "form[method='post'] input[name='csrf']")]
        self.assertEqual(len(tokens), 3, "two sale forms and the order form")
        self.assertEqual(len(set(tokens)), 1, f"every form carries the same token: {tokens}")
        self.assertNotIn("__SOUK_CSRF", customer.page_source, "a form still carries the cache's placeholder")
        self.screenshots(customer, "store-two-sales")

        # An order through the store form.
        quantity = self.row(customer, fig).find_element(By.NAME, f"qty_{fig_id}")
        quantity.clear()
        quantity.send_keys("2")
        customer_name = unique("Samir ")
        self.fill(customer, "name", customer_name)
        self.fill(customer, "phone", "+212 600 000 111")
        self.fill(customer, "address", "3 Rue Tarik, Fes")
        self.submit(customer, "Place order")
        self.assertEqual(self.heading(customer), f"Thank you, {customer_name}!", f"the store order was refused:\n{self.notice(customer)}\n{customer.page_source[:500]}")

        # A unit in each sale, signed in, from the cached page each time.
        self.sign_up_customer(customer, customer_name, unique("samir.") + "@example.com")
        for sale_id in sales:
            customer.get(url(f"/s/{username}"))
            sale = customer.find_element(By.CSS_SELECTOR, f".sale[data-sale-id='{sale_id}']")
            self.submit(customer, "Buy now", scope=sale)
            self.assertEqual(self.heading(customer), "You got it!", f"buying in sale {sale_id} failed:\n{self.notice(customer)}")

        # The vendor cancels the first sale from its page: the store stops showing it.
        vendor.get(url(f"/dashboard/flash-sales/{sales[0]}"))
        self.screenshots(vendor, "flash-sale-cancel")
        self.submit(vendor, "Cancel this sale")
        self.assertEqual(vendor.find_element(By.CSS_SELECTOR, "strong.status").text, "ended", "a cancelled sale's status")
        self.assertEqual(vendor.find_elements(By.XPATH, "//button[normalize-space()='Cancel this sale']"), [], "an ended sale offers no cancel button")
        customer.get(url(f"/s/{username}"))
        self.assertEqual(customer.find_elements(By.CSS_SELECTOR, f".sale[data-sale-id='{sales[0]}']"), [], "the store still shows the cancelled sale")
        self.assertEqual(len(customer.find_elements(By.CSS_SELECTOR, f".sale[data-sale-id='{sales[1]}']")), 1, "the other sale is still shown")
        self.assert_no_script_errors(customer, "the store page")

    @dump_on_failure
    def test_checkout_order_page_updates_live(self):
        # There is no HTML way to start a checkout (nor to credit a buyer): set up through the JSON API.
        username, password = unique("v"), "correct-horse-battery"
        status, body = api("POST", "/api/v1/vendors", {"username": username, "password": password, "store_name": unique("Store ")})
        self.assertEqual(status, 201, f"POST /api/v1/vendors: {body}")
        status, body = api("POST", "/api/v1/sessions", {"username": username, "password": password})
        self.assertEqual(status, 201, f"POST /api/v1/sessions: {body}")
        token = body["token"]
        product = unique("Argan oil ")
        status, body = api("POST", "/api/v1/products", {"name": product, "description": "250 ml", "price_minor": 1800,
                                                         "currency": "USD", "stock": 10, "available": True}, token=token)
        self.assertEqual(status, 201, f"POST /api/v1/products: {body}")
        product_id = body["id"]
        buyer = unique("buyer-") + "@example.com"
        status, body = api("POST", "/api/v1/customers", {"email": buyer, "password": "shopper-password-1", "name": "Buyer"})
        self.assertEqual(status, 201, f"POST /api/v1/customers: {body}")
        status, body = api("POST", "/api/v1/customers/sessions", {"email": buyer, "password": "shopper-password-1"})
        self.assertEqual(status, 201, f"POST /api/v1/customers/sessions: {body}")
        buyer_token = body["token"]
        status, body = api("POST", f"/api/v1/wallets/{buyer}/credit", {"amount_minor": 5000}, token=token)
        self.assertEqual(status, 200, f"POST /api/v1/wallets/{buyer}/credit: {body}")

        customer = self.browser("customer")
        customer.get(url("/healthz"))  # the browser is up before the verifier's clock starts
        customer.add_cookie({"name": "souk_customer", "value": buyer_token, "path": "/"})  # signed in as the buyer
        started = time.monotonic()
        status, body = api("POST", "/api/v1/checkouts", {"items": [{"product_id": product_id, "quantity": 2}]}, token=buyer_token)
        self.assertEqual(status, 202, f"POST /api/v1/checkouts: {body}")
        self.assertEqual(body["status"], "in_progress", f"a new checkout's status: {body}")
        order_id = body["order_id"]

        # The buyer's order page, opened while the verifier is still deciding.
        customer.get(url(f"/checkouts/{order_id}"))
        opened = time.monotonic() - started
        customer.execute_script("window.__soukMarker = 'order-page'")
        panel = customer.find_element(By.CSS_SELECTOR, f"[data-live-order='{order_id}']")
        message = panel.find_element(By.CSS_SELECTOR, ".message")
        self.assertEqual(message.text, "In Progress: Credit check passed. User verification in progress...",
                         f"the order page, opened {opened:.1f} s after the checkout (the verifier takes {VERIFIER_DELAY}), should show it in progress")
        self.assertIn("in_progress", panel.find_element(By.CSS_SELECTOR, ".status-message").get_attribute("class"), "the in-progress status class")
        self.assertIn(product, panel.text, "the order page's line")
        self.assertIn("36.00", panel.text, "the order page's total (2 × 18.00)")

        # The verdict arrives over SSE and the page changes by itself.
        self.wait(customer, lambda d: message.text != "In Progress: Credit check passed. User verification in progress...",
                  f"the order page still shows it in progress {VERDICT_TIMEOUT} s later", timeout=VERDICT_TIMEOUT)
        decided = time.monotonic() - started
        self.assertEqual(message.text, "Success: Buy order complete.", "the order page's verdict (the simulated verifier approves everyone)")
        self.assertIn("confirmed", panel.find_element(By.CSS_SELECTOR, ".status-message").get_attribute("class"), "the confirmed status class")
        self.assertEqual(customer.execute_script("return window.__soukMarker"), "order-page", "the order page was reloaded instead of updated in place")
        self.assertEqual(customer.execute_script("return performance.getEntriesByType('navigation').length"), 1, "the order page navigated")
        self.assertLess(decided, VERDICT_TIMEOUT, "the verdict took too long")
        self.assert_no_script_errors(customer, "the live order page")

        # The API agrees, and a fresh load of the page shows the verdict too.
        status, body = api("GET", f"/api/v1/orders/{order_id}", token=buyer_token)
        self.assertEqual((status, body.get("status") if isinstance(body, dict) else body), (200, "confirmed"), f"GET /api/v1/orders/{order_id}: {body}")
        status, body = api("GET", f"/api/v1/orders/{order_id}")
        self.assertEqual(status, 401, f"GET /api/v1/orders/{order_id} without signing in: {body}")
        customer.refresh()
        self.assertEqual(customer.find_element(By.CSS_SELECTOR, ".message").text, "Success: Buy order complete.", "the reloaded order page's verdict")

        # "My orders" follows the vendor's changes by itself: a store order placed signed in, its
        # status moved by the vendor while the account page is open.
        status, body = api("POST", f"/api/v1/stores/{username}/orders",
                           {"customer": {"name": "Buyer", "phone": "0123456789", "address": "1 Road"}, "items": [{"product_id": product_id, "quantity": 1}]},
                           token=buyer_token)
        self.assertEqual(status, 201, f"a store order placed signed in: {body}")
        reference, number = body["reference"], body["id"]
        customer.get(url("/account"))
        customer.execute_script("window.__soukMarker = 'account'")
        row = customer.find_element(By.CSS_SELECTOR, f"[data-order-id='{reference}']")
        self.assertEqual(row.find_element(By.CSS_SELECTOR, ".status").text, "placed", "the store order in My orders")
        status, body = api("PATCH", f"/api/v1/orders/{number}", {"status": "confirmed"}, token=token)
        self.assertEqual(status, 200, f"PATCH /api/v1/orders/{number}: {body}")
        self.wait(customer, lambda d: row.find_element(By.CSS_SELECTOR, ".status").text == "confirmed",
                  "My orders did not show the vendor's change by itself", timeout=15)
        self.assertEqual(customer.execute_script("return window.__soukMarker"), "account", "the account page was reloaded instead of updated in place")
        self.assert_no_script_errors(customer, "the live account page")


if __name__ == "__main__":
    unittest.main()
