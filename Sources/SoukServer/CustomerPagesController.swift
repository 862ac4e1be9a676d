import Foundation
import HTTPTypes
import Hummingbird
import SoukCore

/// The shopper's pages: create an account, sign in and out, and the account page. The session is
/// the customer token (``CustomerTokens``) in an HttpOnly cookie, so the store pages stay the same
/// for everyone and can be cached; a purchase reads the cookie.
struct CustomerPagesController: Sendable {
    let services: SoukServices
    var pages: PageRenderer { services.pages }

    func addRoutes(to router: RouterGroup<SoukRequestContext>) {
        router.get("account", use: account)
        router.get("account/login", use: loginForm)
        router.post("account/login", use: logIn)
        router.get("account/signup", use: signupForm)
        router.post("account/signup", use: signUp)
        router.post("account/logout", use: logOut)
        router.post("account/verification", use: sendCode)
        router.post("account/verification/confirm", use: confirmCode)
        router.get("outbox", use: outbox)
        router.get("account/orders/:id/pay", use: payForm)
        router.post("account/orders/:id/pay", use: pay)
    }

    @Sendable func account(_ request: Request, context: SoukRequestContext) async throws -> Response {
        guard let customer = try await signedInCustomer(context) else { return .redirect(to: "/account/login", type: .found) }
        return try await accountPage(customer, request: request, context: context)
    }

    /// The customer the session cookie names, if it is still an account.
    private func signedInCustomer(_ context: SoukRequestContext) async throws -> Customer? {
        guard let identity = context.customer else { return nil }
        return try await services.customerAccounts.customer(named: identity.customerID)
    }

    /// The account page, with a message or the verification form's errors where there are some.
    private func accountPage(_ customer: Customer, request: Request, context: SoukRequestContext, extra: [String: Any] = [:], status: HTTPResponse.Status = .ok) async throws -> Response {
        let after = request.uri.queryParameters["cursor"].flatMap { OrderListPosition(cursor: $0) }
        let (orders, next) = try await OrderListAPI.page(services.storage, OrderFilter(owner: .customer(customer.id)), after: after, limit: 20)
        let values: [String: Any] = [
            "name": customer.name, "email": customer.email, "has_orders": !orders.isEmpty, "older": next ?? NSNull(),
            "verified": customer.verifiedAt != nil, "outbox": services.emailVerification.usesOutbox,
            "orders": orders.map { order -> [String: Any] in
                let link: String? = switch order.source {
                case .store: "/s/\(order.storeUsername)/orders/\(order.id)"
                case .checkout: "/checkouts/\(order.id)"
                case .flashSale: nil
                }
                let payable = order.source == .flashSale && order.status == FlashSaleOrderStatus.held.rawValue
                return [
                    "id": order.id, "link": link ?? NSNull(), "store": order.storeName, "store_username": order.storeUsername,
                    "pay_link": payable ? "/account/orders/\(order.id)/pay" : NSNull(),
                    "pay_before": order.holdExpiresAt.map { PagesController.minuteFormat.format($0) } ?? NSNull(),
                    "pay_before_iso": order.holdExpiresAt.map(JSONResponse.timestamp) ?? NSNull(),
                    "source": PagesController.sourceLabels[order.source] ?? order.source.rawValue,
                    "lines": order.lines.map { ["quantity": $0.quantity, "name": $0.name] }, "total": order.total.formatted,
                    "status": order.status.replacingOccurrences(of: "_", with: " "), "payment": order.paymentStatus.rawValue.replacingOccurrences(of: "_", with: " "),
                    "placed_at": PagesController.minuteFormat.format(order.createdAt),
                ]
            },
        ]
        return pages.page("account", title: "My account", values.merging(extra) { $1 }, context: context, status: status)
    }

    // MARK: Paying for a flash-sale order

