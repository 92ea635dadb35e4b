// The Portcullis dashboard. Everything it shows comes from GET /dashboard/data, sent with the
// admin token the operator typed; the token lives in this tab's sessionStorage only (gone
// when the tab closes), and a 401 forgets it and asks again. Every value is written with
// textContent, never parsed as HTML: names chosen in a config or by a client stay text.
"use strict";

(() => {
  const TOKEN_KEY = "portcullis.admin.token";
  const POLL_MS = 3000;
  const DAYS_WARN = 14;
  const $ = (id) => document.getElementById(id);

  let timer = null;
  // Bumped whenever polling restarts or stops: an answer to an older poll is dropped.
  let generation = 0;

  // Problems of the page itself (a blocked resource, a script error) are shown, not hidden
  // in the console.
  function pageProblem(text) {
    const list = $("page-problems");
    const item = document.createElement("li");
    item.textContent = text;
    list.appendChild(item);
    list.hidden = false;
  }
  document.addEventListener("securitypolicyviolation", (e) => {
    pageProblem("Content-Security-Policy blocked " + e.violatedDirective + " " + (e.blockedURI || ""));
  });
  window.addEventListener("error", (e) => pageProblem("script error: " + e.message));
  window.addEventListener("unhandledrejection", (e) => pageProblem("script error: " + String(e.reason)));

  // `#token=…` in the address (for scripts that open the page): read once into this tab's
  // storage, then removed from the address and the history entry. The fragment never
  // reaches a server.
  function takeTokenFromFragment() {
    const prefix = "#token=";
    if (!location.hash.startsWith(prefix)) return;
    let token = location.hash.slice(prefix.length);
    try {
      token = decodeURIComponent(token);
    } catch (_) {
      // Not percent-encoded after all: taken as it is.
    }
    history.replaceState(null, "", location.pathname + location.search);
    sessionStorage.setItem(TOKEN_KEY, token);
  }

  function setStatus(text) {
    $("status").textContent = text;
  }

  function clearBoard() {
    for (const body of document.querySelectorAll("#board tbody")) body.replaceChildren();
    $("consumers-note").hidden = true;
  }

  function showLogin(message) {
    generation += 1;
    clearTimeout(timer);
    timer = null;
    clearBoard();
    $("board").hidden = true;
    $("forget").hidden = true;
    $("login").hidden = false;
    const error = $("login-error");
    error.textContent = message || "";
    error.hidden = !message;
    setStatus("");
    $("token").focus();
  }

  function start() {
    generation += 1;
    clearTimeout(timer);
    poll(generation);
  }

  function schedule(gen) {
    if (gen === generation) timer = setTimeout(() => poll(gen), POLL_MS);
  }

  async function poll(gen) {
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token === null) {
      showLogin("");
      return;
    }
    const headers = { Accept: "application/json" };
    // An empty token: a gateway without one (loopback only) is asked without the header.
    if (token !== "") headers.Authorization = "Bearer " + token;
    let response;
    try {
      response = await fetch("/dashboard/data", { headers, cache: "no-store", credentials: "omit" });
    } catch (_) {
      if (gen === generation) setStatus("The admin API cannot be reached; trying again.");
      schedule(gen);
      return;
    }
    if (gen !== generation) return;
    if (response.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      showLogin(token === "" ? "This admin API needs a token." : "The admin API refused this token.");
      return;
    }
    let body = null;
    try {
      body = await response.json();
    } catch (_) {
      body = null;
    }
    if (gen !== generation) return;
    if (!response.ok || body === null) {
      const why = body && body.detail ? ": " + body.detail : "";
      setStatus("The admin API answered " + response.status + why + "; trying again.");
      schedule(gen);
      return;
    }
    render(body);
    schedule(gen);
  }

  // One table cell: `field` names it (for styling and for tools reading the page).
  function cell(field, value, className) {
    const td = document.createElement("td");
    td.dataset.field = field;
    td.textContent = value === null || value === undefined ? "—" : String(value);
    if (className) td.className = className;
    return td;
  }

  function fill(tableId, rows, emptyText, columns) {
    const body = $(tableId).tBodies[0];
    if (rows.length === 0) {
      const tr = document.createElement("tr");
      const td = cell("empty", emptyText, "empty");
      td.colSpan = columns;
      tr.appendChild(td);
      body.replaceChildren(tr);
      return;
    }
    body.replaceChildren(
      ...rows.map((cells) => {
        const tr = document.createElement("tr");
        tr.append(...cells);
        return tr;
      }),
    );
  }

  function latency(traffic, p) {
    return traffic.latency_ms ? traffic.latency_ms[p].toFixed(2) : null;
  }

  function trafficCells(t) {
    return [
      cell("requests", t.requests, "n"),
      cell("server_errors", t.server_errors, t.server_errors > 0 ? "n bad" : "n"),
      cell("refused", t.refused, t.refused > 0 ? "n warn" : "n"),
      cell("p50", latency(t, "p50"), "n"),
      cell("p95", latency(t, "p95"), "n"),
      cell("p99", latency(t, "p99"), "n"),
    ];
  }

  function routeRows(data) {
    const rows = data.routes.map((r) => [
      cell("name", r.name),
      cell("host", r.host),
      cell("path", r.path),
      cell("upstream", r.upstream),
      ...trafficCells(r),
    ]);
    if (data.unmatched.requests > 0) {
      rows.push([cell("name", "(no route)", "empty"), cell("host", null), cell("path", null), cell("upstream", null),
        ...trafficCells(data.unmatched)]);
    }
    return rows;
  }

  function targetRows(data) {
    return data.upstreams.flatMap((u) =>
      u.targets.map((t) => [
        cell("upstream", u.name),
        cell("target", t.target),
        cell("health", t.healthy ? "healthy" : "unhealthy", t.healthy ? "good" : "bad"),
      ]),
    );
  }

  function certificateRows(data) {
    return data.certificates.map((c) => [
      cell("name", c.name),
      cell("sans", (c.sans || []).join(", ")),
      cell("not_after", c.not_after),
      cell("days_left", c.days_left, c.days_left < DAYS_WARN ? "n bad" : "n"),
    ]);
  }

  function refusalRows(data) {
    return data.refusals.map((r) => [
      cell("ts", r.ts),
      cell("route", r.route === null ? "(no route)" : r.route),
      cell("status", r.status, "n"),
      cell("code", r.code),
      cell("decided_by", r.decided_by),
      cell("client_ip", r.client_ip),
    ]);
  }

  function consumerRows(data) {
    return data.consumers.map((c) => {
      const q = c.quota;
      return [
        cell("name", c.name),
        cell("source", c.source),
        cell("plan", c.plan),
        cell("quota_used", q ? q.used : null, "n"),
        cell("quota_limit", q ? q.limit : null, "n"),
        cell("quota_remaining", q ? q.remaining : null, q && q.remaining === 0 ? "n bad" : "n"),
        cell("quota_period", q ? q.period : "no quota"),
        cell("quota_resets_at", q ? q.resets_at : null),
      ];
    });
  }

  function render(data) {
    fill("routes", routeRows(data), "No routes in this config.", 10);
    fill("targets", targetRows(data), "No upstream targets.", 3);
    fill("certificates", certificateRows(data), "No certificates served (no TLS listener).", 4);
    fill("refusals", refusalRows(data), "No refusals since the gateway started.", 6);
    fill("consumers", consumerRows(data), "No consumers.", 8);
    const notes = [];
    if (data.consumers_left_out > 0) notes.push(data.consumers_left_out + " more consumers not shown.");
    if (data.database === "unreachable") notes.push("The database is unreachable: its consumers are not shown.");
    $("consumers-note").textContent = notes.join(" ");
    $("consumers-note").hidden = notes.length === 0;
    $("login").hidden = true;
    $("board").hidden = false;
    $("forget").hidden = false;
    setStatus("Updated " + data.generated_at + " · config " + String(data.config_hash).slice(0, 12));
  }

  $("login").addEventListener("submit", (e) => {
    e.preventDefault();
    const input = $("token");
    sessionStorage.setItem(TOKEN_KEY, input.value.trim());
    input.value = "";
    $("login-error").hidden = true;
    start();
  });

  $("forget").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    showLogin("");
  });

  takeTokenFromFragment();
  if (sessionStorage.getItem(TOKEN_KEY) === null) showLogin("");
  else start();
})();
