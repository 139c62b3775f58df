// oven's live dashboard: a snapshot, then JSON merge patches (RFC 7386) over SSE.
// No build step and no dependencies. Everything the server sends is shown with textContent,
// never parsed as HTML.

const STAGES = ["queued", "navigate", "ready", "capture", "encode", "upload"];
const TOKEN_KEY = "oven.adminToken";

// Test and debugging hook: connection phase, event counts and the stages each job was shown in.
const dash = (window.dashboard = {
  phase: "connecting", snapshots: 0, deltas: 0, version: 0, bytes: 0, state: null, seen: {},
});

let source = null;
let renderQueued = false;

// -- merge patch ------------------------------------------------------------------------------

function mergePatch(target, patch) {
  if (patch === null || typeof patch !== "object" || Array.isArray(patch)) return patch;
  const result = target !== null && typeof target === "object" && !Array.isArray(target)
    ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = mergePatch(result[key], value);
  }
  return result;
}

// -- connection -------------------------------------------------------------------------------

function setPhase(phase) {
  dash.phase = phase;
  const el = document.getElementById("conn");
  el.textContent = { live: "live", paused: "paused (tab hidden)", connecting: "connecting…",
                     reconnecting: "reconnecting…" }[phase] || phase;
  el.className = `pill ${phase === "live" ? "ok" : "warn"}`;
}

function connect() {
  if (source) return;
  setPhase(dash.state ? "reconnecting" : "connecting");
  source = new EventSource("dashboard/events");
  source.addEventListener("snapshot", (event) => {
    // A new connection (first, after an error, or after the tab was hidden) is a resync.
    dash.state = JSON.parse(event.data);
    dash.snapshots += 1;
    accept(event);
  });
  source.addEventListener("delta", (event) => {
    if (!dash.state) return;
    dash.state = mergePatch(dash.state, JSON.parse(event.data));
    dash.deltas += 1;
    accept(event);
  });
  source.onerror = () => setPhase("reconnecting"); // EventSource retries by itself
}

function accept(event) {
  dash.version = Number(event.lastEventId) || dash.version;
  dash.bytes += event.data.length;
  setPhase("live");
  if (!renderQueued) {
    renderQueued = true;
    requestAnimationFrame(() => { renderQueued = false; render(dash.state); });
  }
}

function disconnect() {
  if (source) source.close();
  source = null;
}

// A hidden tab takes nothing from the server; showing it again starts with a fresh snapshot.
document.addEventListener("visibilitychange", () => {
  if (document.hidden) { disconnect(); setPhase("paused"); } else connect();
});

// -- small DOM helpers ------------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

function text(node, selector, value) {
  const target = selector ? node.querySelector(selector) : node;
  const wanted = value === null || value === undefined ? "" : String(value);
  if (target.textContent !== wanted) target.textContent = wanted;
}

// Keep one element per key in `container`, in order; reuse elements so images do not reload.
function keyed(container, entries, make, update) {
  const existing = new Map([...container.children].map((child) => [child.dataset.key, child]));
  let index = 0;
  for (const [key, value] of entries) {
    let node = existing.get(key);
    if (!node) { node = make(key, value); node.dataset.key = key; }
    existing.delete(key);
    update(node, value, key);
    if (container.children[index] !== node) container.insertBefore(node, container.children[index] || null);
    index += 1;
  }
  for (const node of existing.values()) node.remove();
}

function showEmpty(section, isEmpty) {
  const note = section.querySelector(".empty");
  if (note) note.hidden = !isEmpty;
}

function mib(value) { return value === undefined ? "?" : `${value} MiB`; }
function size(job) { return job.width ? `${job.width}×${job.height}` : ""; }
function isImage(job) { return (job.content_type || "").startsWith("image/"); }

