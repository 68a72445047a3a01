/* The staff gate page: sign in with a staff token, pick the gate, check tickets by typed
   code or by the camera (BarcodeDetector), and show each decision large.
   Plain browser JavaScript, no build step. API data is only ever written with textContent. */
(function () {
  "use strict";

  var SCAN_URL = "/api/tickets/scan/";
  var TOKEN_KEY = "amphi.staff_token";
  var GATE_KEY = "amphi.gate";
  var DEVICE_KEY = "amphi.device_id";
  var SCANS_KEY = "amphi.gate_scans";
  var MAX_SCANS = 10;
  var REQUEST_TIMEOUT_MS = 15000;
  var DETECT_EVERY_MS = 250;
  var SAME_CODE_PAUSE_MS = 3000; // a QR code held in view is checked once
  var AUTH_MESSAGE = "Your staff sign-in is not valid. Please sign in again.";
  var GATES = { amphitheater: "Amphitheatre", festival: "Festival" };

  // -- storage that survives a browser refusing it (private mode, disabled storage) --------
  function storage(kind) {
    var memory = {};
    var real = null;
    try {
      real = window[kind];
      real.setItem("amphi.__probe", "1");
      real.removeItem("amphi.__probe");
    } catch (e) {
      real = null;
    }
    return {
      get: function (key) {
        if (real) {
          try { return real.getItem(key); } catch (e) { /* fall through */ }
        }
        return Object.prototype.hasOwnProperty.call(memory, key) ? memory[key] : null;
      },
      set: function (key, value) {
        memory[key] = value;
        if (real) {
          try { real.setItem(key, value); } catch (e) { /* memory keeps it */ }
        }
      },
      remove: function (key) {
        delete memory[key];
        if (real) {
          try { real.removeItem(key); } catch (e) { /* ignore */ }
        }
      }
    };
  }

  var local = storage("localStorage");
  var session = storage("sessionStorage");

  // -- elements ------------------------------------------------------------------------
  function $(id) { return document.getElementById(id); }

  var els = {};

  // -- small helpers -------------------------------------------------------------------
  function pad(n) { return (n < 10 ? "0" : "") + n; }

  function clockTime(date) {
    return pad(date.getHours()) + ":" + pad(date.getMinutes()) + ":" + pad(date.getSeconds());
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  function randomId() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") {
      try { return window.crypto.randomUUID(); } catch (e) { /* not a secure context */ }
    }
    var bytes = new Uint8Array(16);
    if (window.crypto && typeof window.crypto.getRandomValues === "function") {
      window.crypto.getRandomValues(bytes);
    } else {
      for (var i = 0; i < bytes.length; i++) { bytes[i] = Math.floor(Math.random() * 256); }
    }
    var hex = "";
    for (var j = 0; j < bytes.length; j++) { hex += (bytes[j] < 16 ? "0" : "") + bytes[j].toString(16); }
    return hex.slice(0, 8) + "-" + hex.slice(8, 12) + "-" + hex.slice(12, 16) + "-" +
      hex.slice(16, 20) + "-" + hex.slice(20);
  }

  function deviceId() {
    var id = local.get(DEVICE_KEY);
    if (!id) {
      id = "web-" + randomId();
      local.set(DEVICE_KEY, id);
    }
    return id;
  }

  function vibrate(pattern) {
    try {
      if (navigator.vibrate) { navigator.vibrate(pattern); }
    } catch (e) { /* not allowed: ignore */ }
  }

  // -- alerts (one at a time; a new element with role=alert is announced) -------------------
  function showAlert(message) {
    clearAlert();
    var p = el("p", "alert", message);
    p.setAttribute("role", "alert");
    els.alerts.appendChild(p);
  }

  function clearAlert() {
    while (els.alerts.firstChild) { els.alerts.removeChild(els.alerts.firstChild); }
  }

  // -- sign-in -------------------------------------------------------------------------
  function token() { return local.get(TOKEN_KEY); }

  function cleanToken(raw) {
    var t = String(raw || "").trim().replace(/^bearer\s+/i, "");
    return t.replace(/\s+/g, "");
  }

  function tokenClaims(t) {
    try {
      var part = t.split(".")[1];
      if (!part) { return null; }
      part = part.replace(/-/g, "+").replace(/_/g, "/");
      while (part.length % 4) { part += "="; }
      var binary = window.atob(part);
      var text = binary;
      if (typeof TextDecoder === "function") {
        var bytes = new Uint8Array(binary.length);
        for (var i = 0; i < binary.length; i++) { bytes[i] = binary.charCodeAt(i); }
        text = new TextDecoder().decode(bytes);
      }
      var claims = JSON.parse(text);
      return claims && typeof claims === "object" ? claims : null;
    } catch (e) {
      return null;
    }
  }

  function showSignedIn(focusCode) {
    var claims = tokenClaims(token() || "");
    var who = claims && (claims.email || claims.sub);
    els.who.textContent = who ? "Signed in as " + who : "Signed in";
    els.session.hidden = false;
    els.signIn.hidden = true;
    els.scannerTop.hidden = false;
    els.scanner.hidden = false;
    if (focusCode) { els.code.focus(); }
  }

  function showSignedOut(focusToken) {
    stopCamera(false);
    queue.length = 0;
    els.session.hidden = true;
    els.scannerTop.hidden = true;
    els.scanner.hidden = true;
    els.signIn.hidden = false;
    els.token.value = "";
    if (focusToken) { els.token.focus(); }
  }

  function onSignIn(event) {
    event.preventDefault();
    var t = cleanToken(els.token.value);
    if (!t) {
      showAlert("Paste your staff token first.");
      els.token.focus();
      return;
    }
    local.set(TOKEN_KEY, t);
    clearAlert();
    setPanel("idle", "READY", ["Scan or type a ticket code."]);
    showSignedIn(true);
  }

  function onSignOut() {
    local.remove(TOKEN_KEY);
    clearAlert();
    showSignedOut(true);
  }

  function signInAgain() {
    local.remove(TOKEN_KEY);
    setPanel("idle", "READY", ["Scan or type a ticket code."]);
    showSignedOut(true);
    showAlert(AUTH_MESSAGE);
  }

  // -- gate ----------------------------------------------------------------------------
  function currentGate() {
    return Object.prototype.hasOwnProperty.call(GATES, els.gate.value) ? els.gate.value : "amphitheater";
  }

  function restoreGate() {
    var saved = local.get(GATE_KEY);
    if (saved && Object.prototype.hasOwnProperty.call(GATES, saved)) { els.gate.value = saved; }
  }

  // -- the result panel ----------------------------------------------------------------
  function setPanel(state, verdict, lines) {
    var panel = els.result;
    panel.className = "result " + state;
    panel.setAttribute("aria-busy", state === "checking" ? "true" : "false");
    var nodes = [el("p", "verdict", verdict)];
    (lines || []).forEach(function (line) {
      if (line) { nodes.push(el("p", "line", line)); }
    });
    while (panel.firstChild) { panel.removeChild(panel.firstChild); }
    nodes.forEach(function (n) { panel.appendChild(n); });
  }

  function ticketLine(t) {
    if (!t || typeof t !== "object") { return ""; }
    if (t.kind === "festival_day") {
      return t.is_comp ? "Festival day pass (complimentary)" : "Festival day pass";
    }
    var line = "Amphitheatre ticket";
    if (t.section) {
      line += ", Section " + t.section;
      if (t.row !== null && t.row !== undefined && t.row !== "" &&
          t.seat !== null && t.seat !== undefined) {
        line += " Row " + t.row + " Seat " + t.seat;
      } else {
        line += ", General admission";
      }
    }
    return line;
  }

  function longDate(iso) {
    var m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(String(iso || ""));
    if (!m) { return ""; }
    var d = new Date(Date.UTC(+m[1], +m[2] - 1, +m[3]));
    try {
      return d.toLocaleDateString("en-US", {
        timeZone: "UTC", weekday: "long", year: "numeric", month: "long", day: "numeric"
      });
    } catch (e) {
      return iso;
    }
  }

  // "Already scanned at the amphitheater gate at 7:05 PM (device web-...)." -> "19:05"
  function earlierTime(reason) {
    var m = /(\d{1,2}):(\d{2})(?:\s*([AaPp])\.?[Mm]\.?)?/.exec(String(reason || ""));
    if (!m) { return ""; }
    var h = parseInt(m[1], 10);
    var ampm = m[3] ? m[3].toUpperCase() : "";
    if (ampm === "P" && h < 12) { h += 12; }
    if (ampm === "A" && h === 12) { h = 0; }
    if (h > 23) { return ""; }
    return pad(h) + ":" + m[2];
  }

  function earlierDevice(reason) {
    var m = /\(device ([^)]+)\)/.exec(String(reason || ""));
    return m ? m[1] : "";
  }

  // What the steward reads for each refusal code of the API (ScanResultCode).
  function refusalLines(data) {
    var reason = typeof data.reason === "string" ? data.reason : "";
    var t = data.ticket;
    switch (data.result) {
      case "already_scanned": {
        var at = earlierTime(reason);
        var device = earlierDevice(reason);
        var by = "";
        if (device) { by = device === deviceId() ? "By this device" : "By another device (" + device + ")"; }
        return [at ? "Already scanned at " + at : "Already scanned", ticketLine(t), by];
      }
      case "wrong_date": {
        var day = t ? longDate(t.event_date) : "";
        return ["Not valid today", ticketLine(t), day ? "Ticket date: " + day : ""];
      }
      case "wrong_gate":
        return ["Not valid at this gate", ticketLine(t),
          t && t.kind === "festival_day" ? "Festival passes open the festival gates only" : ""];
      case "voided":
        return ["Ticket voided", ticketLine(t), "Send the guest to the box office"];
      case "refunded":
        return ["Ticket refunded", ticketLine(t), "Send the guest to the box office"];
      case "not_valid":
        return ["Ticket not valid", ticketLine(t), "Send the guest to the box office"];
      case "unknown_ticket":
      case "invalid_signature":
        return ["Unknown or invalid ticket", "Send the guest to the box office"];
      case "refused_by_device":
        return ["Refused by the gate device", ticketLine(t)];
      default:
        return [reason || "Not admitted", ticketLine(t)];
    }
  }

  function showDecision(data) {
    if (data.can_enter) {
      var lines = [ticketLine(data.ticket) || "Valid ticket"];
      if (data.festival_access_granted) { lines.push("Festival access granted"); }
      setPanel("admitted", "ADMITTED", lines);
      vibrate(120);
    } else {
      setPanel("refused", "REFUSED", refusalLines(data));
      vibrate([250, 100, 250]);
    }
  }

  // -- last scans ----------------------------------------------------------------------
  var scans = [];

  function loadScans() {
    try {
      var saved = JSON.parse(session.get(SCANS_KEY) || "[]");
      if (Array.isArray(saved)) {
        scans = saved.filter(function (s) {
          return s && typeof s.time === "string" && typeof s.label === "string";
        }).slice(0, MAX_SCANS);
      }
    } catch (e) {
      scans = [];
    }
  }

  function saveScans() {
    try { session.set(SCANS_KEY, JSON.stringify(scans)); } catch (e) { /* memory keeps them */ }
  }

  function shortCode(code) {
    var c = String(code || "");
    return c.length > 6 ? "…" + c.slice(-6) : c;
  }

  function addScan(presented, data) {
    var when = data.scanned_at ? new Date(data.scanned_at) : new Date();
    if (isNaN(when.getTime())) { when = new Date(); }
    var label = data.ticket && data.ticket.code ? String(data.ticket.code) : shortCode(presented);
    scans.unshift({
      time: clockTime(when),
      admitted: !!data.can_enter,
      label: label,
      gate: currentGate()
    });
    scans = scans.slice(0, MAX_SCANS);
    saveScans();
    renderScans();
  }

  function renderScans() {
    var list = els.lastList;
    while (list.firstChild) { list.removeChild(list.firstChild); }
    scans.forEach(function (s) {
      var li = el("li", "scan " + (s.admitted ? "is-admitted" : "is-refused"));
      li.appendChild(el("span", "scan-time", s.time));
      li.appendChild(document.createTextNode(" "));
      li.appendChild(el("span", "scan-verdict", s.admitted ? "ADMITTED" : "REFUSED"));
      li.appendChild(document.createTextNode(" "));
      li.appendChild(el("span", "scan-code", s.label));
      list.appendChild(li);
    });
    els.lastEmpty.hidden = scans.length > 0;
  }

  // -- scanning: one request at a time, in the order the codes came -------------------------
  var queue = [];
  var busy = false;

  function enqueue(code, source) {
    queue.push({ code: code, source: source });
    if (!busy) { drain(); }
  }

  function drain() {
    if (!queue.length) {
      busy = false;
      return;
    }
    busy = true;
    var item = queue.shift();
    scanOnce(item).then(function (keepGoing) {
      if (!keepGoing) { queue.length = 0; }
      drain();
    }, function () {
      drain();
    });
  }

  function errorText(status, body) {
    var message = body && body.error && typeof body.error.message === "string" ? body.error.message : "";
    if (status === 429) { return "Too many checks at once. Wait a moment and scan again."; }
    if (status === 503 || status === 502 || status === 504) {
      return "The ticket system is unavailable right now. Wait a moment and scan again.";
    }
    if (status === 400 || status === 413 || status === 415 || status === 422) {
      return "This code could not be checked" + (message ? ": " + message : ".");
    }
    return "The server answered with an error (" + status + "). Scan again." +
      (message ? " " + message : "");
  }

  function notChecked(item, message) {
    setPanel("error", "NOT CHECKED", ["No decision was made. Check the ticket again."]);
    showAlert(message);
    if (item.source === "form" && !els.code.value) {
      els.code.value = item.code; // nothing was decided: let the steward retry it
    }
  }

  function scanOnce(item) {
    var t = token();
    if (!t) {
      signInAgain();
      return Promise.resolve(false);
    }
    setPanel("checking", "CHECKING…", ["Checking the ticket at the " + GATES[currentGate()] + " gate."]);

    var controller = typeof AbortController === "function" ? new AbortController() : null;
    var timer = controller ? window.setTimeout(function () { controller.abort(); }, REQUEST_TIMEOUT_MS) : 0;
    var status = 0;

    return fetch(SCAN_URL, {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "Authorization": "Bearer " + t
      },
      body: JSON.stringify({ code: item.code, gate: currentGate(), device_id: deviceId() }),
      cache: "no-store",
      credentials: "same-origin",
      signal: controller ? controller.signal : undefined
    }).then(function (res) {
      status = res.status;
      return res.text().then(function (text) {
        try { return JSON.parse(text); } catch (e) { return null; }
      });
    }).then(function (body) {
      window.clearTimeout(timer);
      if (status === 401 || status === 403) {
        signInAgain();
        return false;
      }
      var data = body && body.success === true ? body.data : null;
      if (status >= 200 && status < 300 && data && typeof data.can_enter === "boolean") {
        clearAlert();
        showDecision(data);
        addScan(item.code, data);
      } else {
        notChecked(item, errorText(status, body));
      }
      if (item.source === "form") { els.code.focus(); } else { revealResult(); }
      return true;
    }, function (err) {
      window.clearTimeout(timer);
      var aborted = err && err.name === "AbortError";
      notChecked(item, aborted
        ? "The server did not answer in time. Scan again."
        : "Could not reach the server. Check the connection and scan again.");
      if (item.source === "form") { els.code.focus(); }
      return true;
    });
  }

  // A camera scan's answer must be seen: bring the panel into view if it scrolled away.
  function revealResult() {
    var box = els.result.getBoundingClientRect();
    if (box.top < 0 || box.bottom > (window.innerHeight || document.documentElement.clientHeight)) {
      try { els.result.scrollIntoView({ block: "nearest" }); } catch (e) { els.result.scrollIntoView(); }
    }
  }

  function onScanSubmit(event) {
    event.preventDefault();
    var code = els.code.value.trim();
    if (!code) {
      showAlert("Type or scan a ticket code first.");
      els.code.focus();
      return;
    }
    els.code.value = "";
    els.code.focus();
    enqueue(code, "form");
  }

  // -- camera (BarcodeDetector) ----------------------------------------------------------
  var camera = { stream: null, timer: 0, detector: null, detecting: false, lastValue: "", lastSeen: 0 };

  function cameraPossible() {
    return "BarcodeDetector" in window && !!navigator.mediaDevices &&
      typeof navigator.mediaDevices.getUserMedia === "function";
  }

  function cameraUnsupported() {
    els.cameraStart.hidden = true;
    els.cameraStop.hidden = true;
    els.cameraView.hidden = true;
    els.cameraHint.hidden = false;
  }

  function setupCamera() {
    if (!cameraPossible()) {
      cameraUnsupported();
      return;
    }
    els.cameraStart.hidden = false;
    els.cameraHint.hidden = true;
    var BD = window.BarcodeDetector;
    if (BD && typeof BD.getSupportedFormats === "function") {
      Promise.resolve().then(function () { return BD.getSupportedFormats(); }).then(function (formats) {
        if (Array.isArray(formats) && formats.indexOf("qr_code") === -1) {
          stopCamera(false);
          cameraUnsupported();
        }
      }, function () { /* keep the button: creating the detector will tell */ });
    }
  }

  function cameraError(err) {
    var name = err && err.name;
    if (name === "NotAllowedError" || name === "SecurityError") {
      return "The camera is not allowed. Allow camera access for this page, or type the code.";
    }
    if (name === "NotFoundError" || name === "OverconstrainedError") {
      return "No camera was found. Type the code.";
    }
    if (name === "NotReadableError" || name === "AbortError") {
      return "The camera is busy in another app. Close it and try again, or type the code.";
    }
    return "The camera could not be started. Type the code.";
  }

  function startCamera() {
    if (camera.stream) { return; }
    clearAlert();
    try {
      camera.detector = new window.BarcodeDetector({ formats: ["qr_code"] });
    } catch (e) {
      cameraUnsupported();
      showAlert("This browser cannot scan with the camera: type the code.");
      els.code.focus();
      return;
    }
    els.cameraStart.disabled = true;
    navigator.mediaDevices.getUserMedia({
      video: { facingMode: { ideal: "environment" } },
      audio: false
    }).then(function (stream) {
      els.cameraStart.disabled = false;
      if (els.scanner.hidden) { // signed out meanwhile
        stream.getTracks().forEach(function (track) { track.stop(); });
        return;
      }
      camera.stream = stream;
      els.cameraView.srcObject = stream;
      els.cameraView.hidden = false;
      var playing = els.cameraView.play();
      if (playing && typeof playing.catch === "function") { playing.catch(function () { /* autoplay muted */ }); }
      els.cameraStart.hidden = true;
      els.cameraStop.hidden = false;
      els.cameraStop.focus();
      camera.lastValue = "";
      camera.timer = window.setInterval(detectOnce, DETECT_EVERY_MS);
    }, function (err) {
      els.cameraStart.disabled = false;
      showAlert(cameraError(err));
      els.cameraStart.focus();
    });
  }

  function stopCamera(focusStart) {
    if (camera.timer) { window.clearInterval(camera.timer); }
    camera.timer = 0;
    if (camera.stream) {
      camera.stream.getTracks().forEach(function (track) { track.stop(); });
    }
    camera.stream = null;
    camera.detecting = false;
    if (els.cameraView) {
      els.cameraView.srcObject = null;
      els.cameraView.hidden = true;
    }
    if (els.cameraStop) { els.cameraStop.hidden = true; }
    if (els.cameraStart && els.cameraHint && els.cameraHint.hidden) {
      els.cameraStart.hidden = false;
      if (focusStart) { els.cameraStart.focus(); }
    }
  }

  function detectOnce() {
    if (!camera.stream || !camera.detector || camera.detecting || busy) { return; }
    var video = els.cameraView;
    if (video.readyState < 2 || !video.videoWidth) { return; }
    camera.detecting = true;
    Promise.resolve().then(function () { return camera.detector.detect(video); }).then(function (found) {
      camera.detecting = false;
      if (!camera.stream) { return; }
      var value = "";
      for (var i = 0; found && i < found.length; i++) {
        if (found[i] && found[i].rawValue) { value = String(found[i].rawValue).trim(); break; }
      }
      if (!value) { return; }
      var now = Date.now();
      var repeat = value === camera.lastValue && now - camera.lastSeen < SAME_CODE_PAUSE_MS;
      camera.lastValue = value;
      camera.lastSeen = now;
      if (!repeat) { enqueue(value, "camera"); }
    }, function () {
      camera.detecting = false;
    });
  }

  // -- start -----------------------------------------------------------------------------
  function init() {
    els.alerts = $("alerts");
    els.session = $("session");
    els.who = $("who");
    els.signOut = $("sign-out");
    els.signIn = $("sign-in");
    els.signInForm = $("sign-in-form");
    els.token = $("token");
    els.scannerTop = $("scanner-top");
    els.scanner = $("scanner");
    els.gate = $("gate");
    els.result = $("result");
    els.scanForm = $("scan-form");
    els.code = $("code");
    els.cameraStart = $("camera-start");
    els.cameraStop = $("camera-stop");
    els.cameraHint = $("camera-hint");
    els.cameraView = $("camera-view");
    els.lastList = $("last-list");
    els.lastEmpty = $("last-empty");

    restoreGate();
    els.gate.addEventListener("change", function () { local.set(GATE_KEY, currentGate()); });
    els.signInForm.addEventListener("submit", onSignIn);
    els.signOut.addEventListener("click", onSignOut);
    els.scanForm.addEventListener("submit", onScanSubmit);
    els.cameraStart.addEventListener("click", startCamera);
    els.cameraStop.addEventListener("click", function () { stopCamera(true); });
    document.addEventListener("visibilitychange", function () {
      if (document.hidden && camera.stream) { stopCamera(false); }
    });
    window.addEventListener("pagehide", function () { stopCamera(false); });
    window.addEventListener("storage", function (event) {
      if (event.key === TOKEN_KEY && !event.newValue && !els.scanner.hidden) { showSignedOut(false); }
    });

    setupCamera();
    loadScans();
    renderScans();
    deviceId();

    if (token()) {
      showSignedIn(true);
    } else {
      showSignedOut(true);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
}());
