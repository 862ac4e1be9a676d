/// The HTML templates, compiled into the binary so that `souk` runs from anywhere with no assets.
enum Templates {
    static let all: [String: String] = [
        "header": header, "footer": footer, "error": error, "home": home, "signup": signup, "login": login,
        "products": products, "product_form": productForm, "orders": orders, "store": store, "search": search, "search_box": searchBox, "analytics": analytics, "analytics_panel": analyticsPanel, "order_placed": orderPlaced,
        "flash_sales": flashSales, "flash_sale": flashSale, "flash_sale_admitted": flashSaleAdmitted, "flash_sale_pay": flashSalePay, "checkout": checkout,
        "api_docs": apiDocs, "account": account, "account_login": accountLogin, "account_signup": accountSignup, "outbox": outbox,
    ]

    static let header = """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">
        <title>{{title}} · Souk</title>
        <style>
        body{font-family:system-ui,sans-serif;margin:0;color:#222;background:#faf8f5}
        header{background:#5b3a29;color:#fff;padding:.7rem 1.5rem;display:flex;gap:1.2rem;align-items:center}
        header a{color:#fff;text-decoration:none}header .brand{font-weight:700;font-size:1.2rem;margin-right:auto}
        header form{margin:0}header button{background:none;border:1px solid #fff;color:#fff;padding:.2rem .6rem;border-radius:4px;cursor:pointer}
        main{max-width:960px;margin:1.5rem auto;padding:0 1.5rem}
        .stats{display:flex;gap:1rem;flex-wrap:wrap}.stats .card{flex:1;min-width:9rem}.stats strong{font-size:1.5rem}
        img.thumb{float:left;margin-right:.6rem;object-fit:cover;border-radius:4px}
        form.search{display:flex;gap:.5rem;margin:0 0 1rem}form.search input[type=search]{flex:1;max-width:28rem}
        table{border-collapse:collapse;width:100%;background:#fff}th,td{padding:.5rem;border-bottom:1px solid #e6e0da;text-align:left;vertical-align:top}
        .num{text-align:right}.muted{color:#777}.error{color:#b00020}.notice{background:#fdecea;border:1px solid #f5c2c0;padding:.6rem 1rem;border-radius:6px}
        .ok{background:#e8f5e9;border:1px solid #b7dfb9;padding:.6rem 1rem;border-radius:6px}
        label{display:block;margin:.7rem 0 .2rem;font-weight:600}input,textarea,select{font:inherit;padding:.4rem;width:100%;max-width:420px;box-sizing:border-box}
        input[type=number].qty{width:5rem}input[type=checkbox]{width:auto}pre.mail{white-space:pre-wrap;overflow-wrap:anywhere}
        button,.button{background:#5b3a29;color:#fff;border:0;padding:.45rem .9rem;border-radius:4px;cursor:pointer;font:inherit;text-decoration:none;display:inline-block}
        button.secondary{background:#8d7b6f}button.danger{background:#b00020}form.inline{display:inline}
        .status{padding:.1rem .5rem;border-radius:10px;background:#eee;font-size:.85rem}
        .card{background:#fff;border:1px solid #e6e0da;border-radius:8px;padding:1rem 1.5rem;margin-bottom:1rem}
        .sale{border:2px solid #c0392b;background:#fff6f4}.countdown{font-weight:700;color:#c0392b}
        .bar{background:#eee;height:1.4rem;border-radius:4px;position:relative;overflow:hidden;max-width:600px}
        .bar div{position:absolute;top:0;bottom:0;left:0}.bar-admitted{background:#f0b27a}.bar-persisted{background:#5b3a29}
        form.filters{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:flex-end;margin-bottom:1rem}form.filters label{margin:0;font-weight:400}
        form.filters select,form.filters input{width:auto;display:block}.button.secondary{background:#8d7b6f}
        fieldset{border:1px solid #e6e0da;border-radius:6px;margin:1rem 0;padding:.5rem 1rem 1rem;max-width:420px}legend{font-weight:600}
        label.choice{font-weight:400;display:flex;gap:.5rem;align-items:center}label.choice input{width:auto}
        .row{display:flex;gap:.6rem}.row>div{flex:1;min-width:0}
        .badge{font-size:.75rem;background:#f1e9e2;color:#5b3a29;border-radius:8px;padding:0 .4rem;white-space:nowrap}.table-scroll{overflow-x:auto}
        table.orders td:first-child{word-break:break-all;max-width:14rem}table.orders td:first-child .muted{word-break:normal}.countdown{white-space:nowrap}
        @media (max-width:600px){header{flex-wrap:wrap;gap:.4rem 1rem;padding:.6rem 1rem}main{padding:0 1rem}
        table.orders,table.orders tbody,table.orders tr,table.orders td{display:block;width:auto;max-width:none}table.orders tr:first-child{display:none}
        table.orders tr{border-bottom:1px solid #e6e0da;padding:.5rem 0}table.orders td{border:0;padding:.15rem .6rem}table.orders td.num{text-align:left}}
        </style><script src="/assets/souk.js" defer></script></head><body>
        <header><a class="brand" href="/">Souk</a>
        {{#vendor}}<a href="/dashboard">Products</a><a href="/dashboard/orders">Orders</a><a href="/dashboard/flash-sales">Flash sales</a><a href="/dashboard/analytics">Analytics</a><a href="/s/{{username}}">My store</a>
        <form method="post" action="/logout"><input type="hidden" name="csrf" value="{{csrf}}"><button>Log out {{username}}</button></form>{{/vendor}}
        {{^vendor}}<a href="/account">My account</a><a href="/login">Sell on Souk</a>{{/vendor}}
        </header><main>
        """