function ago(epochSeconds) {
  if (!epochSeconds) return "";
  const s = Math.max(0, Date.now() / 1000 - epochSeconds);
  if (s < 60) return `${Math.round(s)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  return `${Math.round(s / 3600)} h ago`;
}

function until(epochSeconds) {
  const s = Math.max(0, epochSeconds - Date.now() / 1000);
  return s < 120 ? `${Math.round(s)} s` : `${Math.round(s / 60)} min`;
}

// -- sections ---------------------------------------------------------------------------------

function render(state) {
  if (!state) return;
  renderService(state.service || {}, state.errors || {});
  const jobs = Object.entries((state.grabs || {}).jobs || {});
  renderActive(jobs.filter(([, j]) => j.where === "running" || j.where === "upload_pending"));
  renderQueue(jobs.filter(([, j]) => j.where === "queued"));
  renderRecent(jobs.filter(([, j]) => j.where === "recent"));
  renderMemory(state.memory || {});
  renderBakes(state.bakes || {});
  renderFrozen(state.frozen || {});
  renderActors(state.actors || {});
  renderPty(state.pty || {});
  renderInstances(state.instances || {});
}

function renderService(service, errors) {
  text(document.getElementById("version"), null, service.version ? `v${service.version}` : "");
  const health = document.getElementById("health");
  const reasons = service.ready_reasons || [];
  if (service.healthy === false) {
    text(health, null, `unhealthy: ${service.escalation || "supervision tree down"}`);
    health.className = "pill bad";
  } else if (reasons.length) {
    text(health, null, `not ready: ${reasons.join(", ")}`);
    health.className = "pill warn";
  } else {
    text(health, null, "ready");
    health.className = "pill ok";
  }
  const problems = Object.entries(errors).map(([name, message]) => `${name}: ${message}`);
  text(document.getElementById("errors"), null,
       problems.length ? `stale: ${problems.join("; ")}` : "");
}

function stageOf(job) {
  return job.where === "upload_pending" ? "upload pending" : (job.stage || job.state);
}

function renderActive(entries) {
  const section = document.getElementById("active");
  entries.sort(([, a], [, b]) => (a.created_at || 0) - (b.created_at || 0));
  text(section, ".count", entries.length || "");
  showEmpty(section, !entries.length);
  keyed(section.querySelector(".cards"), entries,
    () => el("article", { class: "card active" },
      el("div", { class: "thumb placeholder" }, el("span", { class: "piece" })),
      el("div", { class: "info" },
        el("div", {}, el("strong", { class: "stage" }), " ", el("span", { class: "what" })),
        el("ol", { class: "stages" }, ...STAGES.map((s) => el("li", { "data-stage": s }, s))),
        el("div", { class: "meta" }))),
    (node, job, id) => {
      const stage = stageOf(job);
      node.dataset.job = id;
      node.dataset.stage = stage;
      text(node, ".piece", job.piece);
      text(node, ".stage", stage);
      text(node, ".what", `${job.piece} ${job.format || ""} ${size(job)}`);
      text(node, ".meta", `${job.lane} lane · attempt ${job.attempts || 1}` +
                          (job.frames > 1 ? ` · ${job.frames} frames` : ""));
      const current = STAGES.indexOf(job.stage);
      for (const li of node.querySelectorAll(".stages li")) {
        const at = STAGES.indexOf(li.dataset.stage);
        li.className = at < current ? "done" : at === current ? "now" : "";
      }
      const seen = (dash.seen[id] = dash.seen[id] || []);
      if (seen[seen.length - 1] !== stage) seen.push(stage);
    });
}

function renderQueue(entries) {
  const section = document.getElementById("queue");
  text(section, ".count", entries.length || "");
  showEmpty(section, !entries.length);
  const lanes = {};
  for (const [id, job] of entries) (lanes[job.lane] = lanes[job.lane] || []).push([id, job]);
  const order = ["interactive", "background", ...Object.keys(lanes)];
  const laneEntries = [...new Set(order)].filter((l) => lanes[l]).map((l) => [l, lanes[l]]);
  keyed(section.querySelector(".lanes"), laneEntries,
    (lane) => el("div", { class: "lane" }, el("h3", {}, lane), el("table", {}, el("tbody"))),
    (node, jobs, lane) => {
      text(node, "h3", `${lane} (${jobs.length})`);
      jobs.sort(([, a], [, b]) => (a.position || 0) - (b.position || 0));
      keyed(node.querySelector("tbody"), jobs,
        () => el("tr", {}, el("td", { class: "pos" }), el("td", { class: "piece" }),
                 el("td", { class: "fmt" }), el("td", { class: "eta" })),
        (row, job, id) => {
          row.dataset.job = id;
          text(row, ".pos", `#${job.position ?? "?"}`);
          text(row, ".piece", job.piece);
          text(row, ".fmt", `${job.format || ""} ${size(job)}`);
          text(row, ".eta", job.eta_s !== undefined ? `~${job.eta_s} s` : "");
        });
    });
}

