// The fan-facing reference app of amphi: choose a date, wait in line if there is one,
// pick a section, hold seats, pay, see tickets. A plain ES module with no build step.
//
// The page is served under a strict Content-Security-Policy, so: no inline scripts or
// styles, no HTML strings. Everything from the API goes into the page with textContent or
// setAttribute, never innerHTML.

const SITE = "Pacific Amphitheatre";
const TOKEN_KEY = "amphi.token";
const GUEST_KEY = "amphi.guest";
const SECTIONS_POLL_MS = 5000;
const MAX_QUANTITY = 8;
// Each wheelchair space comes with its companion seat (two seats), so half as many at a time.
const MAX_SPACES = MAX_QUANTITY / 2;
const STRIPE_JS = "https://js.stripe.com/v3/";
const HOLDS = "/api/tickets/amphitheater/holds";

const MESSAGES = {
  network: "We could not reach the box office. Check your connection and try again.",
  signInExpired: "Your sign-in has expired. Please sign in again.",
  soldOut: "Sold out: no seats left in this section.",
  notAdjacent: "Not enough seats together in this section. Try fewer seats or another section.",
  tooMany: "Too many requests. Please wait a moment and try again.",
  holdExpired: "Your hold has expired. The seats have been released.",
  pickLimit: `You can pick up to ${MAX_QUANTITY} seats at a time. Unpick one to choose another.`,
  noSpaces: "No wheelchair spaces are free in this section right now. Please choose another section.",
  fewSpaces: (n, companions) => `Only ${spacesText(n)}${companions ? " with a companion seat" : ""} `
    + `${n === 1 ? "is" : "are"} free in this section. Ask for fewer, or choose another section.`,
};

/** "1 wheelchair space", "3 wheelchair spaces". */
function spacesText(n) {
  return `${n} wheelchair ${n === 1 ? "space" : "spaces"}`;
}

/** What a hold's wheelchair spaces are, from its `accessible` count ("" for none). Which of
 * its seats are the spaces is not in the hold; with companions it has two seats a space. */
function holdSpacesText(hold) {
  const n = hold.accessible;
  if (!(n > 0)) return "";
  const withCompanions = hold.quantity === 2 * n;
  if (!withCompanions) return spacesText(n);
  return n === 1 ? "1 wheelchair space with its companion seat" : `${spacesText(n)}, each with its companion seat`;
}

const money = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD" });
const whole = new Intl.NumberFormat("en-US");
// Event dates are calendar days, not instants: format them in UTC so no zone shifts them.
const calendarDay = new Intl.DateTimeFormat("en-US", { dateStyle: "long", timeZone: "UTC" });
const clockTime = new Intl.DateTimeFormat("en-US", { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });

// ---------------------------------------------------------------------------------------
// The API

