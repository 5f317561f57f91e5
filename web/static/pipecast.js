// pipecast's pages: one SSE stream holds the node's state; each page draws its part.
//
// The stream opens with a snapshot (the whole state, and whether it replaced
// what the page had: "reconnected, state reloaded"), then batches of events in
// order. EventSource resends the last id on reconnect, so the gateway replays
// exactly what was missed, or sends a fresh snapshot and says so.

const page = document.body.dataset.page;
const csrf = document.querySelector('meta[name="csrf-token"]').content;
let operate = document.body.dataset.operate === "yes";
let state = {};
let drawPending = false;
let seen = false; // a snapshot arrived at least once

const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
};

function setLink(text, kind) {
  const link = document.getElementById("link");
  link.textContent = text;
  link.dataset.state = kind;
}

function banner(text) {
  const b = document.getElementById("banner");
  b.textContent = text;
  b.hidden = false;
  b.dataset.at = String(Date.now());
}

function applyEvent(ev) {
  if (ev.t === "u") {
    const kv = state[ev.topic] || (state[ev.topic] = {});
    if (ev.data === null) {
      delete kv[ev.key];
      if (Object.keys(kv).length === 0) delete state[ev.topic];
    } else kv[ev.key] = ev.data;
  } else if (ev.t === "reset") {
    for (const [topic, kv] of Object.entries(ev.state)) {
      if (Object.keys(kv).length) state[topic] = kv;
      else delete state[topic];
    }
    if (ev.reason) {
      const why = ev.reason === "epoch" ? "the node restarted" : ev.reason;
      banner(`${why}: state reloaded`);
    }
  } else if (ev.t === "stale") {
    setLink(`the node has been silent for ${ev.silent_for} s`, "stale");
  } else if (ev.t === "recovered") {
    setLink("live", "live");
  } else if (ev.t === "ended") {
    setLink("the node stopped", "ended");
  }
}

let lastId = null;

function connect() {
  let url = `/api/stream?page=${encodeURIComponent(location.pathname)}`;
  if (document.body.dataset.installation) {
    url += `&installation=${encodeURIComponent(document.body.dataset.installation)}`;
  }
  if (lastId) url += `&last_id=${encodeURIComponent(lastId)}`;
  const es = new EventSource(url);
  const track = (e) => { if (e.lastEventId) lastId = e.lastEventId; };
  es.addEventListener("snapshot", track);
  es.addEventListener("batch", track);
  es.addEventListener("snapshot", (e) => {
    const doc = JSON.parse(e.data);
    state = doc.state;
    operate = doc.operate;
    if (doc.reloaded || seen) banner(`reconnected, state reloaded (${doc.why || "new stream"})`);
    seen = true;
    setLink(doc.stale ? "the node is silent" : "live", doc.stale ? "stale" : "live");
    draw();
  });
  es.addEventListener("batch", (e) => {
    for (const ev of JSON.parse(e.data)) applyEvent(ev);
    if (document.getElementById("link").dataset.state !== "stale") setLink("live", "live");
    draw();
  });
  es.addEventListener("cut", () => banner("this page fell behind: reloading the state"));
  es.onerror = () => {
    if (es.readyState !== EventSource.CLOSED) {
      setLink("reconnecting…", "reconnecting"); // the browser retries, sending the last id
      return;
    }
    // refused (signed out, say): try again now and then, from where the page stands
    setLink("disconnected: open the link the gateway printed", "ended");
    setTimeout(connect, 3000);
  };
}

function draw() {
  if (drawPending) return;
  drawPending = true;
  requestAnimationFrame(() => {
    drawPending = false;
    (DRAW[page] || (() => {}))();
  });
}

// -- helpers ---------------------------------------------------------------------------

