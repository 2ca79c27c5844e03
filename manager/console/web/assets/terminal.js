// A terminal in a session's container, drawn by xterm.js (vendored under
// vendor/xterm by scripts/vendor-xterm.sh) over the API's WebSocket
// GET /v1/sessions/{id}/terminal: binary messages are the keys typed and
// what the terminal shows; text messages are {type:"resize"} from here and
// {type:"exit"} from the manager. The login cookie authenticates it; the
// manager accepts it from the console's own origin only.
import { Terminal } from "./vendor/xterm/xterm.mjs";
import { FitAddon } from "./vendor/xterm/addon-fit.mjs";

// xterm.js themes its terminal with <style> elements it makes itself. The
// page's Content-Security-Policy admits only styles carrying the nonce of
// the page (console.go), so every <style> this page's scripts create gets
// it at creation, before it is inserted (a nonce set later does not count).
let stamped = false;
function stampStyleNonces() {
  if (stamped) return;
  stamped = true;
  const holder = document.querySelector("link[nonce]");
  const nonce = holder ? holder.nonce : "";
  if (!nonce) return;
  const create = Document.prototype.createElement;
  Document.prototype.createElement = function (tag, options) {
    const el = create.call(this, tag, options);
    if (String(tag).toLowerCase() === "style") el.setAttribute("nonce", nonce);
    return el;
  };
}

// openTerminal draws a terminal in el connected to container index of the
// session, and returns a function that closes it. onEnd(text) is told once
// why it ended.
export function openTerminal(el, sessionId, index, onEnd) {
  stampStyleNonces();
  const term = new Terminal({ cursorBlink: true, convertEol: false, fontSize: 13, scrollback: 5000 });
  const fit = new FitAddon();
  term.loadAddon(fit);
  term.open(el);
  fit.fit();
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const q = new URLSearchParams({ container: String(index), cols: String(term.cols), rows: String(term.rows) });
  const ws = new WebSocket(`${proto}//${location.host}/v1/sessions/${encodeURIComponent(sessionId)}/terminal?${q}`);
  ws.binaryType = "arraybuffer";
  const encoder = new TextEncoder();
  let exitCode = null;
  let ended = false;
  const end = (text) => {
    if (ended) return;
    ended = true;
    onEnd(text);
  };
  ws.addEventListener("open", () => term.focus());
  ws.addEventListener("message", (ev) => {
    if (typeof ev.data !== "string") {
      term.write(new Uint8Array(ev.data));
      return;
    }
    try {
      const m = JSON.parse(ev.data);
      if (m.type === "exit") exitCode = m.code;
    } catch { /* not a message of ours */ }
  });
  ws.addEventListener("close", (ev) => {
    if (exitCode !== null) end(`The process exited with code ${exitCode}.`);
    else if (ev.code === 1006) end("The terminal could not be opened or its connection was lost (is the session RUNNING?).");
    else end(`The terminal closed: ${ev.reason || "code " + ev.code}.`);
  });
  const send = (data) => { if (ws.readyState === WebSocket.OPEN) ws.send(data); };
  term.onData((d) => send(encoder.encode(d)));
  term.onBinary((d) => send(Uint8Array.from(d, (c) => c.charCodeAt(0))));
  term.onResize(({ cols, rows }) => send(JSON.stringify({ type: "resize", cols, rows })));
  const observer = new ResizeObserver(() => { try { fit.fit(); } catch { /* hidden */ } });
  observer.observe(el);
  return () => {
    observer.disconnect();
    if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.close(1000, "closed in the console");
    term.dispose();
  };
}