function renderRecent(entries) {
  const section = document.getElementById("recent");
  entries.sort(([, a], [, b]) => (b.updated_at || 0) - (a.updated_at || 0));
  showEmpty(section, !entries.length);
  keyed(section.querySelector(".cards"), entries,
    () => el("a", { class: "card recent", target: "_blank", rel: "noopener" },
      el("div", { class: "thumb placeholder" }, el("span", { class: "piece" })),
      el("div", { class: "info" },
        el("div", {}, el("strong", { class: "state" }), " ", el("span", { class: "what" })),
        el("div", { class: "meta" }), el("div", { class: "error" }))),
    (node, job, id) => {
      node.dataset.job = id;
      node.dataset.state = job.state;
      if (job.result_url) node.href = job.result_url; else node.removeAttribute("href");
      const thumb = node.querySelector(".thumb");
      if (job.result_url && isImage(job) && !thumb.querySelector("img")) {
        thumb.classList.remove("placeholder");
        thumb.replaceChildren(el("img", { src: job.result_url, alt: job.piece, loading: "lazy" }));
      } else if (!job.result_url || !isImage(job)) {
        text(node, ".piece", job.result_url ? `${job.piece} (${job.format})` : job.piece);
      }
      text(node, ".state", job.state);
      node.querySelector(".state").className = `state ${job.state}`;
      text(node, ".what", `${job.piece} ${job.format || ""} ${size(job)}`);
      const kb = job.bytes ? ` · ${Math.round(job.bytes / 1024)} KB` : "";
      const ready = job.ready ? ` · ready: ${job.ready}` : "";
      text(node, ".meta", `${ago(job.updated_at)}${kb}${ready}`);
      // What the frames suggest went wrong (blank, dud, frozen) and the page's own errors.
      const warnings = [...(job.flags || []),
                        job.page_errors && `${job.page_errors} page error(s)`].filter(Boolean);
      text(node, ".error", job.error || (warnings.length ? `⚠ ${warnings.join(", ")}` : ""));
    });
}

function renderMemory(memory) {
  const section = document.getElementById("memory");
  text(document.getElementById("memory-state"), null, memory.state || "");
  const budget = memory.budget_mib || 0;
  const pct = (v) => (budget ? `${Math.min(100, (100 * (v || 0)) / budget).toFixed(1)}%` : "0%");
  const total = section.querySelector(".total");
  total.querySelector("i").style.width = pct(memory.tree_mib);
  total.querySelector("i").className = memory.state || "";
  total.querySelector(".soft").style.left = pct(memory.soft_mib);
  total.querySelector(".hard").style.left = pct(memory.hard_mib);
  text(total, ".figure", `${mib(memory.tree_mib)} of ${mib(memory.budget_mib)} budget` +
       (memory.budget_source ? ` (${memory.budget_source})` : ""));
  // Components share the tree's figure: bars relative to the largest, text against the budget.
  const components = Object.entries(memory.components || {}).sort(([, a], [, b]) => b - a);
  const largest = Math.max(1, ...components.map(([, value]) => value || 0));
  keyed(section.querySelector(".components tbody"), components,
    () => el("tr", {}, el("td", { class: "name" }),
             el("td", { class: "barcell" }, el("div", { class: "bar" }, el("i"))),
             el("td", { class: "figure" })),
    (row, value, name) => {
      text(row, ".name", name);
      row.querySelector("i").style.width = `${(100 * (value || 0)) / largest}%`;
      text(row, ".figure", `${mib(value)} · ${pct(value)} of budget`);
    });
}

function renderBakes(bakes) {
  const section = document.getElementById("bakes");
  const entries = Object.entries(bakes).sort(([, a], [, b]) => (a.order || 0) - (b.order || 0));
  showEmpty(section, !entries.length);
  keyed(section.querySelector("tbody"), entries,
    () => el("tr", {}, el("td", { class: "thumbcell" }), el("td", { class: "id" }),
             el("td", { class: "state" }), el("td", { class: "facts" })),
    (row, bake, id) => {
      const cell = row.querySelector(".thumbcell");
      if (bake.thumbnail_url && !cell.querySelector("img")) {
        cell.replaceChildren(el("img", { src: bake.thumbnail_url, alt: id, loading: "lazy" }));
      }
      const idCell = row.querySelector(".id");
      if (bake.url) idCell.replaceChildren(el("a", { href: bake.url, target: "_blank", rel: "noopener" }, id));
      else text(idCell, null, id);
      text(row, ".state", bake.state || bake.status || "");
      const facts = [bake.frames && `${bake.frames} frames`, bake.fps && `${bake.fps} fps`,
                     bake.has_audio && "audio", bake.error].filter(Boolean);
      text(row, ".facts", facts.join(" · "));
    });
}