    @Sendable func payForm(_ request: Request, context: SoukRequestContext) async throws -> Response {
        guard let customer = try await signedInCustomer(context) else { return .redirect(to: "/account/login?next=/account", type: .found) }
        let order = try await flashSaleOrder(context, of: customer)
        let last = try await services.storage.lastShippingContact(customerID: customer.id)
        let shipping = ShippingContact(name: last?.name ?? customer.name, phone: last?.phone ?? "", address: last?.address ?? "")
        return try await payPage(order, customer: customer, shipping: shipping, context: context)
    }

    @Sendable func pay(_ request: Request, context: SoukRequestContext) async throws -> Response {
        let form = try await Form.read(request, context: context)
        guard let customer = try await signedInCustomer(context) else { return .redirect(to: "/account/login?next=/account", type: .found) }
        let order = try await flashSaleOrder(context, of: customer)
        let shipping = ShippingContact(name: form["name"] ?? "", phone: form["phone"] ?? "", address: form["address"] ?? "")
        let method = form["method"] ?? PaymentMethod.credit.rawValue
        do {
            // The card's number is never put back into the page, whatever happens.
            let card = method == PaymentMethod.card.rawValue
                ? FlashSalePaymentRequest.CardInput(
                    number: form["card_number"], expiryMonth: form["card_exp_month"].flatMap { Int($0.trimmingCharacters(in: .whitespaces)) },
                    expiryYear: form["card_exp_year"].flatMap { Int($0.trimmingCharacters(in: .whitespaces)) }, securityCode: form["card_cvc"])
                : nil
            let payment = try FlashSalePaymentRequest(orderID: order.id, buyerID: customer.id, method: method,
                                                      name: shipping.name, phone: shipping.phone, address: shipping.address, card: card)
            try await services.rateGuard.checkCheckout(buyer: customer.id, request: request, context: context)
            let checkout = try await services.checkouts.pay(payment)
            return .redirect(to: "/checkouts/\(checkout.id)", type: .normal)
        } catch let error as SoukError {
            var extra: [String: Any] = ["method_card": method == PaymentMethod.card.rawValue, "method_credit": method != PaymentMethod.card.rawValue]
            if case .validationFailed(let fields) = error { extra["errors"] = PageRenderer.errorMap(fields) } else { extra["formError"] = error.message }
            var response = try await payPage(order, customer: customer, shipping: shipping, context: context, extra: extra, status: ErrorMiddleware.status(of: error))
            response.setRetryAfter(error.retryAfterSeconds)
            return response
        }
    }

    /// The customer's flash-sale order named in the path; anyone else's is not found. One admitted
    /// a moment ago ("You got it" links here) is looked for again while the workers record it.
    private func flashSaleOrder(_ context: SoukRequestContext, of customer: Customer) async throws -> OrderSummary {
        guard let id = context.parameters.get("id"), AdmittedOrder.isWellFormedID(id) else { throw SoukError.notFound("Order") }
        for wait in Checkouts.recordingWaits + [nil] {
            if let order = try await services.storage.orderSummaries(
                OrderFilter(owner: .customer(customer.id), source: .flashSale, query: id), after: nil, limit: 1).first(where: { $0.id == id }) {
                return order
            }
            guard let wait else { break }
            try await Task.sleep(for: wait)
        }
        throw SoukError.notFound("Order")
    }