    static let footer = """
        </main></body></html>
        """

    static let error = """
        {{> header}}<h1>{{title}}</h1><p class="notice">{{message}}</p><p><a href="/">Back to Souk</a></p>{{> footer}}
        """

    static let home = """
        {{> header}}<h1>Open your store in a minute</h1>
        <p>Souk gives every vendor a store link to share with customers, and a dashboard for products and orders.</p>
        <p><a class="button" href="/signup">Open a store</a> <a href="/login">or log in</a></p>
        {{#demo}}<p class="muted">Try the demo store: <a href="/s/{{demo}}">/s/{{demo}}</a></p>{{/demo}}
        {{> footer}}
        """

    static let signup = """
        {{> header}}<h1>Open a store</h1>
        {{#formError}}<p class="notice">{{formError}}</p>{{/formError}}
        <form method="post" action="/signup" class="card"><input type="hidden" name="csrf" value="{{csrf}}">
        <label for="username">Username (your store link)</label><input id="username" name="username" value="{{username}}" required maxlength="32" autocomplete="username">
        {{#errors.username}}<div class="error">Username {{errors.username}}</div>{{/errors.username}}
        <label for="store_name">Store name</label><input id="store_name" name="store_name" value="{{store_name}}" required maxlength="100">
        {{#errors.store_name}}<div class="error">Store name {{errors.store_name}}</div>{{/errors.store_name}}
        <label for="password">Password</label><input id="password" name="password" type="password" required minlength="8" autocomplete="new-password">
        {{#errors.password}}<div class="error">Password {{errors.password}}</div>{{/errors.password}}
        <p><button>Create my store</button></p></form>
        <p>Already selling? <a href="/login">Log in</a></p>{{> footer}}
        """

    static let account = """
        {{> header}}<h1>My account</h1>
        {{#notice}}<p class="notice">{{notice}}</p>{{/notice}}
        <div class="card"><p><strong>{{name}}</strong><br><span class="muted">{{email}}</span>{{#verified}} <span class="badge">verified</span>{{/verified}}</p>
        <form method="post" action="/account/logout"><input type="hidden" name="csrf" value="{{csrf}}"><button class="secondary">Sign out</button></form></div>
        {{^verified}}<div class="card" id="verify"><h2>Verify your email</h2>
        <p>Some flash sales are for verified customers only. We mailed a 6-digit code to <strong>{{email}}</strong>{{#outbox}} (no mail server is set up here: it is in the <a href="/outbox">outbox</a>){{/outbox}}.</p>
        {{#formError}}<p class="notice">{{formError}}</p>{{/formError}}
        <form method="post" action="/account/verification/confirm"><input type="hidden" name="csrf" value="{{csrf}}">
        <label for="code">Code from the email</label><input id="code" name="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9 ]{6,7}" maxlength="7" required>
        {{#errors.code}}<div class="error">Code {{errors.code}}</div>{{/errors.code}}
        <p><button>Verify</button></p></form>
        <form method="post" action="/account/verification"><input type="hidden" name="csrf" value="{{csrf}}"><button class="secondary">Send a new code</button></form></div>{{/verified}}
        <h2>My orders</h2>
        {{^has_orders}}<p class="muted">No orders yet. Orders you place signed in, in any store, are listed here.</p>{{/has_orders}}
        {{#has_orders}}<div class="table-scroll"><table class="orders" data-my-orders><tr><th>Order</th><th>Store</th><th>Items</th><th class="num">Total</th><th>Payment</th><th>Status</th><th>Placed</th></tr>{{/has_orders}}
        {{#orders}}<tr data-order-id="{{id}}"><td>{{#link}}<a href="{{link}}"><strong>{{id}}</strong></a>{{/link}}{{^link}}<strong>{{id}}</strong>{{/link}}<br><span class="badge">{{source}}</span>{{#pay_link}}<br><a href="{{pay_link}}">Pay now</a>{{#pay_before}} <span class="muted">before {{pay_before}} <span class="countdown" data-deadline="{{pay_before_iso}}"></span></span>{{/pay_before}}{{/pay_link}}</td>
        <td><a href="/s/{{store_username}}">{{store}}</a></td><td>{{#lines}}{{quantity}} × {{name}}<br>{{/lines}}</td><td class="num">{{total}}</td><td class="payment">{{payment}}</td>
        <td><span class="status">{{status}}</span></td><td class="muted">{{placed_at}}</td></tr>{{/orders}}
        {{#has_orders}}</table></div>{{/has_orders}}
        {{#older}}<p><a href="/account?cursor={{older}}">Older orders →</a></p>{{/older}}{{> footer}}
        """

