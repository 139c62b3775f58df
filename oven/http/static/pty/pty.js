// The web terminal: xterm.js on a PTY session's WebSocket (protocol in oven/http/_pty.py).
// Output flow control: a byte counts as rendered only when xterm's write callback says so, and
// only rendered bytes are acknowledged, so the server pauses the child while xterm is behind.
// Input flow control: keystrokes and pastes go out in frames of at most 64 KiB, and no more is
// handed to the socket while it still buffers SEND_BUFFER_BYTES, so a huge paste waits here.

const FRAME_BYTES = 64 * 1024; // the server refuses larger input frames (pty.max_frame_bytes)
const ACK_EVERY_BYTES = 64 * 1024; // ack at once after this much newly rendered output...
const ACK_EVERY_MS = 16; // ...and otherwise at most this long after the first unacked byte
const SEND_BUFFER_BYTES = 1024 * 1024; // input held by the browser's socket before we wait
const SEND_RETRY_MS = 10; // WebSocket has no "drained" event: look again after this long

const params = new URLSearchParams(location.search);
const statusLine = document.getElementById("status");
const sessionLine = document.getElementById("session");
const login = document.getElementById("login");
const encoder = new TextEncoder();

// Everything a test or a curious person in devtools may want to read.
const state = {
  sessionId: null,
  phase: "starting", // starting, connecting, running, exited, closed, failed
  received: 0, // output bytes off the socket
  rendered: 0, // output bytes xterm has finished writing
  lost: 0, // output bytes skipped by resyncs, in stream order
  base: 0, // the session's output offset when this client attached
  acked: 0, // the last offset acknowledged
  exitStatus: null,
  resyncs: 0,
};

const term = new Terminal({
  scrollback: 10000,
  cursorBlink: true,
  fontFamily: "ui-monospace, Menlo, Consolas, 'DejaVu Sans Mono', monospace",
  fontSize: 14,
});
const fit = new FitAddon.FitAddon();
term.loadAddon(fit);
term.open(document.getElementById("terminal"));
fit.fit();
window.term = term;
window.pty = state;

let socket = null;
let ackTimer = null;
let sendTimer = null;
const outbox = []; // Uint8Array frames of input not yet handed to the socket

function setStatus(text, kind = "") {
  statusLine.textContent = text;
  statusLine.className = kind;
}

function notice(text) {
  // Local text: written to the screen but never counted as session output.
  term.write(`\r\n\x1b[33m[${text}]\x1b[0m\r\n`);
}

function sendControl(message) {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
}

function renderedOffset() {
  return state.base + state.rendered + state.lost;
}

function sendAck() {
  clearTimeout(ackTimer);
  ackTimer = null;
  const offset = renderedOffset();
  if (offset > state.acked) {
    state.acked = offset;
    sendControl({ type: "ack", bytes: offset });
  }
}

function scheduleAck() {
  if (renderedOffset() - state.acked >= ACK_EVERY_BYTES) sendAck();
  else if (ackTimer === null) ackTimer = setTimeout(sendAck, ACK_EVERY_MS);
}

function flushInput() {
  clearTimeout(sendTimer);
  sendTimer = null;
  if (!socket || socket.readyState !== WebSocket.OPEN) return;
  while (outbox.length > 0 && socket.bufferedAmount < SEND_BUFFER_BYTES) {
    socket.send(outbox.shift());
  }
  if (outbox.length > 0) sendTimer = setTimeout(flushInput, SEND_RETRY_MS);
}

function sendInput(text) {
  if (state.phase === "exited" || state.phase === "closed" || state.phase === "failed") return;
  const bytes = encoder.encode(text);
  for (let start = 0; start < bytes.length; start += FRAME_BYTES) {
    outbox.push(bytes.subarray(start, start + FRAME_BYTES));
  }
  flushInput();
}

function onOutput(data) {
  const bytes = new Uint8Array(data);
  state.received += bytes.length;
  term.write(bytes, () => {
    state.rendered += bytes.length;
    scheduleAck();
  });
}

function onControl(message) {
  if (message.type === "exit") {
    // Written through xterm's queue so the notice lands after the last output.
    term.write("", () => {
      state.phase = "exited";
      state.exitStatus = message.status;
      sendAck();
      notice(`process exited with status ${message.status}`);
      setStatus(`exited with status ${message.status}`, message.status === 0 ? "" : "error");
    });
  } else if (message.type === "resync") {
    // Output before message.offset is gone: count the gap in stream order so acks stay true.
    term.write("", () => {
      state.lost += message.lost;
      state.resyncs += 1;
      scheduleAck();
      notice(`${message.lost} bytes of output were skipped (resync)`);
      setStatus(`resynced: ${message.lost} bytes skipped`, "notice");
    });
  } else if (message.type === "attached" && Number.isInteger(message.offset)) {
    state.base = message.offset; // where this client starts in the session's output
  }
}

function connect(session, token) {
  const url = new URL(session.ws_url.replace(/^\//, ""), location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  url.searchParams.set("token", token);
  state.phase = "connecting";
  socket = new WebSocket(url);
  socket.binaryType = "arraybuffer";
  socket.onopen = () => {
    state.phase = "running";
    setStatus("connected");
    sendControl({ type: "resize", cols: term.cols, rows: term.rows });
    flushInput();
    term.focus();
  };
  socket.onmessage = (event) => {
    if (typeof event.data === "string") onControl(JSON.parse(event.data));
    else onOutput(event.data);
  };
  socket.onclose = (event) => {
    clearTimeout(sendTimer);
    outbox.length = 0;
    term.write("", () => {
      if (state.phase === "exited") return;
      state.phase = "closed";
      const reason = event.reason ? `: ${event.reason}` : "";
      notice(`disconnected (${event.code}${reason})`);
      setStatus(`disconnected (${event.code}${reason})`, "error");
    });
  };
}

async function start(token, profile) {
  login.hidden = true;
  setStatus(`starting ${profile}…`);
  let response;
  try {
    response = await fetch("pty/sessions", {
      method: "POST",
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
      body: JSON.stringify({ profile, cols: term.cols, rows: term.rows }),
    });
  } catch (error) {
    state.phase = "failed";
    setStatus(`cannot reach the server: ${error}`, "error");
    return;
  }
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try {
      message = (await response.json()).error.message || message;
    } catch {
      // not a JSON error body: the status line says enough
    }
    state.phase = "failed";
    setStatus(message, "error");
    if (response.status === 401 || response.status === 403) login.hidden = false;
    return;
  }
  const session = await response.json();
  state.sessionId = session.id;
  sessionLine.textContent = `${profile} · ${session.id}`;
  connect(session, token);
}

term.onData(sendInput);
term.onResize(({ cols, rows }) => sendControl({ type: "resize", cols, rows }));

let fitPending = false;
new ResizeObserver(() => {
  // One fit per frame however many resize events arrive; fit() fires onResize if size changed.
  if (fitPending) return;
  fitPending = true;
  requestAnimationFrame(() => {
    fitPending = false;
    fit.fit();
  });
}).observe(document.getElementById("terminal"));

login.addEventListener("submit", (event) => {
  event.preventDefault();
  const form = new FormData(login);
  start(String(form.get("token")), String(form.get("profile")) || "shell");
});

const token = params.get("token");
const profile = params.get("profile") || "shell";
login.elements.profile.value = profile;
if (token) {
  start(token, profile);
} else {
  setStatus("enter the token to open a terminal");
  login.hidden = false;
  login.elements.token.focus();
}