    private func payPage(_ order: OrderSummary, customer: Customer, shipping: ShippingContact, context: SoukRequestContext,
                         extra: [String: Any] = [:], status: HTTPResponse.Status = .ok) async throws -> Response {
        let balance = try await services.checkouts.store.wallet(vendorID: order.vendorID, buyerID: customer.id)?.balanceMinor ?? 0
        let values: [String: Any] = [
            "id": order.id, "store": order.storeName, "store_username": order.storeUsername, "total": order.total.formatted,
            "lines": order.lines.map { ["quantity": $0.quantity, "name": $0.name] },
            "status": order.status, "payable": order.status == FlashSaleOrderStatus.held.rawValue,
            "pay_before": order.holdExpiresAt.map { PagesController.minuteFormat.format($0) } ?? NSNull(),
                    "pay_before_iso": order.holdExpiresAt.map(JSONResponse.timestamp) ?? NSNull(),
            "balance": Money(minor: balance, currency: order.total.currency).formatted,
            "ship_name": shipping.name, "ship_phone": shipping.phone, "ship_address": shipping.address,
            // Credit is offered first when it covers the order.
            "method_credit": balance >= order.total.minor, "method_card": balance < order.total.minor,
        ]
        return pages.page("flash_sale_pay", title: "Pay for your order", values.merging(extra) { $1 }, context: context, status: status)
    }

    @Sendable func sendCode(_ request: Request, context: SoukRequestContext) async throws -> Response {
        _ = try await Form.read(request, context: context)
        guard let customer = try await signedInCustomer(context) else { return .redirect(to: "/account/login", type: .found) }
        guard customer.verifiedAt == nil else { return .redirect(to: "/account", type: .found) }
        do {
            try await services.emailVerification.sendRequestedCode(to: customer, rateGuard: services.rateGuard)
        } catch let error as SoukError {
            var response = try await accountPage(customer, request: request, context: context, extra: ["formError": error.message], status: ErrorMiddleware.status(of: error))
            response.setRetryAfter(error.retryAfterSeconds)
            return response
        }
        return try await accountPage(customer, request: request, context: context, extra: ["notice": "A new code is on its way to \(customer.email); the one before no longer works."])
    }

    @Sendable func confirmCode(_ request: Request, context: SoukRequestContext) async throws -> Response {
        let form = try await Form.read(request, context: context)
        guard let customer = try await signedInCustomer(context) else { return .redirect(to: "/account/login", type: .found) }
        do {
            _ = try await services.emailVerification.confirm(customer, code: form["code"] ?? "")
        } catch let error as SoukError {
            var extra: [String: Any] = [:]
            if case .validationFailed(let fields) = error { extra["errors"] = PageRenderer.errorMap(fields) } else { extra["formError"] = error.message }
            return try await accountPage(customer, request: request, context: context, extra: extra, status: ErrorMiddleware.status(of: error))
        }
        // The session now says "verified": the flash-sale lanes read that from the cookie.
        guard let verified = try await services.customerAccounts.customer(named: customer.id) else { return .redirect(to: "/account/login", type: .found) }
        return signedIn(verified, request: request, redirectTo: "/account")
    }

    /// The embedded mailer's outbox, for the person at this machine: shown only when no mail
    /// server is configured, and only to a client on the loopback interface (never through a proxy,
    /// which would make every client look local), because the codes in it unlock accounts.
    @Sendable func outbox(_ request: Request, context: SoukRequestContext) async throws -> Response {
        guard services.emailVerification.usesOutbox, !services.rateGuard.behindProxy, request.headers[.xForwardedFor] == nil,
              let peer = context.peerAddress, peer == "::1" || peer.hasPrefix("127.") || peer == "::ffff:127.0.0.1"
        else { throw SoukError.notFound("Page") }
        let mails = try await services.storage.outbox(limit: 50).map { entry -> [String: Any] in
            ["subject": entry.mail.subject, "to": entry.mail.to, "body": entry.mail.body, "sent_at": PagesController.minuteFormat.format(entry.createdAt)]
        }
        return pages.page("outbox", title: "Outbox", ["mails": mails], context: context)
    }

    @Sendable func loginForm(_ request: Request, context: SoukRequestContext) async throws -> Response {
        pages.page("account_login", title: "Sign in", ["next": Self.next(request.uri.queryParameters["next"].map(String.init))], context: context)
    }