    static let outbox = """
        {{> header}}<h1>Outbox</h1>
        <p class="muted">No mail server is configured (<code>SOUK_SMTP_URL</code>), so the mail Souk would send is kept here, newest first. Shown only to this machine.</p>
        {{^mails}}<p class="muted">Nothing yet.</p>{{/mails}}
        {{#mails}}<div class="card"><p><strong>{{subject}}</strong><br><span class="muted">to {{to}} · {{sent_at}}</span></p><pre class="mail">{{body}}</pre></div>{{/mails}}{{> footer}}
        """

    static let accountLogin = """
        {{> header}}<h1>Sign in to shop</h1>
        {{#formError}}<p class="notice">{{formError}}</p>{{/formError}}
        <form method="post" action="/account/login" class="card"><input type="hidden" name="csrf" value="{{csrf}}"><input type="hidden" name="next" value="{{next}}">
        <label for="email">Email</label><input id="email" name="email" type="email" value="{{email}}" required autocomplete="email">
        <label for="password">Password</label><input id="password" name="password" type="password" required autocomplete="current-password">
        <p><button>Sign in</button></p></form>
        <p>No account yet? <a href="/account/signup?next={{next}}">Create one</a>: one account buys from every store.</p>{{> footer}}
        """

    static let accountSignup = """
        {{> header}}<h1>Create your account</h1>
        {{#formError}}<p class="notice">{{formError}}</p>{{/formError}}
        <form method="post" action="/account/signup" class="card"><input type="hidden" name="csrf" value="{{csrf}}"><input type="hidden" name="next" value="{{next}}">
        <label for="name">Name</label><input id="name" name="name" value="{{name}}" required maxlength="100" autocomplete="name">
        {{#errors.name}}<div class="error">Name {{errors.name}}</div>{{/errors.name}}
        <label for="email">Email</label><input id="email" name="email" type="email" value="{{email}}" required autocomplete="email">
        {{#errors.email}}<div class="error">Email {{errors.email}}</div>{{/errors.email}}
        <label for="password">Password</label><input id="password" name="password" type="password" required minlength="8" autocomplete="new-password">
        {{#errors.password}}<div class="error">Password {{errors.password}}</div>{{/errors.password}}
        <p><button>Create my account</button></p></form>
        <p>Have an account? <a href="/account/login?next={{next}}">Sign in</a></p>{{> footer}}
        """

    static let login = """
        {{> header}}<h1>Log in</h1>
        {{#formError}}<p class="notice">{{formError}}</p>{{/formError}}
        <form method="post" action="/login" class="card"><input type="hidden" name="csrf" value="{{csrf}}">
        <label for="username">Username</label><input id="username" name="username" value="{{username}}" required autocomplete="username">
        <label for="password">Password</label><input id="password" name="password" type="password" required autocomplete="current-password">
        <p><button>Log in</button></p></form>
        <p>New here? <a href="/signup">Open a store</a></p>{{> footer}}
        """

    static let products = """
        {{> header}}<h1>{{vendor.store_name}}: products</h1>
        <p>Your store link: <a href="/s/{{vendor.username}}">/s/{{vendor.username}}</a> · <a class="button" href="/dashboard/products/new">Add a product</a></p>
        {{#formError}}<p class="notice">{{formError}}</p>{{/formError}}
        {{^products}}<p class="muted">No products yet.</p>{{/products}}
        {{#has_products}}<table><tr><th>Name</th><th class="num">Price</th><th class="num">Stock</th><th>Available</th><th></th></tr>{{/has_products}}
        {{#products}}<tr><td>{{#thumbnail}}<img class="thumb" src="{{thumbnail}}" alt="" width="56" height="56" loading="lazy">{{/thumbnail}}<strong>{{name}}</strong>{{#processing}} <span class="status">processing</span>{{/processing}}<br><span class="muted">{{description}}</span>{{#image_error}}<br><span class="error">Image: {{image_error}}</span> <form class="inline" method="post" action="/dashboard/products/{{id}}/image/retry"><input type="hidden" name="csrf" value="{{csrf}}"><button class="secondary">Retry</button></form>{{/image_error}}</td><td class="num">{{price}}{{#price_feed_item}}<br><span class="muted">follows {{price_feed_item}}</span>{{/price_feed_item}}{{#sparkline}}<br>{{{sparkline}}}{{/sparkline}}</td><td class="num">{{stock}}</td>
        <td><form class="inline" method="post" action="/dashboard/products/{{id}}/toggle"><input type="hidden" name="csrf" value="{{csrf}}">
        <button class="secondary" title="Toggle availability">{{#available}}Yes{{/available}}{{^available}}No{{/available}}</button></form></td>
        <td><a href="/dashboard/products/{{id}}/edit">Edit</a>
        <form class="inline" method="post" action="/dashboard/products/{{id}}/delete"><input type="hidden" name="csrf" value="{{csrf}}"><button class="danger">Delete</button></form></td></tr>{{/products}}
        {{#has_products}}</table>{{/has_products}}{{> footer}}
        """