const fmtBytes = (n) => {
  if (typeof n !== "number") return "-";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
};
const fmtSecs = (s) => {
  if (typeof s !== "number" || s < 0) return "-";
  if (s < 60) return `${Math.round(s)} s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
};
const baseName = (p) => (typeof p === "string" ? p.split("/").pop() : "");
const topics = (prefix) => Object.keys(state).filter((t) => t.startsWith(prefix)).sort();

async function control(op, args) {
  const out = document.getElementById("result");
  try {
    const r = await fetch("/api/control", {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify({ op, ...args }),
    });
    const doc = await r.json();
    if (!r.ok) {
      out.textContent = `${op}: ${doc.error.type}: ${doc.error.message}`;
      out.dataset.kind = "error";
    } else {
      out.textContent = `${op}: ${JSON.stringify(doc.result)}`;
      out.dataset.kind = "ok";
    }
    return r.ok ? doc.result : null;
  } catch (err) {
    out.textContent = `${op}: the gateway did not answer (${err})`;
    out.dataset.kind = "error";
    return null;
  }
}

// -- overview --------------------------------------------------------------------------

function stageCard(name, s) {
  const d = s.detail || {};
  const card = el("article", { class: "stage", "data-stage": name, "data-status": s.status });
  card.append(el("h3", { text: name }), el("p", { class: "status", text: s.status }));
  const p = Math.max(0, Math.min(1, Number(s.progress) || 0));
  card.append(el("progress", { max: "1", value: String(p), "aria-label": `${name} progress` }));
  const bits = [`${Math.round(p * 100)}%`];
  if (typeof d.fps === "number") bits.push(`${d.fps.toFixed(1)} fps`);
  if (typeof d.eta === "number") bits.push(`eta ${fmtSecs(d.eta)}`);
  if (d.phase) bits.push(d.phase);
  card.append(el("p", { class: "figures", text: bits.join(" · ") }));
  const file = baseName((s.item || {}).path);
  if (file) card.append(el("p", { class: "file", text: file }));
  if (Array.isArray(d.probes) && d.probes.length) {
    const trail = d.probes.map((q) => `${q.crf}→${Number(q.mean).toFixed(1)}`).join("  ");
    card.append(el("p", { class: "trail", text: `probes ${trail}` }));
  }
  const counts = `queue ${s.queue ?? 0} · done ${s.done ?? 0} · failed ${s.failed ?? 0}` +
    ` · skipped ${s.skipped ?? 0} · ${(Number(s.velocity) || 0).toFixed(2)}/min`;
  card.append(el("p", { class: "counts", text: counts }));
  if (s.last_error) card.append(el("p", { class: "error", text: s.last_error }));
  if (operate) {
    const row = el("div", { class: "buttons" });
    for (const op of ["pause", "suspend", "resume"]) {
      const b = el("button", { type: "button", "data-op": op, "data-stage": name, text: op });
      row.append(b);
    }
    card.append(row);
  }
  return card;
}

function drawOverview() {
  const stages = document.getElementById("stages");
  const cards = topics("stage/").filter((t) => (state[t] || {}).state)
    .map((t) => stageCard(t.slice(6), state[t].state));
  stages.replaceChildren(...(cards.length ? cards : [el("p", { text: "no stages" })]));
  const lib = topics("stage/").map((t) => state[t].library).find(Boolean);
  if (lib) {
    const saved = lib.bytes_before - lib.bytes_after;
    document.getElementById("library").textContent =
      `${lib.encoded} encoded · ${fmtBytes(lib.bytes_before)} → ${fmtBytes(lib.bytes_after)}` +
      ` · saved ${fmtBytes(saved)}`;
  }
  const presence = topics("presence/").map((t) => {
    const n = Object.keys(state[t]).length;
    return el("li", { "data-topic": t.slice(9), text: `${t.slice(9)}: ${n} watching` });
  });
  document.getElementById("presence").replaceChildren(...presence);
  const actors = topics("actor/").map((t) => {
    const v = Object.values(state[t])[0] || {};
    return el("li", { text: `${t.slice(6)}: ${v.status || JSON.stringify(v)}` });
  });
  document.getElementById("actors").replaceChildren(...actors);
  const skip = ["stage/", "presence/", "actor/", "invocation/"];
  const others = Object.keys(state).sort().filter((t) => !skip.some((p) => t.startsWith(p)))
    .map((t) => {
      const panel = el("article", { class: "topic", "data-topic": t }, el("h3", { text: t }));
      const dl = el("dl");
      for (const [k, v] of Object.entries(state[t])) {
        dl.append(el("dt", { text: k }), el("dd", { text: JSON.stringify(v) }));
      }
      panel.append(dl);
      return panel;
    });
  document.getElementById("others").replaceChildren(...others);
}

// -- jobs ------------------------------------------------------------------------------

async function loadJobs() {
  const st = document.getElementById("jobs-state").value;
  const text = document.getElementById("jobs-text").value.toLowerCase();
  const r = await fetch(`/api/jobs${st ? `?state=${encodeURIComponent(st)}` : ""}`);
  if (!r.ok) return;
  const { jobs } = await r.json();
  const rows = jobs.filter((j) => !text || j.path.toLowerCase().includes(text)).map((j) => {
    const link = el("a", { href: `/jobs/${j.id}`, text: String(j.id) });
    const why = j.failure ? `${j.failure.category}/${j.failure.code}` : j.skip_reason || "";
    return el("tr", { "data-state": j.state },
      el("td", {}, link), el("td", { text: j.path }), el("td", { text: j.state }),
      el("td", { text: fmtBytes(j.size) }), el("td", { text: j.crf ?? "-" }),
      el("td", { text: j.output_size ? fmtBytes(j.output_size) : "-" }), el("td", { text: why }));
  });
  document.querySelector("#jobs tbody").replaceChildren(...rows);
}

let jobsTimer = null;
function drawJobs() {
  // the table follows the stream's stage counts: reload at most twice a second
  if (jobsTimer === null) jobsTimer = setTimeout(() => { jobsTimer = null; loadJobs(); }, 500);
}

// -- networks --------------------------------------------------------------------------

function invocationView(inv) {
  const item = el("li", { class: "invocation", "data-state": inv.state });
  item.append(el("span", { class: "seq", text: `#${inv.sequence} ${inv.model} ${inv.state}` }));
  const out = inv.output || inv.error || "";
  const image = typeof out === "string" && out.match(/([0-9a-f]{64}\.png)$/);
  if (image) item.append(el("img", { src: `/images/${image[1]}`, alt: `picture #${inv.sequence}` }));
  else item.append(el("p", { text: String(out) }));
  return item;
}