    @Sendable func logIn(_ request: Request, context: SoukRequestContext) async throws -> Response {
        let form = try await Form.read(request, context: context)
        let next = Self.next(form["next"])
        let values: [String: Any] = ["email": form["email"] ?? "", "next": next]
        let found: Customer?
        do {
            found = try await services.rateGuard.login(username: form["email"] ?? "", request: request, context: context, authenticate: {
                try await services.customerAccounts.authenticate(email: form["email"] ?? "", password: form["password"] ?? "")
            })
        } catch let error as SoukError {
            var response = pages.page("account_login", title: "Sign in", values.merging(["formError": error.message]) { $1 }, context: context, status: ErrorMiddleware.status(of: error))
            response.setRetryAfter(error.retryAfterSeconds)
            return response
        }
        guard let customer = found else {
            return pages.page("account_login", title: "Sign in", values.merging(["formError": "That email and password do not match."]) { $1 }, context: context, status: .unauthorized)
        }
        return signedIn(customer, request: request, redirectTo: next)
    }

    @Sendable func signupForm(_ request: Request, context: SoukRequestContext) async throws -> Response {
        pages.page("account_signup", title: "Create your account", ["next": Self.next(request.uri.queryParameters["next"].map(String.init))], context: context)
    }

    @Sendable func signUp(_ request: Request, context: SoukRequestContext) async throws -> Response {
        let form = try await Form.read(request, context: context)
        let next = Self.next(form["next"])
        let values: [String: Any] = ["email": form["email"] ?? "", "name": form["name"] ?? "", "next": next]
        do {
            let signup = try CustomerSignup(email: form["email"] ?? "", password: form["password"] ?? "", name: form["name"] ?? "")
            try await services.rateGuard.check([(.signupPerAddress, services.rateGuard.clientAddress(request, context))])
            let customer = try await services.customerAccounts.signUp(signup)
            await CustomerController.sendFirstCode(to: customer, services: services, context: context)
            return signedIn(customer, request: request, redirectTo: next)
        } catch let error as SoukError {
            var values = values
            if case .validationFailed(let fields) = error { values["errors"] = PageRenderer.errorMap(fields) } else { values["formError"] = error.message }
            var response = pages.page("account_signup", title: "Create your account", values, context: context, status: ErrorMiddleware.status(of: error))
            response.setRetryAfter(error.retryAfterSeconds)
            return response
        }
    }

    @Sendable func logOut(_ request: Request, context: SoukRequestContext) async throws -> Response {
        _ = try await Form.read(request, context: context)
        if let identity = context.customer { try await services.customerTokens.revoke(identity) }
        var response = Response.redirect(to: "/", type: .found)
        response.setCookie(services.cookies.cookie(name: CustomerTokens.cookieName, value: "", maxAge: 0, request: request))
        response.setCookie(services.cookies.cookie(name: CustomerTokens.hintCookieName, value: "", maxAge: 0, request: request, httpOnly: false))
        return response
    }

    private func signedIn(_ customer: Customer, request: Request, redirectTo location: String) -> Response {
        let session = services.customerTokens.issue(for: customer)
        var response = Response.redirect(to: location, type: .found)
        let maxAge = Int(services.customerTokens.lifetime.components.seconds)
        response.setCookie(services.cookies.cookie(name: CustomerTokens.cookieName, value: session.token, maxAge: maxAge, request: request))
        // Readable by the page's script, which then fills the store's form in; it proves nothing.
        response.setCookie(services.cookies.cookie(name: CustomerTokens.hintCookieName, value: "1", maxAge: maxAge, request: request, httpOnly: false))
        return response
    }

    /// Where to go after signing in: a path of this site only (never `//elsewhere` or a URL), else the account.
    static func next(_ raw: String?) -> String {
        guard let raw, raw.hasPrefix("/"), !raw.hasPrefix("//"), !raw.hasPrefix("/\\"), raw.utf8.count <= 200,
              raw.unicodeScalars.allSatisfy({ $0.isASCII && $0.value > 0x20 && $0.value != 0x7F })
        else { return "/account" }
        return raw
    }
}