    static let productForm = """
        {{> header}}<h1>{{title}}</h1>
        {{#formError}}<p class="notice">{{formError}}</p>{{/formError}}
        <form method="post" action="{{action}}" class="card"><input type="hidden" name="csrf" value="{{csrf}}">
        <label for="name">Name</label><input id="name" name="name" value="{{name}}" required maxlength="200">
        {{#errors.name}}<div class="error">Name {{errors.name}}</div>{{/errors.name}}
        <label for="description">Description</label><textarea id="description" name="description" rows="4" maxlength="5000">{{description}}</textarea>
        {{#errors.description}}<div class="error">Description {{errors.description}}</div>{{/errors.description}}
        <label for="price">Price</label><input id="price" name="price" value="{{price}}" required inputmode="decimal" placeholder="12.50">
        {{#errors.price}}<div class="error">Price {{errors.price}}</div>{{/errors.price}}{{#errors.price_minor}}<div class="error">Price {{errors.price_minor}}</div>{{/errors.price_minor}}
        <label for="currency">Currency</label><input id="currency" name="currency" value="{{currency}}" required maxlength="3">
        {{#errors.currency}}<div class="error">Currency {{errors.currency}}</div>{{/errors.currency}}
        <label for="stock">Stock</label><input id="stock" name="stock" type="number" min="0" value="{{stock}}" required>
        {{#errors.stock}}<div class="error">Stock {{errors.stock}}</div>{{/errors.stock}}
        <label for="price_feed_item">Follow the price of feed item (optional)</label><input id="price_feed_item" name="price_feed_item" value="{{price_feed_item}}" maxlength="64" placeholder="SIM-0001">
        {{#errors.price_feed_item}}<div class="error">Feed item {{errors.price_feed_item}}</div>{{/errors.price_feed_item}}
        <label><input type="checkbox" name="available" value="yes" {{#available}}checked{{/available}}> Available in the store</label>
        <p><button>Save</button> <a href="/dashboard">Cancel</a></p></form>
        {{#id}}<form method="post" action="/dashboard/products/{{id}}/image" enctype="multipart/form-data" class="card"><input type="hidden" name="csrf" value="{{csrf}}">
        <h2>Image</h2>{{#thumbnail}}<p><img src="{{thumbnail}}" alt="" width="120"></p>{{/thumbnail}}{{#processing}}<p class="muted">Making thumbnails…</p>{{/processing}}
        <label for="image">JPEG, PNG or WebP, up to 8 MB</label><input id="image" type="file" name="image" accept="image/jpeg,image/png,image/webp" required>
        {{#imageError}}<div class="error">{{imageError}}</div>{{/imageError}}
        <p><button>Upload</button></p></form>{{/id}}{{> footer}}
        """

    static let orders = """
        {{> header}}<h1>Orders</h1>
        <form class="filters" method="get" action="/dashboard/orders" role="search">
        <label>Source <select name="source">{{#sources}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{label}}</option>{{/sources}}</select></label>
        <label>Status <select name="status">{{#statuses}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{label}}</option>{{/statuses}}</select></label>
        <label>Find <input type="search" name="q" value="{{q}}" maxlength="200" placeholder="Reference, name or email"></label>
        <button>Filter</button> <a class="button secondary" href="/dashboard/orders.csv{{#filtered}}?{{filters}}{{/filtered}}" download>Download CSV</a></form>
        {{#formError}}<p class="notice">{{formError}}</p>{{/formError}}
        {{^has_orders}}{{^formError}}<p class="muted">{{#filtered}}No order matches. <a href="/dashboard/orders">Show all orders</a>{{/filtered}}{{^filtered}}No orders yet. Share your store link: <a href="/s/{{vendor.username}}">/s/{{vendor.username}}</a>{{/filtered}}</p>{{/formError}}{{/has_orders}}
        {{#has_orders}}<div class="table-scroll"><table class="orders" data-my-orders><tr><th>Order</th><th>Customer</th><th>Items</th><th class="num">Total</th><th>Payment</th><th>Status</th><th>Placed</th></tr>{{/has_orders}}
        {{#orders}}<tr><td>{{#checkout}}<a href="/checkouts/{{id}}"><strong>{{id}}</strong></a>{{/checkout}}{{^checkout}}<strong>{{id}}</strong>{{/checkout}}<br><span class="badge">{{source}}</span></td>
        <td>{{customer_name}}{{#account}} <span class="muted" title="signed in">✓</span>{{/account}}<br><span class="muted">{{customer_contact}}{{#has_address}}<br>{{customer_address}}{{/has_address}}</span></td>
        <td>{{#lines}}{{quantity}} × {{name}}<br>{{/lines}}</td><td class="num">{{total}}</td><td>{{payment}}</td>
        <td><span class="status">{{status}}</span><br>{{#next}}<form class="inline" method="post" action="/dashboard/orders/{{number}}/status"><input type="hidden" name="csrf" value="{{csrf}}">
        <input type="hidden" name="status" value="{{status}}"><button class="{{style}}">{{label}}</button></form> {{/next}}
        {{#refundable}}<form class="inline" method="post" action="/dashboard/orders/{{id}}/cancel" data-confirm="Cancel order {{id}} and refund {{total}} to the customer?"><input type="hidden" name="csrf" value="{{csrf}}">
        <button class="danger">Cancel and refund</button></form>{{/refundable}}</td><td class="muted"><time datetime="{{placed_iso}}">{{placed_at}}</time></td></tr>{{/orders}}
        {{#has_orders}}</table></div>{{/has_orders}}
        {{#older}}<p><a href="/dashboard/orders?{{older}}">Older orders →</a></p>{{/older}}{{> footer}}
        """

