/* minicc click-to-call widget. Plain JavaScript, no build step.
 *
 * Embed with one tag (see docs/webcall.md):
 *   <script src="https://SERVER/webcall/widget.js" data-key="wk_..." data-target="8000"
 *           data-queue="support" data-customer-id="C-42" async></script>
 *
 * data-key: the tenant's public webcall key; data-target: the number to call (an IVR or
 * queue number the tenant allows); data-queue: the queue "call me back" requests join;
 * data-customer-id (optional): the site's id for the visitor, shown in the agent's pop.
 * window.MiniccWebcall.setCustomerId(id) sets it later (after a login, say).
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.MiniccWebcall) return;
  var base = new URL(script.src, location.href).origin;
  var cfg = {
    key: script.getAttribute("data-key") || "",
    target: script.getAttribute("data-target") || "",
    queue: script.getAttribute("data-queue") || "",
    customerId: script.getAttribute("data-customer-id") || ""
  };
  var S = { state: "idle", callId: null, token: null, pc: null, stream: null,
            started: 0, timer: null, poll: null, error: null, reason: null };

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text) e.textContent = text;
    return e;
  }
  function post(path, body) {
    return fetch(base + path, { method: "POST", headers: { "Content-Type": "application/json" },
                                body: JSON.stringify(body) })
      .then(function (r) {
        return r.text().then(function (t) {
          var data = null;
          try { data = t ? JSON.parse(t) : null; } catch (e) { data = null; }
          if (!r.ok) {
            var msg = data && data.error ? data.error.message : ("HTTP " + r.status);
            throw new Error(msg);
          }
          return data;
        });
      });
  }
  function session() {
    return post("/webcall/session", { key: cfg.key }).then(function (d) {
      S.token = d.token;
      return d.token;
    });
  }
  function page() {
    return { url: location.href, title: document.title, customer_id: cfg.customerId };
  }

  // ------------------------------------------------------------------ the panel
  var style = el("style", {}, [
    "#mcc-webcall{position:fixed;right:16px;bottom:16px;font:14px system-ui,sans-serif;z-index:99999}",
    "#mcc-webcall button{cursor:pointer;border-radius:6px;border:1px solid #888;padding:6px 10px;margin:2px}",
    "#mcc-open{background:#0a7;color:#fff;border:none;font-size:16px;padding:10px 16px}",
    "#mcc-panel{display:none;background:#fff;color:#222;border:1px solid #ccc;border-radius:8px;",
    "padding:12px;width:240px;box-shadow:0 4px 16px rgba(0,0,0,.2)}",
    "#mcc-keys{display:grid;grid-template-columns:repeat(3,1fr)}",
    "#mcc-status{margin:6px 0;min-height:1.2em}#mcc-cb input{width:95%;margin:2px 0}"
  ].join(""));
  var root = el("div", { id: "mcc-webcall" });
  var open = el("button", { id: "mcc-open", type: "button" }, "Call us");
  var panel = el("div", { id: "mcc-panel", role: "dialog", "aria-label": "Call us" });
  var status = el("div", { id: "mcc-status", "aria-live": "polite" }, "");
  var timer = el("span", { id: "mcc-timer" }, "0:00");
  var call = el("button", { id: "mcc-call", type: "button" }, "Call");
  var mute = el("button", { id: "mcc-mute", type: "button", disabled: "" }, "Mute");
  var hang = el("button", { id: "mcc-hangup", type: "button", disabled: "" }, "Hang up");
  var keys = el("div", { id: "mcc-keys" });
  "123456789*0#".split("").forEach(function (d) {
    var b = el("button", { type: "button", "data-digit": d, id: "mcc-key-" + (d === "*" ? "star" : d === "#" ? "hash" : d) }, d);
    b.onclick = function () { digit(d); };
    keys.appendChild(b);
  });
  var cbToggle = el("button", { id: "mcc-cb-open", type: "button" }, "Call me back instead");
  var cb = el("form", { id: "mcc-cb" });
  cb.style.display = "none";
  cb.appendChild(el("input", { name: "name", placeholder: "Your name", maxlength: "100" }));
  cb.appendChild(el("input", { name: "number", placeholder: "Phone number", required: "", pattern: "\\+?[0-9]{2,20}" }));
  cb.appendChild(el("input", { name: "when", placeholder: "Preferred time (optional)", maxlength: "40" }));
  cb.appendChild(el("button", { id: "mcc-cb-send", type: "submit" }, "Request callback"));
  [status, el("div", {}, ""), call, mute, hang, keys, cbToggle, cb].forEach(function (c) { panel.appendChild(c); });
  panel.children[1].appendChild(document.createTextNode("Time: "));
  panel.children[1].appendChild(timer);
  root.appendChild(panel);
  root.appendChild(open);

  function show(text) { status.textContent = text; }
  function setState(state) {
    S.state = state;
    var live = state === "connecting" || state === "calling" || state === "ringing" || state === "answered";
    call.disabled = live;
    mute.disabled = !live;
    hang.disabled = !live;
  }
  open.onclick = function () {
    panel.style.display = panel.style.display === "block" ? "none" : "block";
  };
  cbToggle.onclick = function () { cb.style.display = cb.style.display === "none" ? "block" : "none"; };

  // ------------------------------------------------------------------ a call
  function waitIce(pc) {
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise(function (res) {
      pc.addEventListener("icegatheringstatechange", function () {
        if (pc.iceGatheringState === "complete") res();
      });
      setTimeout(res, 3000);
    });
  }
  function tick() {
    var s = Math.floor((Date.now() - S.started) / 1000);
    timer.textContent = Math.floor(s / 60) + ":" + ("0" + (s % 60)).slice(-2);
  }
  function cleanup(reason) {
    if (S.timer) clearInterval(S.timer);
    if (S.poll) clearInterval(S.poll);
    S.timer = S.poll = null;
    if (S.stream) S.stream.getTracks().forEach(function (t) { t.stop(); });
    if (S.pc) { try { S.pc.close(); } catch (e) { /* already closed */ } }
    S.stream = null;
    S.reason = reason || S.reason;
    setState("ended");
    show("Call ended" + (reason ? " (" + reason + ")" : ""));
  }
  function startCall() {
    S.error = S.reason = null;
    setState("connecting");
    show("Connecting…");
    var pc;
    return session()
      .then(function () { return navigator.mediaDevices.getUserMedia({ audio: true }); })
      .then(function (stream) {
        S.stream = stream;
        pc = S.pc = new RTCPeerConnection({ iceServers: [] });
        stream.getTracks().forEach(function (t) { pc.addTrack(t, stream); });
        pc.ontrack = function (ev) {
          var a = new Audio();
          a.srcObject = ev.streams[0];
          a.play().catch(function () { /* autoplay blocked: the call still works */ });
          S.audio = a;
        };
        return pc.createOffer();
      })
      .then(function (offer) { return pc.setLocalDescription(offer); })
      .then(function () { return waitIce(pc); })
      .then(function () {
        return post("/webcall/calls", { token: S.token, sdp: pc.localDescription.sdp, type: "offer",
                                        number: cfg.target, page: page() });
      })
      .then(function (ans) {
        S.callId = ans.id;
        return pc.setRemoteDescription({ type: ans.type, sdp: ans.sdp });
      })
      .then(function () {
        S.started = Date.now();
        S.timer = setInterval(tick, 500);
        S.poll = setInterval(pollState, 1000);
        show("Calling…");
      })
      .catch(function (e) {
        S.error = String(e.message || e);
        cleanup();
        show("Could not call: " + S.error);
      });
  }
  function pollState() {
    if (!S.callId) return;
    post("/webcall/calls/" + encodeURIComponent(S.callId) + "/state", { token: S.token })
      .then(function (d) {
        if (!d) return;
        if (d.state === "ended") { cleanup(d.reason); return; }
        if (d.state !== S.state) { setState(d.state); show(d.state === "answered" ? "Connected" : "Calling…"); }
      })
      .catch(function () { /* a missed poll is retried */ });
  }
  function digit(d) {
    if (!S.callId || S.state === "ended") return Promise.resolve();
    return post("/webcall/calls/" + encodeURIComponent(S.callId) + "/dtmf", { token: S.token, digit: d })
      .catch(function (e) { show(String(e.message || e)); });
  }
  call.onclick = function () { startCall(); };
  hang.onclick = function () {
    var id = S.callId;
    hang.disabled = true;
    if (!id) { cleanup("hung up"); return; }
    // Tell the server first, then close the connection, so the record says who hung up;
    // a server that does not answer within 2 s does not keep the call open.
    var done = false;
    var finish = function () { if (!done) { done = true; cleanup("hung up"); } };
    setTimeout(finish, 2000);
    post("/webcall/calls/" + encodeURIComponent(id) + "/hangup", { token: S.token })
      .catch(function () {}).then(finish);
  };
  mute.onclick = function () {
    if (!S.stream) return;
    var on = mute.textContent === "Mute";
    S.stream.getAudioTracks().forEach(function (t) { t.enabled = !on; });
    mute.textContent = on ? "Unmute" : "Mute";
  };
  cb.onsubmit = function (ev) {
    ev.preventDefault();
    var f = cb.elements;
    session()
      .then(function () {
        return post("/webcall/callbacks", { token: S.token, queue: cfg.queue, number: f.number.value.trim(),
                                            name: f.name.value.trim(), preferred_time: f.when.value.trim() });
      })
      .then(function (d) { S.callback = d.id; show("Thanks, we will call you back."); })
      .catch(function (e) { S.error = String(e.message || e); show("Callback not requested: " + S.error); });
  };

  window.MiniccWebcall = {
    state: function () { return { state: S.state, callId: S.callId, error: S.error, reason: S.reason, callback: S.callback || null }; },
    setCustomerId: function (id) { cfg.customerId = String(id || ""); },
    call: startCall,
    digit: digit,
    stats: function () {
      if (!S.pc) return Promise.resolve(null);
      return S.pc.getStats().then(function (rep) {
        var out = null;
        rep.forEach(function (s) {
          if (s.type === "inbound-rtp" && s.kind === "audio") {
            out = { bytesReceived: s.bytesReceived || 0, packetsReceived: s.packetsReceived || 0,
                    audioLevel: s.audioLevel || 0, totalAudioEnergy: s.totalAudioEnergy || 0 };
          }
        });
        return out;
      });
    }
  };
  function mount() { document.head.appendChild(style); document.body.appendChild(root); }
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);
})();