function renderFrozen(frozen) {
  const section = document.getElementById("frozen");
  const entries = Object.entries(frozen);
  showEmpty(section, !entries.length);
  keyed(section.querySelector("tbody"), entries,
    (piece) => el("tr", {}, el("td", { class: "piece" }), el("td", { class: "until" }),
                  el("td", { class: "reason" }),
                  el("td", {}, el("button", { type: "button", onclick: () => unfreeze(piece) },
                                  "Unfreeze"))),
    (row, item, piece) => {
      row.dataset.piece = piece;
      text(row, ".piece", piece);
      text(row, ".until", `for ${until(item.frozen_until)}`);
      text(row, ".reason", item.reason || "");
    });
}

function renderActors(actors) {
  keyed(document.querySelector("#actors tbody"), Object.entries(actors),
    () => el("tr", {}, el("td", { class: "name" }), el("td", { class: "state" }),
             el("td", { class: "restarts" }), el("td", { class: "mailbox" }),
             el("td", { class: "exit" })),
    (row, actor, name) => {
      row.dataset.actor = name;
      text(row, ".name", name);
      text(row, ".state", actor.state);
      row.querySelector(".state").className = `state ${actor.state}`;
      text(row, ".restarts", actor.restarts);
      text(row, ".mailbox", `${actor.backlog ?? 0}/${actor.mailbox_capacity ?? "∞"}`);
      text(row, ".exit", [actor.last_exit, actor.last_exit_detail].filter(Boolean).join(": "));
    });
}

function renderInstances(instances) {
  const section = document.getElementById("instances");
  const entries = Object.entries(instances);
  showEmpty(section, !entries.length);
  keyed(section.querySelector("tbody"), entries,
    () => el("tr", {}, el("td", { class: "id" }), el("td", { class: "role" }),
             el("td", { class: "pages" }), el("td", { class: "running" }),
             el("td", { class: "beat" })),
    (row, instance, id) => {
      text(row, ".id", instance.this ? `${id} (this one)` : id);
      text(row, ".role", instance.role);
      text(row, ".pages", instance.pages);
      text(row, ".running", instance.running);
      text(row, ".beat", ago(instance.heartbeat_at));
    });
}

function renderPty(pty) {
  const section = document.getElementById("pty");
  const entries = Object.entries(pty.sessions || {});
  text(section, ".empty", pty.enabled ? "No sessions." : "Terminal sessions are off ([pty] enabled = false).");
  showEmpty(section, !entries.length);
  keyed(section.querySelector("tbody"), entries,
    () => el("tr", {}, el("td", { class: "id" }), el("td", { class: "profile" }),
             el("td", { class: "state" }), el("td", { class: "facts" })),
    (row, s, id) => {
      text(row, ".id", id);
      text(row, ".profile", s.profile);
      text(row, ".state", s.paused ? `${s.state} (paused)` : s.state);
      text(row, ".facts", `${s.cols}×${s.rows} · ${s.clients} client(s) · ` +
                          `in ${s.bytes_in ?? 0} B · out ${s.bytes_out ?? 0} B`);
    });
}

// -- unfreeze (admin) -------------------------------------------------------------------------

const tokenInput = document.querySelector("#admin input[name=token]");
tokenInput.value = sessionStorage.getItem(TOKEN_KEY) || "";
tokenInput.addEventListener("change", () => sessionStorage.setItem(TOKEN_KEY, tokenInput.value));
document.getElementById("admin").addEventListener("submit", (event) => event.preventDefault());

async function unfreeze(piece) {
  const message = document.getElementById("frozen-message");
  const token = tokenInput.value.trim();
  if (!token) {
    message.textContent = "Enter the admin token to unfreeze a piece.";
    tokenInput.focus();
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  message.textContent = `Unfreezing ${piece}…`;
  try {
    const response = await fetch(`frozen/${encodeURIComponent(piece)}`, {
      method: "DELETE", headers: { Authorization: `Bearer ${token}` },
    });
    if (response.ok) {
      message.textContent = `${piece} unfrozen.`;
    } else {
      const body = await response.json().catch(() => ({}));
      message.textContent = `Not unfrozen (${response.status}): ${body.error?.message || response.statusText}`;
    }
  } catch (error) {
    message.textContent = `Not unfrozen: ${error}`;
  }
}

connect();