    static let analytics = """
        {{> header}}<h1>Analytics</h1><p class="muted">The last hour, live.</p>
        <div data-live-analytics>{{> analytics_panel}}</div>{{> footer}}
        """

    static let analyticsPanel = """
        <div class="stats"><div class="card"><div class="muted">Orders</div><strong>{{orders}}</strong></div>
        <div class="card"><div class="muted" title="money taken: store orders once delivered, checkouts once confirmed">Revenue taken</div><strong>{{#has_revenue}}{{revenue}}{{/has_revenue}}{{^has_revenue}}—{{/has_revenue}}</strong></div>
        <div class="card"><div class="muted">Store page views</div><strong>{{views}}</strong></div>
        <div class="card"><div class="muted">Conversion</div><strong>{{conversion}}</strong></div></div>
        <div class="card"><div class="muted">Orders per minute (peak {{peak}})</div>{{{chart}}}</div>
        <div class="card"><h2>Top products</h2>{{^top}}<p class="muted">No sales in the last hour.</p>{{/top}}<ol>{{#top}}<li>{{name}} — {{units}}</li>{{/top}}</ol></div>
        {{#sales}}<div class="card"><h2>Flash sale: {{name}}</h2><p>{{sold}} of {{quantity}} sold ({{percent}} %)</p>
        <svg viewBox="0 0 100 6" width="100%" height="12" preserveAspectRatio="none" role="img" aria-label="{{percent}} percent sold"><rect width="100" height="6" fill="#e6e0da"/><rect width="{{percent}}" height="6" fill="#1a7f37"/></svg></div>{{/sales}}
        """

    static let searchBox = """
        <form class="search" method="get" action="/search" role="search"><input type="search" name="q" value="{{q}}" placeholder="Search{{#username}} this store{{/username}}…" aria-label="Search" list="souk-suggestions" data-suggest maxlength="200" required>
        {{#username}}<input type="hidden" name="vendor" value="{{username}}">{{/username}}<datalist id="souk-suggestions"></datalist> <button>Search</button></form>
        """

    static let apiDocs = """
        {{> header}}<h1>{{api_title}} <span class="muted">{{api_version}}</span></h1>
        <p>{{api_description}}</p>
        <p>The machine-readable document: <a href="/openapi.json">/openapi.json</a> (OpenAPI {{openapi}}). Errors are always
        <code>{"error":{"code","message"}}</code>; vendor operations take <code>Authorization: Bearer</code> with a token from <code>POST /api/v1/sessions</code>.</p>
        <nav>{{#tags}}<a href="#tag-{{name}}">{{name}}</a> {{/tags}}</nav>
        {{#tags}}<section id="tag-{{name}}"><h2>{{name}}</h2>{{#description}}<p class="muted">{{description}}</p>{{/description}}
        {{#operations}}<article class="operation" id="{{operation_id}}"><h3><code>{{method}} {{path}}</code>{{#vendor_only}} <span class="muted">vendor</span>{{/vendor_only}}</h3>
        <p>{{summary}}</p>{{#description}}<p class="muted">{{description}}</p>{{/description}}
        {{#has_parameters}}<table><tr><th>Parameter</th><th>In</th><th>Required</th><th>Meaning</th></tr>
        {{#parameters}}<tr><td><code>{{name}}</code></td><td>{{in}}</td><td>{{#required}}yes{{/required}}</td><td>{{description}}</td></tr>{{/parameters}}</table>{{/has_parameters}}
        {{#body}}<p>Body: <code>{{body}}</code></p>{{/body}}
        <table><tr><th>Status</th><th>Meaning</th></tr>{{#responses}}<tr><td>{{status}}</td><td>{{description}}</td></tr>{{/responses}}</table>
        </article>{{/operations}}</section>{{/tags}}{{> footer}}
        """