function networkSection(root, name) {
  // made once per network: redraws update its parts and never touch the form being typed in
  let sec = root.querySelector(`section.network[data-network="${CSS.escape(name)}"]`);
  if (sec) return sec;
  sec = el("section", { class: "network", "data-network": name });
  sec.append(el("h2", { text: name }), el("p", { class: "run-status" }));
  if (operate) {
    const form = document.getElementById("network-controls").content.cloneNode(true);
    form.querySelector("form").dataset.network = name;
    sec.append(form);
  }
  const pick = el("label", { class: "display-pick" }, "display ",
    el("input", { name: "display", value: "grid:3x4", maxlength: "64",
      "aria-label": `display mode for ${name}` }));
  pick.querySelector("input").addEventListener("input", () => draw());
  sec.append(pick, el("div", { class: "display" }));
  root.append(sec);
  return sec;
}

function installationItem(list, name) {
  // made once: redraws update its text and leave the switch form as typed
  let item = list.querySelector(`li[data-installation="${CSS.escape(name)}"]`);
  if (item) return item;
  item = el("li", { "data-installation": name });
  item.append(el("a", { href: `/display/${name}`, text: name }), el("span", { class: "what" }));
  if (operate) {
    const form = el("form", { class: "installation-switch control", "data-installation": name });
    form.append(
      el("label", {}, "network ", el("input", { name: "network", maxlength: "64" })),
      el("label", {}, "display ", el("input", { name: "display", maxlength: "64" })),
      el("button", { type: "submit", text: "switch" }),
      el("button", { type: "button", class: "remove", text: "remove" }),
    );
    item.append(form);
  }
  list.append(item);
  return item;
}

function drawInstallations() {
  const list = document.getElementById("installations");
  const names = topics("installation/").map((t) => t.slice(13));
  for (const child of [...list.children]) {
    if (!names.includes(child.dataset.installation)) child.remove();
  }
  for (const name of names) {
    const cfg = state[`installation/${name}`].config || {};
    const screens = Object.keys(state[`presence/installation/${name}`] || {}).length;
    installationItem(list, name).querySelector(".what").textContent =
      ` ${cfg.network} as ${cfg.display} · ${screens} screen${screens === 1 ? "" : "s"}`;
  }
}

function drawNetworks() {
  drawInstallations();
  const root = document.getElementById("networks");
  const names = topics("invocation/").map((t) => t.slice(11));
  for (const child of [...root.children]) {
    if (!names.includes(child.dataset.network)) child.remove();
  }
  if (!names.length) root.append(el("p", { "data-network": "", text: "no networks" }));
  for (const name of names) {
    const kv = state[`invocation/${name}`];
    const run = kv.run || {};
    const sec = networkSection(root, name);
    let status = `${run.status || "idle"}` + (run.run ? ` · run ${run.run}: ${run.prompt}` : "");
    if (typeof run.ready_at === "number") {
      const left = run.ready_at - Date.now() / 1000;
      if (left > 0) status += ` · new prompts in ${Math.ceil(left)} s`;
    }
    sec.querySelector(".run-status").textContent = status;
    const display = sec.querySelector(".display-pick input").value.trim();
    renderDisplay(sec.querySelector("div.display"), name, display);
  }
}

