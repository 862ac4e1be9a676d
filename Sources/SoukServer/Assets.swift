import Hummingbird
import NIOCore

/// The one script Souk's pages use (served from our own origin, as the Content-Security-Policy
/// requires): countdowns, live flash-sale counters over SSE, and remaining units on the store page.
enum Assets {
    static func addRoutes(to router: Router<SoukRequestContext>) {
        router.get("assets/souk.js") { _, _ in
            Response(
                status: .ok,
                headers: [.contentType: "text/javascript; charset=utf-8", .cacheControl: "public, max-age=3600"],
                body: .init(byteBuffer: ByteBuffer(string: script)))
        }
    }

    static let script = #"""
        "use strict";
        // A form that undoes something (a refund) asks first.
        document.addEventListener("submit", function (event) {
          const form = event.target;
          if (form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) event.preventDefault();
        });
        function soukDuration(ms) {
          if (ms <= 0) return "now";
          const s = Math.floor(ms / 1000), d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
          return (d ? d + "d " : "") + (h ? h + "h " : "") + m + "m " + (s % 60) + "s";
        }
        function soukTick() {
          const now = Date.now();
          document.querySelectorAll("[data-sale-starts]").forEach(function (el) {
            const starts = Date.parse(el.dataset.saleStarts), ends = Date.parse(el.dataset.saleEnds);
            const label = el.querySelector(".countdown"), button = el.querySelector("button");
            if (now >= ends) { el.hidden = true; return; }
            if (now < starts) { label.textContent = "Starts in " + soukDuration(starts - now); if (button) button.disabled = true; }
            else { label.textContent = "Ends in " + soukDuration(ends - now); if (button && !el.dataset.soldOut) button.disabled = false; }
          });
          // A held order's time to pay, counting down.
          document.querySelectorAll("[data-deadline]").forEach(function (el) {
            const left = Date.parse(el.dataset.deadline) - now;
            el.textContent = left > 0 ? "(" + soukDuration(left) + " left)" : "(time is up)";
          });
        }
        function soukRemaining() {
          document.querySelectorAll("[data-sale-id]").forEach(function (el) {
            fetch("/api/v1/flash-sales/" + el.dataset.saleId).then(function (r) { return r.json(); }).then(function (sale) {
              const left = el.querySelector(".remaining");
              if (left) left.textContent = sale.remaining + " of " + sale.quantity + " left";
              if (sale.status === "sold_out") { el.dataset.soldOut = "1"; const b = el.querySelector("button"); if (b) { b.disabled = true; b.textContent = "Sold out"; } }
            }).catch(function () {});
          });
        }
        function soukLive() {
          const panel = document.querySelector("[data-live-sale]");
          if (!panel) return;
          const events = new EventSource("/api/v1/flash-sales/" + panel.dataset.liveSale + "/events");
          events.addEventListener("stats", function (e) {
            const s = JSON.parse(e.data);
            ["admitted", "persisted", "pending", "remaining", "held", "paid", "expired", "status"].forEach(function (k) {
              const cell = panel.querySelector("." + k); if (cell) cell.textContent = s[k];
            });
            panel.querySelector(".bar-admitted").style.width = (100 * s.admitted / s.quantity) + "%";
            panel.querySelector(".bar-persisted").style.width = (100 * s.persisted / s.quantity) + "%";
          });
        }
        function soukOrder() {
          const panel = document.querySelector("[data-live-order]");
          if (!panel) return;
          const events = new EventSource("/api/v1/orders/" + panel.dataset.liveOrder + "/events");
          events.addEventListener("order", function (e) {
            const order = JSON.parse(e.data);
            panel.querySelector(".message").textContent = order.message;
            panel.querySelector(".status-message").className = "status-message " + order.status;
            if (order.status !== "in_progress") events.close();
          });
        }
        function soukAnalytics() {
          const panel = document.querySelector("[data-live-analytics]");
          if (!panel) return;
          const events = new EventSource("/dashboard/analytics/events");
          events.addEventListener("analytics", function (e) { panel.innerHTML = e.data; });
        }
        function soukSuggest() {
          document.querySelectorAll("[data-suggest]").forEach(function (input) {
            const list = document.getElementById(input.getAttribute("list"));
            let timer = null;
            input.addEventListener("input", function () {
              clearTimeout(timer);
              const text = input.value.trim();
              if (text.length < 2) return;
              timer = setTimeout(function () {
                fetch("/api/v1/search/suggest?q=" + encodeURIComponent(text)).then(function (r) { return r.json(); }).then(function (body) {
                  list.replaceChildren.apply(list, (body.suggestions || []).map(function (name) {
                    const option = document.createElement("option"); option.value = name; return option;
                  }));
                }).catch(function () {});
              }, 120);
            });
          });
        }
        document.addEventListener("DOMContentLoaded", function () {
          soukTick(); soukRemaining(); soukLive(); soukOrder(); soukSuggest(); soukAnalytics();
          setInterval(soukTick, 1000); setInterval(soukRemaining, 2000);
          if (document.querySelector("[data-my-orders]")) setInterval(soukMyOrders, 5000);
          soukRequestKeys();
        });
        // Back to a page kept by the browser: what is sent from it now is a new request.
        window.addEventListener("pageshow", function (e) {
          if (!e.persisted) return;
          document.querySelectorAll("[data-request-key]").forEach(function (input) { input.value = ""; });
          soukRequestKeys();
        });
        // Each load of a form names its request, so sending it twice (a double click, a retry after
        // a lost answer) places one order; a page shown again after an error gets a new name.
        function soukRequestKeys() {
          document.querySelectorAll("[data-request-key]").forEach(function (input) {
            if (input.value) return;
            const bytes = new Uint8Array(16);
            crypto.getRandomValues(bytes);
            input.value = Array.from(bytes, function (b) { return b.toString(16).padStart(2, "0"); }).join("");
          });
        }
        // "My orders": the statuses of the orders on the page, read again every few seconds.
        function soukMyOrders() {
          if (document.hidden) return;
          fetch("/api/v1/customers/me/orders?limit=50", { credentials: "same-origin", headers: { "X-Souk-CSRF": "1" } }).then(function (r) { return r.ok ? r.json() : null; }).then(function (page) {
            if (!page) return;
            page.orders.forEach(function (order) {
              const row = document.querySelector('[data-order-id="' + CSS.escape(String(order.id)) + '"]');
              if (!row) return;
              const status = row.querySelector(".status"), payment = row.querySelector(".payment");
              if (status) status.textContent = String(order.status).replace(/_/g, " ");
              if (payment) payment.textContent = String(order.payment_status).replace(/_/g, " ");
            });
          }).catch(function () {});
        }
        // A signed-in shopper's details fill an empty order form in (the page itself is the same for
        // everyone, so that it can be cached).
        (function () {
          if (document.cookie.split("; ").indexOf("souk_shopper=1") < 0) return;
          const name = document.getElementById("name"), phone = document.getElementById("phone"), address = document.getElementById("address");
          if (!name || !phone || !address || !name.form || name.value || phone.value || address.value) return;
          fetch("/api/v1/customers/me", { credentials: "same-origin", headers: { "X-Souk-CSRF": "1" } }).then(function (r) { return r.ok ? r.json() : null; }).then(function (me) {
            if (!me) return;
            const last = me.shipping || {};
            if (!name.value) name.value = last.name || me.name || "";
            if (!phone.value && last.phone) phone.value = last.phone;
            if (!address.value && last.address) address.value = last.address;
          }).catch(function () {});
        })();
        """#
}