    static let search = """
        {{> header}}<h1>Search</h1>{{> search_box}}
        {{#formError}}<p class="notice">{{formError}}</p>{{/formError}}
        {{#searched}}{{^results}}<p class="muted">Nothing matches “{{q}}”.</p>{{/results}}{{/searched}}
        {{#has_results}}<table><tr><th>Product</th><th>Store</th><th class="num">Price</th><th class="num">In stock</th></tr>{{/has_results}}
        {{#results}}<tr><td><strong>{{name}}</strong><br><span class="muted">{{description}}</span></td><td><a href="/s/{{vendor}}">{{vendor}}</a></td><td class="num">{{price}}</td><td class="num">{{stock}}</td></tr>{{/results}}
        {{#has_results}}</table>{{/has_results}}
        {{#next}}<p><a href="{{next}}">More results →</a></p>{{/next}}{{> footer}}
        """

    static let store = """
        {{> header}}<h1>{{store_name}}</h1>{{> search_box}}
        {{#formError}}<p class="notice">{{formError}}</p>{{/formError}}
        {{#sales}}<div class="card sale" data-sale-id="{{id}}" data-sale-starts="{{starts_at}}" data-sale-ends="{{ends_at}}">
        <h2>Flash sale: {{product_name}} at {{price}}{{#list_price}} <s class="muted" aria-label="list price">{{list_price}}</s>{{/list_price}}</h2><p><span class="countdown"></span> · <span class="remaining">{{quantity}} units</span> · at most {{limit}} per buyer · pay within {{pay_within}} of winning{{#verified_only}} · for <a href="/account#verify">verified customers</a>{{/verified_only}}</p>
        <form method="post" action="/s/{{username}}/flash-sales/{{id}}"><input type="hidden" name="csrf" value="{{csrf}}">
        <p><button>Buy now</button> <span class="muted">as the customer you are signed in as (<a href="/account/login?next=/s/{{username}}">sign in</a>)</span></p></form></div>{{/sales}}
        {{^products}}<p class="muted">This store has nothing for sale right now.</p>{{/products}}
        {{#has_products}}<form method="post" action="/s/{{username}}/orders"><input type="hidden" name="csrf" value="{{csrf}}"><input type="hidden" name="idempotency_key" value="" data-request-key>
        <table><tr><th>Product</th><th class="num">Price</th><th class="num">In stock</th><th>Quantity</th></tr>{{/has_products}}
        {{#products}}<tr><td>{{#thumbnail}}<img class="thumb" src="{{thumbnail}}" alt="" width="56" height="56" loading="lazy">{{/thumbnail}}<strong>{{name}}</strong><br><span class="muted">{{description}}</span></td><td class="num">{{price}}{{#sparkline}}<br>{{{sparkline}}}{{/sparkline}}</td><td class="num">{{stock}}</td>
        <td>{{#in_stock}}<input class="qty" type="number" name="qty_{{id}}" min="0" max="{{stock}}" value="{{quantity}}" aria-label="Quantity of {{name}}">{{/in_stock}}{{^in_stock}}<span class="muted">Sold out</span>{{/in_stock}}</td></tr>{{/products}}
        {{#has_products}}</table>
        <div class="card"><h2>Your details</h2>
        <label for="name">Name</label><input id="name" name="name" value="{{customer.name}}" required maxlength="200" autocomplete="name">
        {{#errors.customer.name}}<div class="error">Name {{errors.customer.name}}</div>{{/errors.customer.name}}
        <label for="phone">Phone</label><input id="phone" name="phone" value="{{customer.phone}}" required maxlength="32" autocomplete="tel">
        {{#errors.customer.phone}}<div class="error">Phone {{errors.customer.phone}}</div>{{/errors.customer.phone}}
        <label for="address">Address</label><textarea id="address" name="address" rows="3" required maxlength="1000" autocomplete="street-address">{{customer.address}}</textarea>
        {{#errors.customer.address}}<div class="error">Address {{errors.customer.address}}</div>{{/errors.customer.address}}
        {{#errors.items}}<div class="error">Items {{errors.items}}</div>{{/errors.items}}
        <p><button>Place order</button></p></div></form>{{/has_products}}{{> footer}}
        """