/** Calls the API. Never throws: returns {status, data, error, headers}; status 0 is a network failure. */
async function api(path, { method = "GET", body, headers = {}, auth = true } = {}) {
  const sent = { Accept: "application/json", ...headers };
  const token = auth ? getToken() : null;
  if (token) sent.Authorization = `Bearer ${token}`;
  if (body !== undefined) sent["Content-Type"] = "application/json";
  let res;
  try {
    res = await fetch(path, { method, headers: sent, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    return { status: 0, data: null, error: { code: "network_error", message: MESSAGES.network }, headers: new Headers() };
  }
  if (res.status === 304) return { status: 304, data: null, error: null, headers: res.headers };
  let json = null;
  try {
    json = await res.json();
  } catch {
    // Not JSON (a proxy's error page, say): fall through to a generic error.
  }
  // A refused token stays refused: stop sending it, so the fan can go on as a guest.
  if (res.status === 401 && token) signOut();
  if (res.ok && json && json.success) {
    return { status: res.status, data: json.data, error: null, headers: res.headers };
  }
  const error = json && json.error && typeof json.error.message === "string"
    ? json.error
    : { code: `http_${res.status}`, message: `Something went wrong (error ${res.status}). Please try again.` };
  return { status: res.status, data: null, error, headers: res.headers };
}

function retryAfterSeconds(r, fallback = 5) {
  const header = Number.parseInt(r.headers.get("Retry-After") || "", 10);
  if (header > 0) return header;
  const ms = r.error && r.error.details && r.error.details.retry_after_ms;
  return ms > 0 ? Math.ceil(ms / 1000) : fallback;
}

// Event dates and the config barely change: fetch them once per page load.
let datesPromise = null;
function eventDates() {
  datesPromise ??= api("/api/tickets/amphitheater/event-dates/", { auth: false }).then((r) => {
    if (r.error) datesPromise = null; // let the next screen try again
    return r;
  });
  return datesPromise;
}

let configPromise = null;
function appConfig() {
  configPromise ??= api("/api/config/", { auth: false }).then((r) => r.data || {});
  return configPromise;
}

async function dateDisplay(date) {
  const r = await eventDates();
  const found = r.data && r.data.find((d) => d.date === date);
  return found ? found.display : formatDay(date);
}

function formatDay(date) {
  const d = new Date(`${date}T00:00:00Z`);
  return Number.isNaN(d.getTime()) ? date : calendarDay.format(d);
}

// ---------------------------------------------------------------------------------------
// Storage: the token outlives the tab (localStorage); holds, orders and places in line
// belong to the tab (sessionStorage). Storage may be unavailable (private modes): the app
// then still works, it just forgets on reload.

function getToken() {
  try {
    return localStorage.getItem(TOKEN_KEY) || null;
  } catch {
    return null;
  }
}

function setToken(token) {
  try {
    localStorage.setItem(TOKEN_KEY, token);
  } catch {
    /* see above */
  }
}

function signOut() {
  try {
    localStorage.removeItem(TOKEN_KEY);
  } catch {
    /* see above */
  }
}

/**
 * A guest's own random id, made once and kept (localStorage): sent as X-Guest-Id with the
 * guest's holds, it lets "my holds" find them again after a reload. With `create` false,
 * null when the app never made one (so it never held anything as this guest).
 */
let guestMemo = null;
function guestId({ create = true } = {}) {
  if (guestMemo) return guestMemo;
  let id = null;
  try {
    id = localStorage.getItem(GUEST_KEY);
  } catch {
    /* see above */
  }
  if (id && /^[A-Za-z0-9_-]{16,64}$/.test(id)) return (guestMemo = id);
  if (!create) return null;
  id = Array.from(crypto.getRandomValues(new Uint8Array(16)), (x) => x.toString(16).padStart(2, "0")).join("");
  try {
    localStorage.setItem(GUEST_KEY, id);
  } catch {
    /* it lasts as long as the page then */
  }
  return (guestMemo = id);
}

/** Whose holds these are: the Bearer token says it for a signed-in fan, X-Guest-Id for a guest. */
function holderHeaders() {
  return getToken() ? {} : { "X-Guest-Id": guestId() };
}

/** The token's claims, for showing who is signed in; the server is the one that checks it. */
function tokenClaims(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const bytes = Uint8Array.from(atob(part.padEnd(Math.ceil(part.length / 4) * 4, "=")), (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return {};
  }
}

const session = {
  get(key) {
    try {
      return JSON.parse(sessionStorage.getItem(key) || "null");
    } catch {
      return null;
    }
  },
  set(key, value) {
    try {
      sessionStorage.setItem(key, JSON.stringify(value));
    } catch {
      /* see above */
    }
  },
  remove(key) {
    try {
      sessionStorage.removeItem(key);
    } catch {
      /* see above */
    }
  },
};

const lineKey = (date) => `amphi.line.${date}`;
const holdKey = (id) => `amphi.hold.${id}`;
const orderKey = (holdId) => `amphi.order.${holdId}`;
const doneKey = (orderNumber) => `amphi.done.${orderNumber}`;

function newIdempotencyKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  // randomUUID exists only in secure contexts; a plain-http test host still needs a key.
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

// ---------------------------------------------------------------------------------------
// DOM helpers

function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  setProps(el, props);
  el.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

function svg(tag, props = {}, ...children) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  setProps(el, props);
  el.append(...children);
  return el;
}

function setProps(el, props) {
  for (const [key, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.setAttribute("class", value);
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
}

/** One role=alert per screen, hidden while empty, so tests and screen readers find exactly one. */
function alertBox() {
  return h("div", { class: "alert", role: "alert", hidden: true });
}

function say(box, text) {
  box.textContent = text || "";
  box.hidden = !text;
}

function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

function link(href, text, cls = "") {
  return h("a", { href, class: cls || null }, text);
}

// ---------------------------------------------------------------------------------------
// Screens and routing. Each navigation starts a screen; leaving it stops its timers, and
// async work checks `s.alive` after each await so a late answer cannot draw over the next
// screen.

let current = null;

function startScreen() {
  if (current) {
    current.alive = false;
    current.cleanups.forEach((fn) => fn());
  }
  current = { alive: true, cleanups: [] };
  return current;
}

function later(s, fn, ms) {
  const id = setTimeout(() => s.alive && fn(), ms);
  s.cleanups.push(() => clearTimeout(id));
}

function every(s, fn, ms) {
  const id = setInterval(() => s.alive && fn(), ms);
  s.cleanups.push(() => clearInterval(id));
}

function mainEl() {
  return document.getElementById("main");
}

/**
 * Draws a screen. With focus "auto" the new h1 takes the focus only if the focus was inside
 * the content being replaced; on a fresh page load it stays put, so the first Tab reaches
 * the nav. (route() focuses the h1 itself after a navigation.)
 */
function render(title, nodes, { focus = "auto" } = {}) {
  document.title = title ? `${title} – ${SITE}` : SITE;
  const main = mainEl();
  const focusWasInside = main.contains(document.activeElement);
  main.replaceChildren(...nodes.flat().filter(Boolean));
  if (focus === true || (focus === "auto" && focusWasInside)) focusHeading();
}

function focusHeading() {
  const h1 = mainEl().querySelector("h1");
  if (!h1) return;
  h1.setAttribute("tabindex", "-1");
  h1.focus();
}

function heading(text) {
  return h("h1", { tabindex: "-1" }, text);
}

const ROUTES = [
  [/^\/?$/, homePage],
  [/^\/date\/(\d{4}-\d{2}-\d{2})$/, datePage],
  [/^\/hold\/([0-9a-fA-F-]{36})$/, holdPage],
  [/^\/done\/([A-Za-z0-9-]{1,64})$/, donePage],
  [/^\/tickets$/, ticketsPage],
];

function route(navigated) {
  let path = location.hash.replace(/^#/, "");
  try {
    path = decodeURIComponent(path);
  } catch {
    /* a malformed escape: match it as it is */
  }
  const s = startScreen();
  markNav(path);
  const match = ROUTES.map(([re, page]) => [re.exec(path), page]).find(([m]) => m);
  if (match) match[1](s, ...match[0].slice(1));
  else notFoundPage();
  if (navigated) {
    window.scrollTo(0, 0);
    focusHeading();
  }
}

function markNav(path) {
  for (const a of document.querySelectorAll(".site-nav a")) {
    const target = a.getAttribute("href").replace(/^#/, "");
    const here = target === "/" ? path === "/" || path === "" : path === target;
    if (here) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

function notFoundPage() {
  render("Page not found", [
    heading("Page not found"),
    h("p", {}, "There is nothing at this address."),
    h("p", {}, link("#/", "See the dates on sale")),
  ]);
}

// ---------------------------------------------------------------------------------------
// 1. Home: the dates on sale

async function homePage(s) {
  const alert = alertBox();
  const list = h("ul", { class: "dates" });
  const status = h("p", { class: "muted", role: "status" }, "Loading dates…");
  const held = h("section", { class: "card my-holds", "aria-labelledby": "my-holds-title", hidden: true });
  render("", [
    heading(SITE),
    h("p", { class: "lede" }, "Choose a date to see the seating map and buy tickets."),
    held,
    h("h2", {}, "Dates on sale"),
    status,
    alert,
    list,
  ]);
  myHolds(s, held);
  const r = await eventDates();
  if (!s.alive) return;
  status.textContent = "";
  if (r.error) {
    say(alert, r.error.message);
    list.replaceWith(h("p", {}, h("button", { type: "button", class: "button", onclick: () => route(false) }, "Try again")));
    return;
  }
  if (r.data.length === 0) {
    status.textContent = "No dates are on sale right now. Please check back soon.";
    return;
  }
  list.replaceChildren(...r.data.map((d) => h("li", { class: "dates__item" },
    link(`#/date/${d.date}`, d.display, "dates__link"),
    h("span", { class: "dates__meta" }, `${d.day_name} · ${d.event_name}`),
  )));
}

/** The fan's active holds, if any (a reload or another visit finds them): a way back to each. */
async function myHolds(s, box) {
  // A guest who never held anything has no id yet, so no holds: no need to ask.
  if (!getToken() && !guestId({ create: false })) return;
  const r = await api(`${HOLDS}/`, { headers: holderHeaders() });
  if (!s.alive || r.error || !Array.isArray(r.data)) return; // nothing to show: say nothing
  const items = r.data
    .filter((x) => x.status === "active" && x.time_left_seconds > 0)
    .map((hold) => {
      const whatId = `my-hold-${hold.hold_id}`;
      const date = h("span", {}, formatDay(hold.event_date));
      dateDisplay(hold.event_date).then((text) => s.alive && (date.textContent = text));
      const spaces = holdSpacesText(hold);
      const seats = (Array.isArray(hold.seats) && hold.seats.length
        ? hold.seats.map((x) => `Row ${x.row}, Seat ${x.seat}`).join("; ")
        : `General admission × ${hold.quantity}`) + (spaces ? ` (${spaces})` : "");
      const left = h("p", { class: "my-holds__time" });
      session.set(holdKey(hold.hold_id), hold); // the hold page shows it at once
      return {
        deadline: performance.now() + hold.time_left_seconds * 1000,
        left,
        root: h("li", { class: "my-holds__item" },
          h("p", { class: "my-holds__what", id: whatId }, h("strong", {}, hold.section_name || "Your seats"), " · ", date),
          h("p", { class: "my-holds__seats" }, seats),
          left,
          h("p", { class: "my-holds__go" },
            h("a", { href: `#/hold/${hold.hold_id}`, class: "button button--primary", "aria-describedby": whatId }, "Continue"))),
      };
    });
  if (!items.length) return;
  const list = h("ul", { class: "my-holds__list" }, items.map((x) => x.root));
  box.replaceChildren(
    h("h2", { id: "my-holds-title" }, "Your held seats"),
    h("p", { class: "muted" }, "Finish paying before the time is up, or the seats go back on sale."),
    list);
  box.hidden = false;
  const tick = () => {
    for (const x of items) {
      const seconds = Math.max(0, Math.ceil((x.deadline - performance.now()) / 1000));
      const text = `Time left: ${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
      if (x.left.textContent !== text) x.left.textContent = text;
      if (seconds === 0) x.root.remove();
    }
    if (!list.children.length) box.hidden = true;
  };
  tick();
  every(s, tick, 1000);
}

// ---------------------------------------------------------------------------------------
// 2 and 6. A date: the waiting room when one is open, then the seating map

function datePage(s, date) {
  const v = {
    date,
    mode: null, // what is shown: "line", "soon", "map", "ended" or "gone"
    admission: null, // {token, endsAt} while the fan's turn lasts
    pollSeq: 0,
    rejoins: 0,
    venueId: null,
    etag: null,
    sections: [],
    sectionIds: "",
    selected: null,
    refs: new Map(),
    loading: false,
  };
  render("Choose seats", [
    heading("Choose your seats"),
    h("p", { class: "muted", role: "status" }, "Checking for a waiting room…"),
  ]);
  checkLine(s, v);
}

// -- the waiting room ---------------------------------------------------------------------

async function checkLine(s, v, { fresh = false } = {}) {
  const saved = fresh ? null : session.get(lineKey(v.date));
  let r = null;
  if (saved && saved.ticket) {
    // A reload keeps the place: ask about the saved ticket before joining again.
    r = await lineStatus(saved.ticket);
    if (r.status === 400 || r.status === 422) r = null;
  }
  if (!r) r = await joinLine(v.date);
  if (s.alive) onLine(s, v, r);
}

async function joinLine(date) {
  const r = await api("/api/queue/join/", { method: "POST", body: { event_date: date } });
  // api() dropped the dead token; nothing is bound to it yet, so join as a guest.
  if (r.status === 401) return api("/api/queue/join/", { method: "POST", body: { event_date: date } });
  return r;
}

function lineStatus(ticket) {
  return api(`/api/queue/status/?queue_ticket=${encodeURIComponent(ticket)}`, { auth: false });
}

function onLine(s, v, r) {
  if (r.error) {
    if (r.error.code === "queue_not_open") {
      forgetLine(v);
      const opensAt = r.error.details && r.error.details.opens_at;
      return opensAt ? showLineSoon(s, v, opensAt) : showMap(s, v);
    }
    const field = r.error.details && r.error.details.field;
    if (r.status === 422 && field === "queue_ticket") {
      // The saved ticket is not valid any more: take a fresh place.
      session.remove(lineKey(v.date));
      return later(s, () => checkLine(s, v, { fresh: true }), 1000);
    }
    if (r.status === 404 || r.status === 410 || r.status === 422) return dateGone(s, v, r.error.message);
    return lineTrouble(s, v, r);
  }
  const q = r.data;
  const saved = session.get(lineKey(v.date)) || {};
  saved.ticket = q.queue_ticket; // always keep the latest: the draw puts the position in a new one
  if (saved.firstAhead == null && typeof q.ahead === "number") saved.firstAhead = q.ahead;
  if (q.state === "admitted") {
    saved.admission_token = q.admission_token;
    saved.turn_ends_at = q.turn_ends_at;
  } else {
    delete saved.admission_token;
    delete saved.turn_ends_at;
  }
  session.set(lineKey(v.date), saved);

  if (q.state === "closed") {
    forgetLine(v);
    return showMap(s, v);
  }
  if (q.state === "turn_ended") {
    v.admission = null;
    return showTurnEnded(s, v);
  }
  if (q.state === "admitted") {
    v.admission = { token: q.admission_token, endsAt: q.turn_ends_at };
    showMap(s, v);
  } else {
    showLine(s, v, q, saved.firstAhead);
  }
  schedulePoll(s, v, q.poll_after_seconds);
}

/** A room is set up but takes no fans yet: holds would be refused, so wait for it to open. */
function showLineSoon(s, v, opensAt) {
  if (v.mode !== "soon") {
    v.mode = "soon";
    render("The line opens soon", [
      heading("The line opens soon"),
      h("p", {}, `The waiting room for this date opens ${momentText(opensAt)}. Keep this page open: you will join the line as soon as it opens.`),
    ], { focus: true });
  }
  const untilOpen = (Date.parse(opensAt) - Date.now()) / 1000;
  const seq = ++v.pollSeq;
  later(s, () => seq === v.pollSeq && checkLine(s, v, { fresh: true }), Math.min(30, Math.max(2, untilOpen)) * 1000);
}

function dateGone(s, v, message) {
  v.mode = "gone";
  render("Date not on sale", [
    heading("This date is not on sale"),
    h("div", { class: "alert", role: "alert" }, message),
    h("p", {}, link("#/", "See the dates on sale")),
  ]);
}

function forgetLine(v) {
  v.admission = null;
  session.remove(lineKey(v.date));
}

function schedulePoll(s, v, seconds) {
  const seq = ++v.pollSeq; // a newer schedule replaces an older one
  later(s, async () => {
    if (seq !== v.pollSeq) return;
    const saved = session.get(lineKey(v.date));
    const r = saved && saved.ticket ? await lineStatus(saved.ticket) : await joinLine(v.date);
    if (s.alive && seq === v.pollSeq) onLine(s, v, r);
  }, Math.max(2, seconds || 5) * 1000);
}

/** The line could not be checked (network, Redis): keep trying rather than let the fan through. */
function lineTrouble(s, v, r) {
  const wait = retryAfterSeconds(r, 5);
  if (v.mode === "map" || v.mode === "line" || v.mode === "ended" || v.mode === "soon") {
    // Already showing something sensible: retry quietly.
    schedulePoll(s, v, wait);
    return;
  }
  render("Choose seats", [
    heading("Choose your seats"),
    h("div", { class: "alert", role: "alert" }, r.error.message),
    h("p", { class: "muted" }, `We will try again in ${wait} seconds.`),
  ]);
  later(s, () => checkLine(s, v), wait * 1000);
}

function showLine(s, v, q, firstAhead) {
  if (v.mode !== "line") {
    v.mode = "line";
    v.line = {
      place: h("p", { class: "line__place" }),
      ahead: h("p", { class: "line__ahead" }),
      wait: h("p", { class: "line__wait" }),
      progress: h("progress", { id: "line-progress", max: "1", value: "0" }),
      notice: h("p", { class: "line__notice", role: "status" }),
    };
    const l = v.line;
    render("You're in line", [
      heading("You're in line"),
      h("div", { class: "card line" },
        l.place,
        l.ahead,
        l.wait,
        h("div", { class: "field" },
          h("label", { for: "line-progress" }, "Progress in line"),
          l.progress),
        l.notice,
      ),
      h("p", { class: "muted" }, "Keep this page open: you will go to the seating map as soon as it is your turn. Leaving and coming back keeps your place."),
    ], { focus: true });
  }
  const l = v.line;
  const drawn = q.state !== "pre_queue" && typeof q.position === "number";
  l.place.textContent = drawn ? `Your place in line: ${q.position}` : "Your place will be drawn when the sale starts";
  l.ahead.textContent = typeof q.ahead === "number" ? `People ahead of you: ${q.ahead}` : "";
  l.ahead.hidden = typeof q.ahead !== "number";
  l.wait.textContent = `Estimated wait: ${waitText(q.estimated_wait_seconds)}`;
  // The admitted share of those who were ahead when the fan first saw the line.
  let share = 0;
  if (typeof q.ahead === "number") share = firstAhead > 0 ? (firstAhead - q.ahead) / firstAhead : q.ahead === 0 ? 1 : 0;
  l.progress.value = Math.min(1, Math.max(0, share));
  l.progress.textContent = `${Math.round(share * 100)}%`;
  if (q.state === "paused") l.notice.textContent = "The sale is paused. Keep this page open.";
  else if (q.state === "pre_queue" && q.on_sale_at) l.notice.textContent = `The sale starts ${momentText(q.on_sale_at)}.`;
  else l.notice.textContent = "";
}

/** "at 10:00" today, "on June 1 at 10:00" another day, in the fan's own time zone. */
function momentText(iso) {
  const when = new Date(iso);
  if (Number.isNaN(when.getTime())) return "soon";
  const sameDay = when.toDateString() === new Date().toDateString();
  const day = when.toLocaleDateString("en-US", { month: "long", day: "numeric" });
  return sameDay ? `at ${clockTime.format(when)}` : `on ${day} at ${clockTime.format(when)}`;
}

function waitText(seconds) {
  if (typeof seconds !== "number" || seconds < 60) return "less than a minute";
  const minutes = Math.round(seconds / 60);
  return minutes === 1 ? "about 1 minute" : `about ${minutes} minutes`;
}

function showTurnEnded(s, v) {
  const again = v.mode === "ended"; // joining again gave the same ended place
  v.mode = "ended";
  const alert = alertBox();
  const button = h("button", { type: "button", class: "button button--primary" }, "Join the line again");
  button.addEventListener("click", async () => {
    button.disabled = true;
    const r = await joinLine(v.date);
    if (s.alive) onLine(s, v, r);
  });
  render("Your turn has ended", [
    heading("Your turn has ended."),
    h("p", {}, "Your time to choose seats is up, and any seats you held without paying have been released."),
    alert,
    h("p", {}, button),
  ], { focus: !again });
  if (again) say(alert, "You have already had your turn for this date.");
}

// -- the seating map ----------------------------------------------------------------------

function showMap(s, v) {
  if (v.mode === "map") {
    updateTurnLine(v);
    return;
  }
  const fromLine = v.mode !== null;
  v.mode = "map";
  v.etag = null; // a new map must be drawn even if the data did not change
  v.sectionIds = "";
  v.refs = new Map();
  v.el = {
    lede: h("p", { class: "lede" }),
    turn: h("p", { class: "turn", role: "status" }),
    wedges: svg("g", { class: "map__wedges" }),
    list: h("ul", { class: "sections", "aria-label": "Sections" }),
    status: h("p", { class: "muted", role: "status" }, "Loading the seating map…"),
    alert: alertBox(),
    panel: buildPanel(s, v),
    pick: buildPicker(s, v),
  };
  const e = v.el;
  render("Choose seats", [
    heading("Choose your seats"),
    e.lede,
    e.turn,
    h("div", { class: "seating" },
      h("div", { class: "seating__map" }, buildMap(e.wedges)),
      h("div", { class: "seating__side" },
        h("h2", {}, "Sections"),
        e.status,
        e.list,
        e.alert,
        e.panel.root,
      ),
    ),
    e.pick.root,
  ], { focus: fromLine || "auto" });
  updateTurnLine(v);
  fillLede(s, v);
  loadSections(s, v);
  if (!v.polling) {
    v.polling = true;
    every(s, () => {
      if (document.hidden) return;
      loadSections(s, v);
      loadSeatMap(s, v);
    }, SECTIONS_POLL_MS);
  }
}

async function fillLede(s, v) {
  const r = await eventDates();
  if (!s.alive || v.mode !== "map") return;
  const d = r.data && r.data.find((x) => x.date === v.date);
  v.el.lede.textContent = d ? `${d.event_name} · ${d.day_name}, ${d.display}` : formatDay(v.date);
  document.title = `Choose seats, ${d ? d.display : formatDay(v.date)} – ${SITE}`;
}

function updateTurnLine(v) {
  const turn = v.el && v.el.turn;
  if (!turn) return;
  const ends = v.admission && new Date(v.admission.endsAt);
  turn.textContent = ends && !Number.isNaN(ends.getTime())
    ? `It's your turn! Your turn ends at ${clockTime.format(ends)}.`
    : "";
  turn.hidden = !turn.textContent;
}

function buildMap(wedges) {
  return svg("svg", {
    class: "map",
    // wide enough for the lawn: its outer edge (radius 640 around x 500) reaches x -130..1130
    viewBox: "-140 0 1280 710",
    role: "img",
    "aria-label": "Seating map. The stage is at the top; choose a section from the list.",
  },
  svg("rect", { class: "map__stage", x: 390, y: 8, width: 220, height: 52, rx: 10 }),
  Object.assign(svg("text", { class: "map__stage-label", x: 500, y: 42, "text-anchor": "middle" }), { textContent: "STAGE" }),
  wedges);
}

/** An annular wedge; angles in degrees, y growing downward, so the bowl opens below the stage. */
function arcPath(c) {
  const nums = [c.cx, c.cy, c.start_angle, c.end_angle, c.inner_radius, c.outer_radius];
  if (c.shape !== "arc" || !nums.every(Number.isFinite)) return null;
  const pt = (r, deg) => {
    const a = (deg * Math.PI) / 180;
    return `${(c.cx + r * Math.cos(a)).toFixed(1)} ${(c.cy + r * Math.sin(a)).toFixed(1)}`;
  };
  const large = Math.abs(c.end_angle - c.start_angle) > 180 ? 1 : 0;
  const [a0, a1, ri, ro] = [c.start_angle, c.end_angle, c.inner_radius, c.outer_radius];
  return `M ${pt(ro, a0)} A ${ro} ${ro} 0 ${large} 1 ${pt(ro, a1)} L ${pt(ri, a1)} A ${ri} ${ri} 0 ${large} 0 ${pt(ri, a0)} Z`;
}

function wedgeLabel(c, name) {
  const mid = ((c.start_angle + c.end_angle) / 2) * (Math.PI / 180);
  const r = (c.inner_radius + c.outer_radius) / 2;
  const x = (c.cx + r * Math.cos(mid)).toFixed(1);
  const y = c.cy + r * Math.sin(mid);
  const words = name.split(/\s+/);
  const lines = words.length > 1 ? [words.slice(0, -1).join(" "), words[words.length - 1]] : words;
  const text = svg("text", { class: "map__label", x, y: (y - (lines.length - 1) * 11).toFixed(1), "text-anchor": "middle" });
  lines.forEach((line, i) => text.append(Object.assign(svg("tspan", { x, dy: i ? "1.15em" : "0.35em" }), { textContent: line })));
  return text;
}

async function loadSections(s, v) {
  if (v.mode !== "map" || v.loading) return;
  v.loading = true;
  try {
    if (!v.venueId) {
      const dates = await eventDates();
      const d = dates.data && dates.data.find((x) => x.date === v.date);
      if (!s.alive) return;
      if (dates.error) return sectionsTrouble(v, dates.error.message);
      if (!d) return dateGone(s, v, "There is no concert on this date, or its tickets are no longer sold here.");
      v.venueId = d.venue_id;
    }
    const url = `/api/tickets/amphitheater/venues/${encodeURIComponent(v.venueId)}/sections/?event_date=${v.date}`;
    // Asking with the ETag makes an unchanged answer a bodyless 304: cheap for everyone.
    const r = await api(url, { auth: false, headers: v.etag ? { "If-None-Match": v.etag } : {} });
    if (!s.alive || v.mode !== "map" || r.status === 304) return;
    if (r.status === 404 || r.status === 410) return dateGone(s, v, r.error.message);
    if (r.error) return sectionsTrouble(v, r.error.message);
    v.etag = r.headers.get("ETag");
    v.sections = r.data;
    v.el.status.textContent = "";
    if (v.el.alert.dataset.source === "sections") say(v.el.alert, "");
    drawSections(s, v);
  } finally {
    v.loading = false;
  }
}

function sectionsTrouble(v, message) {
  // A failed refresh keeps the last good data on screen; only an empty map says so.
  if (v.sections.length) return;
  v.el.status.textContent = "";
  v.el.alert.dataset.source = "sections";
  say(v.el.alert, message);
}

function drawSections(s, v) {
  const ids = v.sections.map((x) => x.id).join();
  if (ids !== v.sectionIds) {
    v.sectionIds = ids;
    v.refs = new Map();
    v.el.wedges.replaceChildren();
    v.el.list.replaceChildren();
    for (const sec of v.sections) buildSection(s, v, sec);
  }
  for (const sec of v.sections) updateSection(v, sec);
  updatePanel(v);
}

function buildSection(s, v, sec) {
  const ref = {};
  const d = arcPath(sec.map_coordinates || {});
  if (d) {
    ref.title = svg("title");
    ref.wedge = svg("path", { class: "map__wedge", d, fill: sec.map_color || "#6c6c6c", "data-section-id": sec.id }, ref.title);
    ref.wedge.addEventListener("click", () => select(s, v, sec.id));
    v.el.wedges.append(ref.wedge, wedgeLabel(sec.map_coordinates, sec.name));
  }
  ref.avail = h("span", { class: "section__avail" });
  ref.price = h("span", { class: "section__price" });
  // Spaces between the parts keep the button's accessible name readable.
  // The map's colour, as a key from the list to the map: an arbitrary colour can only be set
  // through the CSSOM (allowed by the CSP, unlike style attributes).
  const swatch = h("span", { class: "section__swatch", "aria-hidden": "true" });
  swatch.style.setProperty("--swatch", sec.map_color || "#6c6c6c");
  // A section with wheelchair spaces says how many are free, on a line of its own: the
  // line is there from the start, so its updates move nothing.
  if (sec.accessible_spaces > 0) {
    ref.spaces = h("span", {});
    // The symbol is for the eye; the words say it to a screen reader.
    ref.access = h("span", { class: "section__access" }, h("span", { "aria-hidden": "true" }, "♿ "), ref.spaces);
  }
  ref.button = h("button", {
    type: "button", class: ref.access ? "section section--accessible" : "section",
    "aria-pressed": "false", "data-section-id": sec.id,
  },
  swatch,
  h("span", { class: "section__name" }, sec.name), " ",
  ref.avail, " ",
  ref.price,
  ref.access && [" ", ref.access]);
  ref.button.addEventListener("click", () => select(s, v, sec.id));
  v.el.list.append(h("li", {}, ref.button));
  v.refs.set(sec.id, ref);
}

/** Whether a fan can choose the section: seats on general sale, or wheelchair spaces (which
 * general sale never gets, so they may outlast its seats). */
function sectionOpen(sec) {
  return sec.available_seats > 0 || sec.accessible_available > 0;
}

function spacesFreeText(sec) {
  const n = sec.accessible_available || 0;
  return n > 0 ? `${spacesText(n)} free` : "No wheelchair spaces free";
}

function updateSection(v, sec) {
  const ref = v.refs.get(sec.id);
  const open = sectionOpen(sec);
  const availability = sec.available_seats > 0 ? `${sec.available_seats} available`
    : open ? "Wheelchair spaces only" : sec.is_on_sale ? "Sold out" : "Not on sale";
  ref.avail.textContent = availability;
  ref.price.textContent = money.format(sec.price);
  if (ref.spaces) setText(ref.spaces, spacesFreeText(sec));
  ref.button.disabled = !open;
  ref.button.classList.toggle("is-sold-out", !open);
  const chosen = v.selected === sec.id;
  ref.button.setAttribute("aria-pressed", String(chosen));
  if (ref.wedge) {
    // live availability on the map: full colour, paler when a fifth or less is left, faint
    // when none is
    ref.wedge.classList.toggle("is-low", open && sec.available_seats * 5 <= sec.capacity);
    ref.wedge.classList.toggle("is-dimmed", !open);
    ref.wedge.classList.toggle("is-selected", chosen);
    const spaces = ref.spaces ? `, ${spacesFreeText(sec)}` : "";
    ref.title.textContent = `${sec.name}: ${availability}, ${money.format(sec.price)}${spaces}`;
  }
}

function select(s, v, id) {
  const sec = v.sections.find((x) => x.id === id);
  if (!sec || !sectionOpen(sec)) return;
  if (v.el.pick.open && v.el.pick.sectionId !== id) closePicker(v);
  v.selected = id;
  for (const x of v.sections) updateSection(v, x);
  say(v.el.alert, "");
  updatePanel(v);
  v.el.panel.root.hidden = false;
  v.el.panel.title.focus({ preventScroll: true });
  v.el.panel.root.scrollIntoView({ block: "nearest" });
}

function quantityOptions(most) {
  return Array.from({ length: most }, (_, i) => h("option", { value: String(i + 1) }, String(i + 1)));
}

function buildPanel(s, v) {
  const p = {
    title: h("h2", { id: "panel-title", tabindex: "-1" }),
    price: h("p", { class: "muted" }),
    // Shown for a section with wheelchair spaces: ticked, the quantity counts spaces.
    accessible: h("input", { id: "accessible", name: "accessible", type: "checkbox", "aria-describedby": "accessible-free" }),
    spacesFree: h("p", { id: "accessible-free", class: "hint" }),
    companions: h("input", { id: "companions", name: "companions", type: "checkbox", checked: true }),
    mode: "seats", // what the quantity counts: "seats", or "spaces" (wheelchair spaces)
    counts: { seats: "1", spaces: "1" }, // each mode's last choice: 2 seats are not 2 spaces
    quantityLabel: h("label", { for: "quantity" }, "Quantity"),
    quantity: h("select", { id: "quantity", name: "quantity" }, quantityOptions(MAX_QUANTITY)),
    total: h("p", { class: "panel__total" }),
    submit: h("button", { type: "submit", class: "button button--primary" }, "Find seats"),
    pick: h("button", { type: "button", class: "button", "aria-controls": "pick", "aria-expanded": "false" }, "Pick seats on the map"),
    wait: h("p", { class: "muted panel__wait", role: "status" }),
    note: h("p", { class: "muted" }),
  };
  p.quantity.addEventListener("change", () => updatePanel(v));
  p.accessible.addEventListener("change", () => updatePanel(v));
  p.companions.addEventListener("change", () => updatePanel(v));
  p.companionsRow = h("div", { class: "check", hidden: true },
    p.companions, h("label", { for: "companions" }, "With a companion seat beside each"));
  p.access = h("div", { class: "panel__access", hidden: true },
    h("div", { class: "check" },
      p.accessible,
      h("div", {}, h("label", { for: "accessible" }, "I need wheelchair spaces"), p.spacesFree)),
    p.companionsRow);
  p.root = h("form", { class: "card panel", "aria-labelledby": "panel-title", hidden: true, novalidate: true },
    p.title,
    p.price,
    p.access,
    h("div", { class: "field field--inline" }, p.quantityLabel, p.quantity),
    p.total,
    h("div", { class: "panel__actions" }, p.submit, p.pick),
    p.wait,
    p.note);
  p.pick.addEventListener("click", () => openPicker(s, v));
  p.root.addEventListener("submit", (event) => {
    event.preventDefault();
    findSeats(s, v);
  });
  appConfig().then((c) => {
    const minutes = Math.round((c.hold_ttl_seconds || 600) / 60);
    p.note.textContent = `We hold your seats for ${minutes} minutes while you pay.`;
  });
  return p;
}

function updatePanel(v) {
  const p = v.el.panel;
  const sec = v.sections.find((x) => x.id === v.selected);
  if (!sec) return;
  p.title.textContent = sec.name;
  const kind = sec.section_type === "general_admission" ? "General admission" : "Reserved seats";
  p.price.textContent = `${money.format(sec.price)} per seat · ${kind}`;
  const hasSpaces = sec.accessible_spaces > 0;
  p.access.hidden = !hasSpaces;
  if (!hasSpaces) p.accessible.checked = false; // another section's choice does not carry over
  setText(p.spacesFree, hasSpaces ? spacesFreeText(sec) : "");
  const spaces = p.accessible.checked;
  setQuantityMode(p, spaces ? "spaces" : "seats");
  p.companionsRow.hidden = !spaces;
  p.total.textContent = panelTotal(p, sec);
  // Not disabled for a section shown sold out: the counts may lag, and the API's answer is
  // what the fan should see (a clear "Sold out" alert).
  p.submit.disabled = Boolean(v.busy) || Boolean(v.coolingDown);
  // Best available is the default; a reserved section's seats can also be picked one by one.
  p.pick.hidden = sec.section_type === "general_admission";
  updatePick(v);
}

/** Switches what the quantity counts, keeping each mode's own last choice. */
function setQuantityMode(p, mode) {
  if (p.mode === mode) return;
  p.counts[p.mode] = p.quantity.value;
  p.mode = mode;
  p.quantity.replaceChildren(...quantityOptions(mode === "spaces" ? MAX_SPACES : MAX_QUANTITY));
  p.quantity.value = p.counts[mode];
  p.quantityLabel.textContent = mode === "spaces" ? "Wheelchair spaces" : "Quantity";
}

/** "2 × $75.00 = $150.00", saying what the seats are when they are wheelchair spaces. */
function panelTotal(p, sec) {
  const n = Number(p.quantity.value);
  if (p.mode === "spaces") {
    if (!(sec.accessible_available > 0)) return "No wheelchair spaces are free in this section right now.";
    const seats = p.companions.checked ? 2 * n : n;
    const what = p.companions.checked
      ? `${spacesText(n)} and ${n === 1 ? "1 companion seat" : `${n} companion seats`}`
      : spacesText(n);
    return `${what}: ${seats} × ${money.format(sec.price)} = ${money.format(sec.price * seats)}`;
  }
  if (sec.available_seats > 0) return `${n} × ${money.format(sec.price)} = ${money.format(sec.price * n)}`;
  return sectionOpen(sec)
    ? "Only wheelchair spaces are left in this section."
    : "This section has just sold out. Please choose another.";
}

/** What "Find seats" asks for: the best seats for a quantity, or wheelchair spaces. */
function holdChoice(p, sec) {
  const n = Number(p.quantity.value);
  return p.mode === "spaces"
    ? { section_id: sec.id, accessible: n, companions: p.companions.checked }
    : { section_id: sec.id, quantity: n };
}

async function findSeats(s, v) {
  const sec = v.sections.find((x) => x.id === v.selected);
  if (!sec || v.busy || v.coolingDown) return;
  const p = v.el.panel;
  v.busy = true;
  updatePanel(v);
  say(v.el.alert, "");
  p.wait.textContent = p.mode === "spaces" ? "Finding wheelchair spaces…" : "Finding seats…";
  const r = await requestHold(s, v, p.wait, holdChoice(p, sec));
  if (r) holdRefused(s, v, r);
}

/** POSTs a hold (`choice`: the section and a quantity, or the seats picked). On 201 it goes
 * to the hold's page and answers null; otherwise it answers the refusal. */
async function requestHold(s, v, wait, choice) {
  const headers = { "Idempotency-Key": newIdempotencyKey(), ...holderHeaders() };
  if (v.admission) headers["X-Admission-Token"] = v.admission.token;
  const body = { event_date: v.date, ...choice };
  const r = await api(`${HOLDS}/create/`, { method: "POST", body, headers });
  if (!s.alive) return null;
  v.busy = false;
  wait.textContent = "";
  updatePanel(v);
  if (r.status !== 201) return r;
  session.set(holdKey(r.data.hold_id), r.data);
  location.hash = `#/hold/${r.data.hold_id}`;
  return null;
}

function holdRefused(s, v, r) {
  const code = r.error.code;
  v.el.alert.dataset.source = "hold";
  if (code === "admission_required" && v.rejoins < 2) {
    // The turn ended or the token is not this fan's: back to the line for a fresh one.
    v.rejoins += 1;
    v.pollSeq += 1; // drop the poll of the old place
    forgetLine(v);
    v.mode = null;
    render("Choose seats", [heading("Choose your seats"), h("p", { class: "muted", role: "status" }, "Checking your place in line…")], { focus: true });
    checkLine(s, v, { fresh: true });
    return;
  }
  if (r.status === 429) {
    say(v.el.alert, MESSAGES.tooMany);
    coolDown(s, v, retryAfterSeconds(r, 5));
    return;
  }
  if (code === "sold_out") say(v.el.alert, MESSAGES.soldOut);
  else if (code === "not_enough_adjacent_seats") say(v.el.alert, MESSAGES.notAdjacent);
  else if (code === "accessible_unavailable") say(v.el.alert, spacesRefused(v, r));
  else if (r.status === 401) say(v.el.alert, MESSAGES.signInExpired);
  else say(v.el.alert, r.error.message);
  if (r.status === 409) {
    v.etag = null; // the counts are stale: fetch them now, not in 5 s
    loadSections(s, v);
  }
}

/** Fewer wheelchair spaces than asked for: how many there are (with companions, if asked). */
function spacesRefused(v, r) {
  const n = Number(r.error.details && r.error.details.available) || 0;
  return n > 0 ? MESSAGES.fewSpaces(n, v.el.panel.companions.checked) : MESSAGES.noSpaces;
}

/** Honours Retry-After: the button stays off, with a visible count, until the API will listen. */
function coolDown(s, v, seconds) {
  const until = Date.now() + seconds * 1000;
  v.coolingDown = true;
  updatePanel(v);
  const tick = () => {
    const left = Math.ceil((until - Date.now()) / 1000);
    const text = left > 0 ? `You can try again in ${left} ${left === 1 ? "second" : "seconds"}.` : "";
    v.el.panel.wait.textContent = text;
    if (v.el.pick.open) v.el.pick.wait.textContent = text;
    if (left > 0) {
      later(s, tick, 1000);
    } else {
      v.coolingDown = false;
      updatePanel(v);
    }
  };
  tick();
}

// -- picking seats on a reserved section's map ----------------------------------------------
//
// One button a seat (1,500 in the larger sections): free ones toggle (aria-pressed), taken
// ones are disabled. The map is a single Tab stop; the arrow keys move between free seats.

const seatKey = (row, seat) => `${row}-${seat}`;
const seatName = (row, seat) => `Row ${row}, Seat ${seat}`;
const REFUSED_MS = 30000; // how long a seat the API refused stays taken here, if the map lags
// The seat map's free seats set aside for fans who need wheelchair spaces: "Find seats" with
// "I need wheelchair spaces" gets them, so they are never picked here (the API refuses it).
const SET_ASIDE = { W: "wheelchair space", C: "companion seat" };

function buildPicker(s, v) {
  const k = {
    open: false,
    sectionId: null,
    seq: 0,
    etag: null,
    loading: false,
    again: false,
    rowLabels: [],
    rows: [], // the last map's seat strings, one a row
    onSale: true,
    buttons: [], // [row][seat - 1]
    picked: new Map(), // key -> {row, seat, r, c}
    refused: new Map(), // key -> when the API said someone else has it
    tabStop: null,
    title: h("h2", { id: "pick-title", tabindex: "-1" }, "Pick seats"),
    close: h("button", { type: "button", class: "button button--quiet pick__close" }, "Close the map"),
    count: h("p", { class: "muted pick__count" }),
    status: h("p", { class: "muted", role: "status" }),
    rowsEl: h("div", { class: "seatmap__rows", role: "group", "aria-labelledby": "pick-title" }),
    alertSlot: h("div", { class: "pick__alert" }),
    summary: h("p", { class: "pick__summary", role: "status" }),
    total: h("p", { class: "panel__total" }),
    submit: h("button", { type: "submit", class: "button button--primary", disabled: true }, "Hold picked seats"),
    wait: h("p", { class: "muted panel__wait", role: "status" }),
  };
  const key = (cls, text) => h("span", { class: "seat-key" }, h("span", { class: `seat-key__box ${cls}`, "aria-hidden": "true" }), text);
  // Only for a section with wheelchair spaces (openPicker shows them).
  k.accessKeys = h("span", { class: "seat-keys__access", hidden: true },
    key("is-wheelchair", "Wheelchair space"), " ", key("is-companion", "Companion seat"));
  k.accessNote = h("p", { class: "hint pick__access-note", hidden: true },
    "Wheelchair spaces and their companion seats cannot be picked here: to hold them, tick "
    + "“I need wheelchair spaces” above and choose Find seats.");
  // Wider than a phone, the rows scroll sideways inside the map; the stage stays in view.
  k.scroller = h("div", { class: "seatmap" }, k.rowsEl);
  k.root = h("form", { id: "pick", class: "card pick", "aria-labelledby": "pick-title", hidden: true, novalidate: true },
    h("div", { class: "pick__head" }, k.title, k.close),
    h("p", { class: "muted" },
      `Pick up to ${MAX_QUANTITY} seats. Row A is nearest the stage. In the map, the arrow keys move between free seats.`),
    h("p", { class: "seat-keys" }, key("is-free", "Free"), " ", key("is-picked", "Picked"), " ", key("is-taken", "Taken"),
      k.accessKeys),
    k.accessNote,
    k.count,
    k.status,
    h("div", { class: "seatmap__stage", "aria-hidden": "true" }, "Stage"),
    k.scroller,
    k.alertSlot,
    k.summary,
    k.total,
    k.submit,
    k.wait);
  k.close.addEventListener("click", () => {
    closePicker(v);
    v.el.panel.pick.focus();
  });
  k.rowsEl.addEventListener("click", (event) => {
    const b = event.target.closest("button.seat");
    if (b && !b.disabled) togglePick(v, b);
  });
  k.rowsEl.addEventListener("keydown", (event) => seatKeys(k, event));
  k.rowsEl.addEventListener("focusin", (event) => {
    if (event.target.matches("button.seat")) setTabStop(k, event.target);
  });
  k.root.addEventListener("submit", (event) => {
    event.preventDefault();
    holdPicked(s, v);
  });
  return k;
}

function openPicker(s, v) {
  const k = v.el.pick;
  const sec = v.sections.find((x) => x.id === v.selected);
  if (!sec || sec.section_type === "general_admission") return;
  if (!k.open || k.sectionId !== sec.id) {
    resetPicker(k);
    k.open = true;
    k.sectionId = sec.id;
    k.title.textContent = `Pick seats in ${sec.name}`;
    k.accessKeys.hidden = !(sec.accessible_spaces > 0);
    k.accessNote.hidden = k.accessKeys.hidden;
    k.status.textContent = "Loading the seats…";
    k.count.textContent = "";
    k.root.hidden = false;
    k.alertSlot.append(v.el.alert); // the fan's eyes are on the map now: so are its messages
    v.el.panel.pick.setAttribute("aria-expanded", "true");
    updatePick(v);
    loadSeatMap(s, v, { fresh: true });
  }
  k.root.scrollIntoView({ block: "start" });
  k.title.focus({ preventScroll: true });
}

function closePicker(v) {
  const k = v.el.pick;
  if (!k.open) return;
  resetPicker(k);
  k.root.hidden = true;
  say(v.el.alert, "");
  v.el.panel.root.before(v.el.alert);
  v.el.panel.pick.setAttribute("aria-expanded", "false");
}

function resetPicker(k) {
  k.open = false;
  k.sectionId = null;
  k.seq += 1; // an answer still on its way is for a map no longer shown
  k.etag = null;
  k.again = false;
  k.rowLabels = [];
  k.rows = [];
  k.buttons = [];
  k.picked.clear();
  k.refused.clear();
  k.tabStop = null;
  k.rowsEl.replaceChildren();
  k.summary.textContent = "";
  k.total.textContent = "";
  k.wait.textContent = "";
}

/** Fetches the open map (with its ETag: unchanged, it costs a 304) and draws it. */
async function loadSeatMap(s, v, { fresh = false, dropTaken = false } = {}) {
  const k = v.el.pick;
  if (!k.open || v.mode !== "map" || !v.venueId) return;
  if (k.loading) {
    // one is on its way, maybe from before a refusal: ask again once it is back
    if (fresh) k.again = { dropTaken: dropTaken || Boolean(k.again && k.again.dropTaken) };
    return;
  }
  if (fresh) k.etag = null;
  k.loading = true;
  const seq = k.seq;
  const url = `/api/tickets/amphitheater/venues/${encodeURIComponent(v.venueId)}/sections/`
    + `${encodeURIComponent(k.sectionId)}/seats/?event_date=${v.date}`;
  let r;
  try {
    r = await api(url, { auth: false, headers: k.etag ? { "If-None-Match": k.etag } : {} });
  } finally {
    k.loading = false;
  }
  if (!s.alive || v.mode !== "map") return;
  if (seq === k.seq && r.status !== 304) {
    if (r.error) {
      // A failed refresh keeps the seats on screen; only an empty map says so.
      if (!k.rows.length) k.status.textContent = r.error.message;
    } else {
      k.etag = r.headers.get("ETag");
      drawSeats(v, r.data, dropTaken);
    }
  }
  if (k.again) {
    const again = k.again;
    k.again = false;
    loadSeatMap(s, v, { fresh: true, dropTaken: again.dropTaken });
  }
}

function seatFree(k, r, c) {
  if (!k.onSale || k.rows[r][c] !== "0") return false;
  const key = seatKey(k.rowLabels[r], c + 1);
  const refused = k.refused.get(key);
  if (refused === undefined) return true;
  if (Date.now() - refused < REFUSED_MS) return false; // the map may lag the refusal by a moment
  k.refused.delete(key);
  return true;
}

function drawSeats(v, data, dropTaken) {
  const k = v.el.pick;
  const labels = data.rows.map((x) => x.row);
  const sameShape = labels.join() === k.rowLabels.join()
    && data.rows.every((x, r) => x.seats.length === k.buttons[r].length);
  const focused = k.rowsEl.contains(document.activeElement) ? document.activeElement : null;
  k.rows = data.rows.map((x) => x.seats);
  k.onSale = data.on_sale !== false;
  // the map confirms a refusal: nothing to remember any more
  for (const [key] of k.refused) {
    const [row, seat] = key.split("-");
    const r = labels.indexOf(row);
    if (r >= 0 && k.rows[r][Number(seat) - 1] !== "0") k.refused.delete(key);
  }
  if (!sameShape) buildSeats(k, data, labels);
  if (dropTaken) {
    // after a refusal: keep the fan's picks that are still free, let go of the others
    for (const [key, p] of k.picked) {
      if (!seatFree(k, p.r, p.c)) {
        k.picked.delete(key);
        k.buttons[p.r][p.c].setAttribute("aria-pressed", "false");
      }
    }
  }
  k.rows.forEach((row, r) => {
    for (let c = 0; c < row.length; c += 1) paintSeat(k, r, c);
  });
  setText(k.status, !k.onSale
    ? "The seats in this section are not on sale for this date."
    : data.free === 0 ? "No seats are free in this section right now." : "");
  const spaces = data.wheelchair || 0;
  const setAside = spaces + (data.companion || 0);
  setText(k.count, `${whole.format(data.free)} of ${whole.format(data.free + data.held + data.sold + setAside)} seats free`
    + (spaces ? `, and ${spacesText(spaces)}` : ""));
  ensureTabStop(k, focused);
  updatePick(v);
}

function buildSeats(k, data, labels) {
  k.rowLabels = labels;
  k.tabStop = null;
  k.rowsEl.style.setProperty("--seats", String(data.seats_per_row || 1));
  k.buttons = data.rows.map((x, r) => Array.from(x.seats, (_, c) => h("button", {
    type: "button", class: "seat", tabindex: "-1", "aria-pressed": "false", "data-r": r, "data-c": c,
  })));
  k.rowsEl.replaceChildren(...data.rows.map((x, r) => h("div", { class: "seatmap__row" },
    h("span", { class: "seatmap__label", "aria-hidden": "true" }, x.row),
    k.buttons[r],
    h("span", { class: "seatmap__label", "aria-hidden": "true" }, x.row))));
  // the best seats are in the middle: start there when the map is wider than the screen
  requestAnimationFrame(() => {
    k.scroller.scrollLeft = (k.scroller.scrollWidth - k.scroller.clientWidth) / 2;
  });
}

function paintSeat(k, r, c) {
  const b = k.buttons[r][c];
  const row = k.rowLabels[r];
  // A picked seat stays the fan's until the hold says otherwise: the map may lag.
  const free = k.picked.has(seatKey(row, c + 1)) || seatFree(k, r, c);
  const char = k.rows[r][c];
  // "free", "taken", or the set-aside seat's letter (the CSS draws W and C apart)
  const state = free ? "free" : SET_ASIDE[char] ? char : "taken";
  if (b.dataset.state === state) return;
  b.dataset.state = state;
  const name = free ? seatName(row, c + 1) : `${seatName(row, c + 1)}, ${SET_ASIDE[state] || "taken"}`;
  b.disabled = !free;
  b.setAttribute("aria-label", name);
  b.title = name;
}

function togglePick(v, b) {
  const k = v.el.pick;
  const r = Number(b.dataset.r);
  const c = Number(b.dataset.c);
  const key = seatKey(k.rowLabels[r], c + 1);
  if (k.picked.has(key)) {
    k.picked.delete(key);
    b.setAttribute("aria-pressed", "false");
    paintSeat(k, r, c);
  } else if (k.picked.size >= MAX_QUANTITY) {
    v.el.alert.dataset.source = "pick-limit";
    say(v.el.alert, MESSAGES.pickLimit);
    return;
  } else {
    k.picked.set(key, { row: k.rowLabels[r], seat: c + 1, r, c });
    b.setAttribute("aria-pressed", "true");
  }
  if (v.el.alert.dataset.source === "pick-limit") say(v.el.alert, "");
  ensureTabStop(k, document.activeElement);
  updatePick(v);
}

function pickedInOrder(k) {
  return [...k.picked.values()].sort((a, b) => a.r - b.r || a.c - b.c);
}

function updatePick(v) {
  const k = v.el.pick;
  if (!k.open) return;
  const picks = pickedInOrder(k);
  const n = picks.length;
  // Set only when it changes: the summary is a live region, and the map polls.
  setText(k.summary, n
    ? `${n} ${n === 1 ? "seat" : "seats"} picked: ${picks.map((x) => `Row ${x.row} Seat ${x.seat}`).join(", ")}`
    : "No seats picked yet.");
  const sec = v.sections.find((x) => x.id === k.sectionId);
  setText(k.total, n && sec ? `${n} × ${money.format(sec.price)} = ${money.format(sec.price * n)}` : "");
  k.submit.disabled = n === 0 || Boolean(v.busy) || Boolean(v.coolingDown);
}

// -- the keyboard: one Tab stop in the map, the arrows between free seats ---------------------

function setTabStop(k, b) {
  if (k.tabStop === b) return;
  if (k.tabStop) k.tabStop.tabIndex = -1;
  k.tabStop = b;
  if (b) b.tabIndex = 0;
}

function ensureTabStop(k, focused) {
  let stop = k.tabStop && k.tabStop.isConnected && !k.tabStop.disabled ? k.tabStop : null;
  if (!stop) {
    const first = pickedInOrder(k)[0];
    stop = first
      ? k.buttons[first.r][first.c]
      : freeInRows(k, 0, 1, Math.floor(((k.buttons[0] || []).length - 1) / 2));
  }
  setTabStop(k, stop);
  // The focused seat was just taken: the focus goes to the nearest free one.
  if (focused && focused.matches("button.seat") && focused.disabled && stop) stop.focus();
  // A map with nothing to focus in it must still scroll from the keyboard.
  if (stop) k.scroller.removeAttribute("tabindex");
  else k.scroller.setAttribute("tabindex", "0");
}

function freeAlong(k, r, c, step) {
  const row = k.buttons[r];
  for (; row && c >= 0 && c < row.length; c += step) if (!row[c].disabled) return row[c];
  return null;
}

function nearestFree(k, r, c) {
  const row = k.buttons[r];
  for (let d = 0; row && d < row.length; d += 1) {
    for (const x of [c - d, c + d]) if (row[x] && !row[x].disabled) return row[x];
  }
  return null;
}

function freeInRows(k, r, step, c) {
  for (; r >= 0 && r < k.buttons.length; r += step) {
    const b = nearestFree(k, r, c);
    if (b) return b;
  }
  return null;
}

function seatKeys(k, event) {
  const b = event.target.closest("button.seat");
  if (!b) return;
  const r = Number(b.dataset.r);
  const c = Number(b.dataset.c);
  const last = k.buttons[r].length - 1;
  const moves = {
    ArrowLeft: () => freeAlong(k, r, c - 1, -1),
    ArrowRight: () => freeAlong(k, r, c + 1, 1),
    Home: () => freeAlong(k, r, 0, 1),
    End: () => freeAlong(k, r, last, -1),
    ArrowUp: () => freeInRows(k, r - 1, -1, c),
    ArrowDown: () => freeInRows(k, r + 1, 1, c),
  };
  if (!moves[event.key]) return;
  event.preventDefault();
  const to = moves[event.key]();
  if (to) {
    setTabStop(k, to);
    to.focus();
  }
}

// -- holding the picked seats -----------------------------------------------------------------

async function holdPicked(s, v) {
  const k = v.el.pick;
  const sec = v.sections.find((x) => x.id === k.sectionId);
  if (!sec || !k.picked.size || v.busy || v.coolingDown) return;
  v.busy = true;
  updatePanel(v);
  say(v.el.alert, "");
  k.wait.textContent = "Holding your seats…";
  const seats = pickedInOrder(k).map((x) => ({ row: x.row, seat: x.seat }));
  const r = await requestHold(s, v, k.wait, { section_id: sec.id, seats });
  if (!r) return;
  if (r.error.code === "seats_unavailable") seatsTaken(s, v, r);
  else {
    holdRefused(s, v, r);
    if (r.status === 409) loadSeatMap(s, v, { fresh: true, dropTaken: true });
  }
  // The button was off while waiting, which dropped the focus: put it back near the fan.
  if (k.open && v.mode === "map" && (!document.activeElement || document.activeElement === document.body)) {
    (k.submit.disabled ? k.title : k.submit).focus({ preventScroll: true });
  }
}

/** Someone else was quicker: say which seats, show them taken, keep the fan's other picks. */
function seatsTaken(s, v, r) {
  const k = v.el.pick;
  const details = r.error.details || {};
  const gone = Array.isArray(details.unavailable) ? details.unavailable : [];
  const now = Date.now();
  for (const x of gone) {
    const key = seatKey(x.row, x.seat);
    const p = k.picked.get(key);
    k.picked.delete(key);
    k.refused.set(key, now);
    if (p) {
      k.buttons[p.r][p.c].setAttribute("aria-pressed", "false");
      paintSeat(k, p.r, p.c);
    }
  }
  v.el.alert.dataset.source = "hold";
  say(v.el.alert, gone.length
    ? `Someone else just took ${listText(gone.map((x) => seatName(x.row, x.seat)))}. Pick other seats.`
    : r.error.message);
  ensureTabStop(k, null);
  updatePick(v);
  loadSeatMap(s, v, { fresh: true, dropTaken: true });
  v.etag = null; // the sections' counts have moved too
  loadSections(s, v);
}

function listText(items) {
  return items.length < 2 ? items.join("") : `${items.slice(0, -1).join(", ")} and ${items[items.length - 1]}`;
}

// ---------------------------------------------------------------------------------------
// 3. A hold: the seats, the countdown, billing and payment

function holdPage(s, holdId) {
  const v = {
    holdId,
    hold: session.get(holdKey(holdId)),
    order: session.get(orderKey(holdId)),
    deadline: null, // performance.now() based: immune to the fan's clock being wrong
    shown: -1,
    expired: false,
    paying: false,
    warned: false,
  };
  v.el = {
    alert: alertBox(),
    section: h("h2", { class: "hold__section" }),
    date: h("p", { class: "hold__date" }),
    seats: h("ul", { class: "hold__seats" }),
    spaces: h("p", { class: "hold__spaces", hidden: true }),
    total: h("p", { class: "hold__total" }),
    timer: h("p", { class: "timer", role: "timer", "aria-label": "Time left on your hold" }),
    warning: h("p", { class: "sr-only", role: "status" }),
    again: h("p", { hidden: true }),
    release: h("button", { type: "button", class: "button button--quiet" }, "Release seats"),
    payment: h("section", { class: "card payment", "aria-labelledby": "payment-title", hidden: true }),
  };
  v.form = buildBilling(s, v);
  const e = v.el;
  render("Your seats", [
    heading("Your seats"),
    e.alert,
    e.again,
    h("div", { class: "hold" },
      h("section", { class: "card hold__summary", "aria-label": "Hold summary" },
        e.section, e.date, e.seats, e.spaces, e.total, e.timer, e.warning),
      h("div", { class: "hold__checkout" }, v.form.root, e.payment, h("p", {}, e.release)),
    ),
  ]);
  e.release.addEventListener("click", () => releaseHold(s, v));
  if (v.hold) {
    fillHold(s, v);
    const expires = Date.parse(v.hold.expires_at);
    if (!Number.isNaN(expires)) v.deadline = performance.now() + (expires - Date.now());
  }
  if (v.order) showPayment(s, v);
  every(s, () => tick(s, v), 250);
  tick(s, v);
  refreshHold(s, v);
}

async function refreshHold(s, v) {
  const r = await api(`/api/tickets/amphitheater/holds/${v.holdId}/`, { auth: false });
  if (!s.alive) return;
  if (r.error) {
    if (r.status === 404) {
      v.expired = true;
      say(v.el.alert, "We could not find this hold. It may have ended some time ago.");
      lockCheckout(v, "#/");
    } else if (!v.hold) {
      say(v.el.alert, r.error.message);
    }
    return;
  }
  v.hold = { ...v.hold, ...r.data };
  fillHold(s, v);
  if (r.data.status === "active") {
    v.deadline = performance.now() + r.data.time_left_seconds * 1000;
    tick(s, v);
  } else if (r.data.status === "sold") {
    v.expired = true;
    v.el.timer.textContent = "";
    say(v.el.alert, "These seats have been bought.");
    lockCheckout(v, null);
  } else {
    expire(v);
  }
}

function fillHold(s, v) {
  const hold = v.hold;
  v.el.section.textContent = hold.section_name || "";
  v.el.date.textContent = formatDay(hold.event_date);
  dateDisplay(hold.event_date).then((text) => s.alive && (v.el.date.textContent = text));
  const seats = Array.isArray(hold.seats) ? hold.seats : [];
  v.el.seats.replaceChildren(...(seats.length
    ? seats.map((x) => h("li", {}, `Row ${x.row}, Seat ${x.seat}`))
    : [h("li", {}, `General admission × ${hold.quantity}`)]));
  // The hold says how many wheelchair spaces it has, not which of its seats they are.
  const spaces = holdSpacesText(hold);
  v.el.spaces.replaceChildren(h("span", { "aria-hidden": "true" }, "♿ "), `Includes ${spaces}`);
  v.el.spaces.hidden = !spaces;
  v.el.total.textContent = `Total: ${money.format(hold.total_price)}`;
}

function tick(s, v) {
  if (v.expired || v.deadline === null) return;
  const left = Math.max(0, Math.ceil((v.deadline - performance.now()) / 1000));
  if (left !== v.shown) {
    v.shown = left;
    v.el.timer.textContent = `Held for ${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`;
    // role=timer is not announced as it ticks; say it once when time runs short.
    if (left <= 60 && left > 0 && !v.warned) {
      v.warned = true;
      v.el.warning.textContent = "One minute left to finish your purchase.";
    }
  }
  if (left === 0 && !v.paying) expire(v);
}

function expire(v) {
  if (v.expired) return;
  v.expired = true;
  v.el.timer.textContent = "Held for 0:00";
  say(v.el.alert, MESSAGES.holdExpired);
  session.remove(holdKey(v.holdId));
  lockCheckout(v, chooseAgainHref(v));
}

function chooseAgainHref(v) {
  return v.hold && v.hold.event_date ? `#/date/${v.hold.event_date}` : "#/";
}

/** Nothing more can be bought through this hold: turn the forms off and offer a way back. */
function lockCheckout(v, againHref) {
  v.form.fieldset.disabled = true;
  if (v.payButton) v.payButton.disabled = true;
  v.el.release.hidden = true;
  if (againHref) {
    v.el.again.replaceChildren(link(againHref, "Choose seats again", "button button--primary"));
    v.el.again.hidden = false;
  }
}

function buildBilling(s, v) {
  const claims = tokenClaims(getToken() || "");
  const field = (id, label, attrs) => h("div", { class: "field" },
    h("label", { for: id }, label),
    h("input", { id, name: id, required: true, ...attrs }));
  const fieldset = h("fieldset", {},
    h("legend", {}, "Your details"),
    field("billing-email", "Email", { type: "email", autocomplete: "email", value: claims.email || null, maxlength: 320 }),
    field("billing-first", "First name", { type: "text", autocomplete: "given-name", maxlength: 100 }),
    field("billing-last", "Last name", { type: "text", autocomplete: "family-name", maxlength: 100 }),
    h("button", { type: "submit", class: "button button--primary" }, "Continue to payment"));
  const root = h("form", { class: "card billing" }, fieldset);
  const submit = fieldset.querySelector("button");
  root.addEventListener("submit", (event) => {
    event.preventDefault();
    checkout(s, v);
  });
  return { root, fieldset, submit };
}

async function checkout(s, v) {
  const value = (id) => document.getElementById(id).value.trim();
  const billing = { email: value("billing-email"), firstName: value("billing-first"), lastName: value("billing-last") };
  v.form.fieldset.disabled = true;
  say(v.el.alert, "");
  const r = await api("/api/payments/amphitheater/checkout/", { method: "POST", body: { hold_id: v.holdId, billing_details: billing } });
  if (!s.alive) return;
  if (r.error) {
    v.form.fieldset.disabled = v.expired;
    paymentRefused(v, r);
    if (!v.expired) v.form.submit.focus(); // disabling the fieldset dropped the focus
    return;
  }
  v.order = { ...r.data, email: billing.email };
  session.set(orderKey(v.holdId), v.order);
  await showPayment(s, v);
  if (s.alive && v.payButton && !v.payButton.disabled) v.payButton.focus();
}

function paymentRefused(v, r) {
  const code = r.error.code;
  if (r.status === 410 || code === "hold_not_active") {
    v.paying = false;
    expire(v);
  } else if (code === "checkout_conflict") {
    say(v.el.alert, `${r.error.message} Please choose seats again.`);
    lockCheckout(v, chooseAgainHref(v));
  } else if (r.status === 401) {
    say(v.el.alert, MESSAGES.signInExpired);
  } else {
    say(v.el.alert, r.error.message);
  }
}

async function showPayment(s, v) {
  v.form.fieldset.disabled = true; // the order is made with these details
  const box = v.el.payment;
  box.replaceChildren(
    h("h2", { id: "payment-title" }, "Payment"),
    h("p", {}, `Order ${v.order.order_number}`),
  );
  box.hidden = false;
  const config = await appConfig();
  if (!s.alive) return;
  const demo = typeof v.order.demo_mode === "boolean" ? v.order.demo_mode : config.demo_mode !== false;
  if (demo) {
    box.append(h("p", { class: "muted" }, "Demo mode: no card is charged."));
    v.payButton = h("button", { type: "button", class: "button button--primary" }, "Pay (demo)");
    v.payButton.addEventListener("click", () => pay(s, v, null));
    v.payButton.disabled = v.expired;
    box.append(v.payButton);
    return;
  }
  if (!config.stripe_publishable_key) {
    say(v.el.alert, "Card payments are not available right now. Please try again later.");
    return;
  }
  const mount = h("div", { class: "stripe-element" });
  v.payButton = h("button", { type: "button", class: "button button--primary", disabled: true }, "Pay");
  box.append(mount, v.payButton);
  try {
    const Stripe = await loadStripe();
    if (!s.alive) return;
    const stripe = Stripe(config.stripe_publishable_key);
    const elements = stripe.elements({ clientSecret: v.order.client_secret });
    elements.create("payment").mount(mount);
    v.payButton.disabled = v.expired;
    v.payButton.addEventListener("click", () => pay(s, v, { stripe, elements }));
  } catch {
    say(v.el.alert, "The card form could not be loaded. Check your connection and reload the page.");
  }
}

let stripePromise = null;
function loadStripe() {
  if (window.Stripe) return Promise.resolve(window.Stripe);
  stripePromise ??= new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = STRIPE_JS;
    script.addEventListener("load", () => (window.Stripe ? resolve(window.Stripe) : reject(new Error("no Stripe"))));
    script.addEventListener("error", () => {
      stripePromise = null;
      script.remove();
      reject(new Error("Stripe.js did not load"));
    });
    document.head.append(script);
  });
  return stripePromise;
}

async function pay(s, v, card) {
  if (v.paying || v.expired) return;
  v.paying = true;
  v.payButton.disabled = true;
  say(v.el.alert, "");
  if (card) {
    const result = await card.stripe.confirmPayment({
      elements: card.elements,
      redirect: "if_required",
      // Only for payment methods that must leave the page; the webhook finishes those orders.
      confirmParams: { return_url: `${location.origin}/#/done/${v.order.order_number}` },
    });
    if (!s.alive) return;
    if (result.error) {
      v.paying = false;
      v.payButton.disabled = v.expired;
      say(v.el.alert, `Payment failed: ${result.error.message}`);
      tick(s, v);
      return;
    }
  }
  const r = await confirmOrder(s, v, Boolean(card));
  if (!s.alive) return;
  if (r.data && r.data.status === "COMPLETED") return finish(v);
  v.paying = false;
  if (r.data) {
    say(v.el.alert, r.data.message); // the seats were gone when the payment arrived: refunded
    lockCheckout(v, chooseAgainHref(v));
  } else if (card && r.error.code === "payment_not_completed") {
    finish(v); // Stripe took the money; the webhook will issue the tickets
  } else {
    v.payButton.disabled = v.expired;
    paymentRefused(v, r);
    tick(s, v);
  }
}

/** With Stripe the payment may still be settling: give it a few seconds before giving up. */
async function confirmOrder(s, v, withStripe) {
  for (let attempt = 0; ; attempt += 1) {
    const r = await api("/api/payments/amphitheater/confirm/", { method: "POST", body: { order_id: v.order.order_id } });
    const settling = withStripe && r.error && r.error.code === "payment_not_completed";
    if (!settling || attempt >= 4 || !s.alive) return r;
    await new Promise((done) => setTimeout(done, 1500));
  }
}

function finish(v) {
  session.set(doneKey(v.order.order_number), { email: v.order.email || null });
  session.remove(holdKey(v.holdId));
  session.remove(orderKey(v.holdId));
  location.hash = `#/done/${v.order.order_number}`;
}

async function releaseHold(s, v) {
  v.el.release.disabled = true;
  const r = await api(`/api/tickets/amphitheater/holds/${v.holdId}/release/`, { method: "POST" });
  if (!s.alive) return;
  if (r.error && r.status !== 410 && r.status !== 404) {
    v.el.release.disabled = false;
    say(v.el.alert, r.status === 401 ? MESSAGES.signInExpired : r.error.message);
    return;
  }
  session.remove(holdKey(v.holdId));
  session.remove(orderKey(v.holdId));
  location.hash = chooseAgainHref(v);
}

// ---------------------------------------------------------------------------------------
// 4. Done

function donePage(s, orderNumber) {
  const done = session.get(doneKey(orderNumber)) || {};
  const signedIn = Boolean(getToken());
  const where = done.email ? `to ${done.email}` : "to you";
  render("You're going!", [
    heading("You're going!"),
    h("p", { class: "lede" }, `Order ${orderNumber}`),
    signedIn
      ? h("p", {}, "Your tickets are ready under My tickets, with a QR code for each seat.")
      : [
        h("p", {}, `We have emailed your tickets ${where}.`),
        h("p", {}, "Sign in with the same email address to see them under My tickets."),
      ],
    h("p", {}, link("#/tickets", "See my tickets", "button button--primary")),
  ]);
}

// ---------------------------------------------------------------------------------------
// 5. My tickets

function ticketsPage(s, note = "") {
  if (!getToken()) return signInForm(s, note);
  const alert = alertBox();
  const status = h("p", { class: "muted", role: "status" }, "Loading your tickets…");
  // What the fan just did (a ticket sent): kept while the list reloads under it.
  const notice = h("p", { class: "notice", role: "status" });
  const list = h("div", { class: "tickets" });
  const email = tokenClaims(getToken()).email;
  const signOutButton = h("button", { type: "button", class: "button button--quiet" }, "Sign out");
  signOutButton.addEventListener("click", () => {
    signOut();
    ticketsPage(startScreen());
    focusHeading();
  });
  render("My tickets", [
    heading("My tickets"),
    h("div", { class: "account" }, h("p", {}, email ? `Signed in as ${email}` : "Signed in"), signOutButton),
    alert,
    notice,
    status,
    list,
  ]);
  loadTickets(s, { alert, notice, status, list });
}

async function loadTickets(s, el) {
  const r = await api("/api/tickets/amphitheater/my-tickets/");
  if (!s.alive) return;
  el.status.textContent = "";
  if (r.status === 401) return ticketsPage(startScreen(), MESSAGES.signInExpired);
  if (r.error) return say(el.alert, r.error.message);
  if (r.data.length === 0) {
    el.list.replaceChildren(); // the last one may just have been sent to someone
    el.status.textContent = "No tickets yet.";
    return;
  }
  el.list.replaceChildren(...r.data.map((t) => ticketCard(s, el, t)));
}

function ticketCard(s, el, t) {
  const row = (label, value) => [h("dt", {}, label), h("dd", {}, value)];
  return h("article", { class: "card ticket" },
    h("h2", {}, t.event_name),
    h("dl", { class: "ticket__facts" },
      row("Date", formatDay(t.event_date)),
      row("Section", t.section),
      row("Seat", t.seat_location),
      row("Price paid", money.format(t.price_paid)),
      row("Ticket code", t.ticket_code),
      t.status !== "ISSUED" ? row("Status", t.status === "VOID" ? "Void" : t.status === "REFUNDED" ? "Refunded" : t.status) : null,
    ),
    t.includes_festival_access && t.festival_day_ticket_code
      ? h("p", { class: "ticket__festival" }, `Festival day pass: ${t.festival_day_ticket_code}`)
      : null,
    h("img", { class: "ticket__qr", src: t.qr_code, alt: `QR code for ticket ${t.ticket_code}`, width: 200, height: 200 }),
    t.status === "ISSUED" ? transferBox(s, el, t) : null,
  );
}

/**
 * "Transfer": a disclosure under the ticket with a small form. The fan types the recipient's
 * email and ticks that the ticket will no longer be theirs (the confirmation, in the form
 * itself); the API moves the ticket and its festival pass with new codes, and the list
 * reloads without it.
 */
function transferBox(s, el, t) {
  const id = `transfer-${t.id}`;
  const alert = alertBox();
  const email = h("input", {
    id: `${id}-email`, name: "email", type: "email", required: true, maxlength: 320,
    autocomplete: "off", spellcheck: "false", "aria-describedby": `${id}-note`,
  });
  const sure = h("input", { id: `${id}-sure`, name: "confirm", type: "checkbox", required: true });
  const send = h("button", { type: "submit", class: "button button--primary" }, "Send ticket");
  const cancel = h("button", { type: "button", class: "button button--quiet" }, "Cancel");
  const fieldset = h("fieldset", {},
    h("legend", {}, `Transfer ticket ${t.ticket_code}`),
    h("p", { id: `${id}-note`, class: "hint" },
      t.festival_day_ticket_code
        ? "The ticket and its festival day pass go to the recipient, who gets new codes by email. "
        : "The ticket goes to the recipient, who gets new codes by email. ",
      "The QR code shown here will stop working."),
    alert,
    h("div", { class: "field" }, h("label", { for: email.id }, "Recipient's email"), email),
    h("div", { class: "check" }, sure, h("label", { for: sure.id }, "I understand this ticket will no longer be mine")),
    h("div", { class: "actions" }, send, cancel));
  const form = h("form", { id, class: "transfer", hidden: true }, fieldset);
  const open = h("button", {
    type: "button", class: "button button--quiet", "aria-expanded": "false", "aria-controls": id,
  }, "Transfer", h("span", { class: "sr-only" }, ` ticket ${t.ticket_code}`));

  const show = (shown) => {
    form.hidden = !shown;
    open.setAttribute("aria-expanded", String(shown));
    if (shown) {
      el.notice.textContent = "";
      email.focus();
    } else {
      form.reset();
      say(alert, "");
    }
  };
  open.addEventListener("click", () => show(form.hidden));
  cancel.addEventListener("click", () => {
    show(false);
    open.focus();
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const to = email.value.trim();
    say(alert, "");
    fieldset.disabled = true;
    const r = await api(`/api/tickets/${encodeURIComponent(t.id)}/transfer/`, { method: "POST", body: { email: to } });
    if (!s.alive) return;
    if (r.status === 401) return ticketsPage(startScreen(), MESSAGES.signInExpired);
    if (r.error) {
      fieldset.disabled = false;
      say(alert, r.error.message);
      email.focus(); // disabling the fieldset dropped the focus
      return;
    }
    el.notice.textContent = `Ticket sent to ${r.data.to_email || to}.`;
    focusHeading(); // the card with the focus is about to go
    await loadTickets(s, el);
  });
  return h("div", { class: "ticket__transfer" }, h("p", { class: "ticket__actions" }, open), form);
}

function signInForm(s, note) {
  const alert = alertBox();
  const hintId = "token-hint";
  const input = h("textarea", { id: "access-token", name: "token", rows: 4, required: true, autocomplete: "off", spellcheck: "false", "aria-describedby": hintId });
  const form = h("form", { class: "card signin" },
    h("div", { class: "field" },
      h("label", { for: "access-token" }, "Access token"),
      input,
      h("p", { id: hintId, class: "hint" },
        "Paste the access token you were given. Developers get one with ",
        h("code", {}, "amphi token --email <email>"), ".")),
    h("button", { type: "submit", class: "button button--primary" }, "Sign in"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const token = input.value.trim().replace(/^Bearer\s+/i, "");
    if (token.split(".").length !== 3) {
      say(alert, "That does not look like an access token. It has three parts separated by dots.");
      input.focus();
      return;
    }
    setToken(token);
    ticketsPage(startScreen());
    focusHeading();
  });
  render("My tickets", [
    heading("My tickets"),
    h("p", {}, "Sign in to see the tickets you bought, with the QR code to show at the gate."),
    alert,
    form,
  ], { focus: note ? true : "auto" });
  say(alert, note);
}

// ---------------------------------------------------------------------------------------

window.addEventListener("hashchange", () => route(true));
route(false);