setInterval(() => { if (page === "networks") draw(); }, 1000); // the lockout countdown

// -- a kiosk: one installation, following its switches -------------------------------

function parseDisplay(text) {
  let m = /^grid:(\d+)x(\d+)$/.exec(text || "");
  if (m) return { kind: "grid", rows: Number(m[1]), cols: Number(m[2]) };
  m = /^single:(\d+):(\d+)(:invoking)?$/.exec(text || "");
  if (m) return { kind: "single", offset: Number(m[1]), stride: Number(m[2]), invoking: !!m[3] };
  return null;
}

function renderDisplay(screen, network, display) {
  // the node's display modes: the current run only; a grid is a ring of cells by
  // sequence; single shows the newest of its sequences (genesis always)
  const mode = parseDisplay(display);
  if (!mode) {
    screen.replaceChildren(el("p", { class: "empty", text: `no display ${display}` }));
    return;
  }
  const kv = state[`invocation/${network}`] || {};
  const run = (kv.run || {}).run;
  const invs = Object.entries(kv).filter(([k]) => k !== "run").map(([, v]) => v)
    .filter((v) => run !== undefined && run !== null && v.run === run)
    .sort((a, b) => a.sequence - b.sequence);
  screen.dataset.network = network;
  screen.dataset.display = display;
  if (mode.kind === "grid") {
    const cells = Array.from({ length: mode.rows * mode.cols }, () => null);
    for (const v of invs) cells[v.sequence % cells.length] = v;
    const grid = el("ol", { class: "kiosk-grid",
      style: `grid-template-columns: repeat(${mode.cols}, minmax(0, 1fr))` });
    grid.append(...cells.map((v) => (v ? invocationView(v) : el("li", { class: "invocation empty" }))));
    screen.replaceChildren(grid);
  } else {
    const shown = invs.filter((v) => v.sequence === 0 ||
      (v.sequence % mode.stride === mode.offset && (mode.invoking || v.state !== "invoking")));
    const last = shown[shown.length - 1];
    screen.replaceChildren(last ? invocationView(last) : el("p", { class: "empty", text: "…" }));
  }
}

function drawDisplay() {
  const name = document.body.dataset.installation;
  const screen = document.getElementById("screen");
  const cfg = (state[`installation/${name}`] || {}).config;
  if (!cfg) {
    screen.replaceChildren(el("p", { class: "empty", text: `no installation named ${name}` }));
    return;
  }
  renderDisplay(screen, cfg.network, cfg.display);
}

const DRAW = { overview: drawOverview, jobs: drawJobs, networks: drawNetworks, display: drawDisplay };

// -- controls --------------------------------------------------------------------------

document.addEventListener("click", (e) => {
  const b = e.target.closest("button[data-op]");
  if (!b) return;
  const op = b.dataset.op;
  if (b.dataset.stage) control(op, { stage: b.dataset.stage });
  else if (b.dataset.ids) control(op, { ids: b.dataset.ids.split(",").map(Number) });
  else if (b.dataset.id) control(op, { id: Number(b.dataset.id) });
});
document.addEventListener("click", (e) => {
  const b = e.target.closest("button.stop");
  if (b) control("run.stop", { network: b.form.dataset.network });
  const r = e.target.closest("button.remove");
  if (r) control("installations.remove", { name: r.form.dataset.installation });
});
document.addEventListener("submit", (e) => {
  const form = e.target;
  e.preventDefault();
  if (form.id === "enqueue-form") {
    control("enqueue", { paths: [form.path.value], recursive: form.recursive.checked });
  } else if (form.classList.contains("installation-switch")) {
    const args = { name: form.dataset.installation };
    if (form.network.value) args.network = form.network.value;
    if (form.display.value) args.display = form.display.value;
    control("installations.switch", args);
  } else if (form.id === "installation-add") {
    const value = (field) => form.elements.namedItem(field).value;
    control("installations.add", {
      name: value("name"), network: value("network"), display: value("display"),
    });
  } else if (form.classList.contains("run-form")) {
    control("run", { network: form.dataset.network, prompt: form.prompt.value });
  } else if (form.id === "jobs-filter") loadJobs();
});
if (page === "jobs") {
  document.getElementById("jobs-filter").addEventListener("input", () => loadJobs());
  loadJobs();
}

connect();