    static let flashSales = """
        {{> header}}<h1>Flash sales</h1>
        {{#formError}}<p class="notice">{{formError}}</p>{{/formError}}
        {{#has_sales}}<div class="table-scroll"><table><tr><th>Product</th><th class="num">Price</th><th class="num">Quantity</th><th class="num">Sold</th><th>Window (UTC)</th><th></th></tr>
        {{#sales}}<tr><td>{{product_name}}</td><td class="num">{{price}}{{#list_price}}<br><s class="muted">{{list_price}}</s>{{/list_price}}</td><td class="num">{{quantity}}</td><td class="num">{{sold}}</td><td>{{starts_at}} → {{ends_at}}</td><td><a href="/dashboard/flash-sales/{{id}}">Watch live</a></td></tr>{{/sales}}
        </table></div>{{/has_sales}}{{^has_sales}}<p class="muted">No flash sales yet.</p>{{/has_sales}}
        <form method="post" action="/dashboard/flash-sales" class="card"><h2>Start a flash sale</h2><input type="hidden" name="csrf" value="{{csrf}}">
        <label for="product_id">Product</label><select id="product_id" name="product_id">{{#products}}<option value="{{id}}" {{#selected}}selected{{/selected}}>{{name}}: {{price}}, {{stock}} in stock</option>{{/products}}</select>
        {{#errors.product_id}}<div class="error">Product {{errors.product_id}}</div>{{/errors.product_id}}
        <label for="quantity">Units for the sale (taken from the product's stock)</label><input id="quantity" name="quantity" type="number" min="1" value="{{quantity}}" required>
        {{#errors.quantity}}<div class="error">Quantity {{errors.quantity}}</div>{{/errors.quantity}}
        <label for="sale_price">Sale price (in the product's currency; empty: the product's price)</label><input id="sale_price" name="sale_price" inputmode="decimal" placeholder="e.g. 9.99" value="{{sale_price}}">
        {{#errors.sale_price}}<div class="error">Sale price {{errors.sale_price}}</div>{{/errors.sale_price}}{{#errors.sale_price_minor}}<div class="error">Sale price {{errors.sale_price_minor}}</div>{{/errors.sale_price_minor}}
        <label for="starts_in">Starts in (minutes)</label><input id="starts_in" name="starts_in" type="number" min="0" value="{{starts_in}}" required>
        <label for="duration">Lasts (minutes)</label><input id="duration" name="duration" type="number" min="1" value="{{duration}}" required>
        {{#errors.ends_at}}<div class="error">Window {{errors.ends_at}}</div>{{/errors.ends_at}}
        <label for="per_buyer_limit">Most units per buyer</label><input id="per_buyer_limit" name="per_buyer_limit" type="number" min="1" value="{{limit}}" required>
        {{#errors.per_buyer_limit}}<div class="error">Limit {{errors.per_buyer_limit}}</div>{{/errors.per_buyer_limit}}
        <label for="hold_minutes">Time to pay after winning (minutes)</label><input id="hold_minutes" name="hold_minutes" type="number" min="1" max="60" value="{{hold_minutes}}" required>
        {{#errors.hold_seconds}}<div class="error">Time to pay {{errors.hold_seconds}}</div>{{/errors.hold_seconds}}
        <label><input type="checkbox" name="verified_only" value="yes" {{#verified_only}}checked{{/verified_only}}> Verified customers only (they proved their email with a code: one person, one limit)</label>
        <p><button>Start the sale</button></p></form>{{> footer}}
        """

    static let flashSale = """
        {{> header}}<h1>Flash sale: {{product_name}}</h1>
        <div class="card" data-live-sale="{{id}}"><p>Status: <strong class="status">{{status}}</strong> · {{starts_at}} → {{ends_at}} (UTC)</p>
        <div class="bar"><div class="bar-admitted" style="width:0%"></div><div class="bar-persisted" style="width:0%"></div></div>
        <div class="table-scroll"><table><tr><th>Quantity</th><th>Admitted</th><th>Persisted</th><th>Pending</th><th>Remaining</th><th>Held</th><th>Paid</th><th>Expired</th></tr>
        <tr><td>{{quantity}}</td><td class="admitted">{{admitted}}</td><td class="persisted">{{persisted}}</td><td class="pending">{{pending}}</td><td class="remaining">{{remaining}}</td>
        <td class="held">{{held}}</td><td class="paid">{{paid}}</td><td class="expired">{{expired}}</td></tr></table></div>
        <p class="muted">Winners have {{pay_within}} to pay; an unpaid unit goes back to the sale.</p>
        <p class="muted">Updated live. Admitted units are answered at once; persisted ones are written to the database.</p></div>
        {{#cancellable}}<form method="post" action="/dashboard/flash-sales/{{id}}/cancel" class="card"><input type="hidden" name="csrf" value="{{csrf}}">
        <p>Cancelling stops purchases at once. Orders already admitted stay; unsold units go back to the product's stock.</p>
        <button class="danger">Cancel this sale</button></form>{{/cancellable}}
        <p><a href="/dashboard/flash-sales">All flash sales</a></p>{{> footer}}
        """

    static let flashSaleAdmitted = """
        {{> header}}<h1>You got it!</h1>
        <p class="ok">Your {{product_name}} from {{store_name}} is reserved: order <strong>{{order_id}}</strong>{{#repeated}} (you had already been admitted){{/repeated}}.</p>
        <p>Pay <strong>{{price}}</strong> before <strong>{{pay_before}}</strong> <span class="countdown" data-deadline="{{pay_before_iso}}"></span>: then the unit goes back to the sale for the next customer.</p>
        <p><a class="button" href="/account/orders/{{order_id}}/pay">Pay and give your address</a></p>
        <p><a href="/s/{{username}}">Back to the store</a></p>{{> footer}}
        """

    static let flashSalePay = """
        {{> header}}<h1>Pay for your order</h1>
        <div class="card"><p>{{#lines}}{{quantity}} × <strong>{{name}}</strong>{{/lines}} from <a href="/s/{{store_username}}">{{store}}</a></p>
        <p>Order <strong>{{id}}</strong> · <span class="status">{{status}}</span></p>
        <p>To pay: <strong>{{total}}</strong> · your store credit at {{store}}: {{balance}}</p>
        {{#payable}}{{#pay_before}}<p>Pay before <strong>{{pay_before}}</strong> <span class="countdown" data-deadline="{{pay_before_iso}}"></span>: then the unit goes back to the sale for the next customer.</p>{{/pay_before}}{{/payable}}</div>
        {{#formError}}<p class="notice">{{formError}}</p>{{/formError}}
        {{#payable}}<form method="post" action="/account/orders/{{id}}/pay" class="card"><input type="hidden" name="csrf" value="{{csrf}}">
        <label for="name">Name</label><input id="name" name="name" value="{{ship_name}}" required maxlength="200" autocomplete="name">
        {{#errors.shipping.name}}<div class="error">Name {{errors.shipping.name}}</div>{{/errors.shipping.name}}
        <label for="phone">Phone</label><input id="phone" name="phone" type="tel" value="{{ship_phone}}" required maxlength="32" autocomplete="tel">
        {{#errors.shipping.phone}}<div class="error">Phone {{errors.shipping.phone}}</div>{{/errors.shipping.phone}}
        <label for="address">Address</label><textarea id="address" name="address" required maxlength="1000" rows="3" autocomplete="street-address">{{ship_address}}</textarea>
        {{#errors.shipping.address}}<div class="error">Address {{errors.shipping.address}}</div>{{/errors.shipping.address}}
        <fieldset class="pay-method"><legend>How to pay</legend>
        <label class="choice"><input type="radio" name="method" value="credit"{{#method_credit}} checked{{/method_credit}}> Store credit ({{balance}} at {{store}})</label>
        <label class="choice"><input type="radio" name="method" value="card"{{#method_card}} checked{{/method_card}}> Card</label>
        {{#errors.method}}<div class="error">{{errors.method}}</div>{{/errors.method}}
        <div class="card-fields"><label for="card_number">Card number</label><input id="card_number" name="card_number" inputmode="numeric" autocomplete="cc-number" maxlength="23" placeholder="4242 4242 4242 4242">
        {{#errors.card.number}}<div class="error">Card number {{errors.card.number}}</div>{{/errors.card.number}}
        <div class="row"><div><label for="card_exp_month">Month</label><input id="card_exp_month" name="card_exp_month" inputmode="numeric" autocomplete="cc-exp-month" maxlength="2" placeholder="MM"></div>
        <div><label for="card_exp_year">Year</label><input id="card_exp_year" name="card_exp_year" inputmode="numeric" autocomplete="cc-exp-year" maxlength="4" placeholder="YYYY"></div>
        <div><label for="card_cvc">Security code</label><input id="card_cvc" name="card_cvc" inputmode="numeric" autocomplete="cc-csc" maxlength="4" placeholder="123"></div></div>
        {{#errors.card.exp_month}}<div class="error">Month {{errors.card.exp_month}}</div>{{/errors.card.exp_month}}
        {{#errors.card.exp_year}}<div class="error">Year {{errors.card.exp_year}}</div>{{/errors.card.exp_year}}
        {{#errors.card.cvc}}<div class="error">Security code {{errors.card.cvc}}</div>{{/errors.card.cvc}}
        <p class="muted">Test cards: 4242 4242 4242 4242 is approved, 4000 0000 0000 0002 declined.</p></div></fieldset>
        <p><button>Pay {{total}}</button></p>
        <p class="muted">Your credit is held, or your card authorized, while the payment is verified; if it is refused, it is released and the order stays yours to pay again.</p></form>{{/payable}}
        <p><a href="/account">My orders</a></p>{{> footer}}
        """

    static let checkout = """
        {{> header}}<h1>Your order</h1>
        <div class="card" data-live-order="{{id}}"><p class="status-message {{status}}"><strong class="message">{{message}}</strong></p>
        <table><tr><th>Product</th><th class="num">Quantity</th><th class="num">Price</th></tr>
        {{#lines}}<tr><td>{{name}}</td><td class="num">{{quantity}}</td><td class="num">{{total}}</td></tr>{{/lines}}
        {{#discount}}<tr><td>Coupon {{coupon}}</td><td></td><td class="num">−{{discount}}</td></tr>{{/discount}}
        <tr><th>Total</th><td></td><th class="num">{{total}}</th></tr></table>
        <p class="muted">Order {{id}} · this page updates by itself.</p></div>{{> footer}}
        """

    static let orderPlaced = """
        {{> header}}<h1>Thank you, {{customer_name}}!</h1>
        <p class="ok">Your order <strong>{{reference}}</strong> at {{store_name}} is {{status}}. Keep the reference to ask about it.</p>
        <table><tr><th>Product</th><th class="num">Quantity</th><th class="num">Price</th></tr>
        {{#lines}}<tr><td>{{name}}</td><td class="num">{{quantity}}</td><td class="num">{{total}}</td></tr>{{/lines}}
        <tr><th>Total</th><td></td><th class="num">{{total}}</th></tr></table>
        <p><a href="/s/{{username}}">Back to the store</a></p>{{> footer}}
        """
}
