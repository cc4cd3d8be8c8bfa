/** @jsxImportSource preact */
/// <reference lib="dom" />
/**
 * "Try it": send an HTTP request to an instance, or open a WebSocket to it, and see the
 * exchange.
 *
 * The data plane picks the app by host name (`<subdomain>.<domain>`), which a page cannot set
 * on `fetch`. So HTTP requests go through the server's console relay,
 * `/_console/try/<appId>/_do/…`, which hands them to the app's data plane in-process (signed
 * in with the console's token, in `X-Dohost-Console-Token`). WebSockets need no CORS, so they
 * connect straight to `<subdomain>.<domain>:<port>` (`*.localhost` resolves to this machine in
 * browsers), or to this page's host for `app_default`; the address can be edited.
 */

import type { JSX } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import type { Api } from "../api.ts";
import type { AccessMode, AppInfo } from "../types.ts";
import { ErrorBox } from "./ui.tsx";

const METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

/** The "try it" tab of a class. */
export function TryView(props: {
  api: Api;
  app: AppInfo | null;
  appId: string;
  name: string;
  instance: string | null;
  accessMode: AccessMode | null;
}): JSX.Element {
  const [instance, setInstance] = useState(props.instance ?? "demo");
  return (
    <section aria-label="Try it">
      <div class="row filters">
        <label for="try-instance">Instance name or id</label>
        <input
          id="try-instance"
          value={instance}
          required
          onInput={(event) => setInstance(event.currentTarget.value)}
        />
        {props.accessMode && props.accessMode !== "public" && (
          <span class="muted small">
            This class is <code>{props.accessMode}</code>: add an{" "}
            <code>Authorization: Bearer …</code> header (HTTP) or a token (WebSocket).
          </span>
        )}
      </div>
      <div class="grid2">
        <HttpPanel {...props} instance={instance} />
        <SocketPanel {...props} instance={instance} />
      </div>
    </section>
  );
}

interface Exchange {
  request: string;
  status: string;
  headers: string;
  body: string;
  ms: number;
}

function HttpPanel(
  props: { api: Api; appId: string; name: string; instance: string },
): JSX.Element {
  const [method, setMethod] = useState("GET");
  const [path, setPath] = useState("/");
  const [headers, setHeaders] = useState("");
  const [body, setBody] = useState("");
  const [exchange, setExchange] = useState<Exchange | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const target = `/_do/${encodeURIComponent(props.name)}/${encodeURIComponent(props.instance)}${
    path.startsWith("/") || path.startsWith("?") ? path : `/${path}`
  }`;
  const send = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const sent = parseHeaders(headers);
      const init: RequestInit = { method, headers: new Headers(sent) };
      if (!["GET", "HEAD"].includes(method) && body) init.body = body;
      (init.headers as Headers).set("x-dohost-console-token", props.api.token);
      const started = performance.now();
      const response = await fetch(
        `/_console/try/${encodeURIComponent(props.appId)}${target}`,
        init,
      );
      const text = method === "HEAD" ? "" : await response.text();
      setExchange({
        request: [`${method} ${target}`, ...sent.map(([k, v]) => `${k}: ${v}`), "", body].join("\n")
          .trimEnd(),
        status: `${response.status} ${response.statusText}`,
        headers: [...response.headers].map(([k, v]) => `${k}: ${v}`).join("\n"),
        body: text,
        ms: Math.round(performance.now() - started),
      });
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy(false);
    }
  };
  return (
    <div class="card">
      <h2>HTTP request</h2>
      <form class="stack" onSubmit={send}>
        <div class="row">
          <label for="try-method" class="sr-only">Method</label>
          <select
            id="try-method"
            value={method}
            onChange={(event) => setMethod(event.currentTarget.value)}
          >
            {METHODS.map((item) => <option key={item}>{item}</option>)}
          </select>
          <label for="try-path" class="sr-only">Path after the instance</label>
          <input
            id="try-path"
            class="grow mono"
            value={path}
            onInput={(event) => setPath(event.currentTarget.value)}
          />
        </div>
        <p class="muted small mono break">{target}</p>
        <label for="try-headers">Headers (one "Name: value" a line)</label>
        <textarea
          id="try-headers"
          class="code"
          rows={3}
          value={headers}
          onInput={(event) => setHeaders(event.currentTarget.value)}
        />
        <label for="try-body">Body</label>
        <textarea
          id="try-body"
          class="code"
          rows={4}
          value={body}
          onInput={(event) => setBody(event.currentTarget.value)}
        />
        <div>
          <button type="submit" class="primary" disabled={busy}>Send request</button>
        </div>
      </form>
      <ErrorBox error={error} />
      {exchange && (
        <div role="region" aria-label="Exchange" aria-live="polite">
          <h3>Request</h3>
          <pre class="exchange">{exchange.request}</pre>
          <h3>
            Response <span class="mono">{exchange.status}</span>{" "}
            <span class="muted small">{exchange.ms} ms</span>
          </h3>
          <pre class="exchange">{exchange.headers}</pre>
          <pre class="exchange response-body">{exchange.body}</pre>
        </div>
      )}
    </div>
  );
}

interface Frame {
  n: number;
  kind: "sent" | "received" | "event";
  text: string;
}

function SocketPanel(
  props: { app: AppInfo | null; appId: string; name: string; instance: string },
): JSX.Element {
  const defaultUrl = socketUrl(props.app, props.appId, props.name, props.instance);
  const [url, setUrl] = useState(defaultUrl);
  const [token, setToken] = useState("");
  const [message, setMessage] = useState("");
  const [frames, setFrames] = useState<Frame[]>([]);
  const [open, setOpen] = useState(false);
  const socket = useRef<WebSocket | null>(null);
  const counter = useRef(0);
  useEffect(() => setUrl(defaultUrl), [defaultUrl]);
  useEffect(() => () => socket.current?.close(1000, "console closed"), []);
  const log = (kind: Frame["kind"], text: string) =>
    setFrames((old) => [...old.slice(-199), { n: ++counter.current, kind, text }]);
  const connect = () => {
    socket.current?.close(1000, "reconnect");
    let address = url;
    if (token) address += `${url.includes("?") ? "&" : "?"}token=${encodeURIComponent(token)}`;
    let ws: WebSocket;
    try {
      ws = new WebSocket(address);
    } catch (error) {
      log("event", `cannot connect: ${String(error)}`);
      return;
    }
    ws.binaryType = "arraybuffer";
    socket.current = ws;
    log("event", `connecting to ${url}`);
    ws.onopen = () => {
      setOpen(true);
      log("event", "open");
    };
    ws.onmessage = (event) =>
      log(
        "received",
        typeof event.data === "string" ? event.data : `(${event.data.byteLength} binary bytes)`,
      );
    ws.onerror = () => log("event", "error (see the close code)");
    ws.onclose = (event) => {
      setOpen(false);
      log("event", `closed ${event.code}${event.reason ? ` ${event.reason}` : ""}`);
    };
  };
  const send = (event: Event) => {
    event.preventDefault();
    if (!socket.current || socket.current.readyState !== WebSocket.OPEN) return;
    socket.current.send(message);
    log("sent", message);
    setMessage("");
  };
  return (
    <div class="card">
      <h2>WebSocket</h2>
      <div class="stack">
        <label for="ws-url">Address</label>
        <input
          id="ws-url"
          class="mono"
          value={url}
          onInput={(event) => setUrl(event.currentTarget.value)}
        />
        <label for="ws-token">
          Token (sent as <code>?token=</code>, optional)
        </label>
        <input
          id="ws-token"
          type="password"
          value={token}
          autocomplete="off"
          onInput={(event) => setToken(event.currentTarget.value)}
        />
        <div class="row">
          <button type="button" class="primary" onClick={connect}>
            {open ? "Reconnect" : "Connect"}
          </button>
          <button type="button" disabled={!open} onClick={() => socket.current?.close(1000, "bye")}>
            Close
          </button>
        </div>
      </div>
      <form class="row" onSubmit={send}>
        <label for="ws-message" class="sr-only">Message</label>
        <input
          id="ws-message"
          class="grow"
          value={message}
          placeholder="message"
          onInput={(event) => setMessage(event.currentTarget.value)}
        />
        <button type="submit" disabled={!open}>Send</button>
      </form>
      <div class="frames" role="log" aria-label="WebSocket messages">
        <ol>
          {frames.map((frame) => (
            <li key={frame.n} class={`frame-${frame.kind}`}>
              <span aria-hidden="true">
                {frame.kind === "sent" ? "→ " : frame.kind === "received" ? "← " : "• "}
              </span>
              <span class="sr-only">{frame.kind}:</span>
              <span class="mono">{frame.text}</span>
            </li>
          ))}
        </ol>
      </div>
    </div>
  );
}

/** `Name: value` lines as header pairs (blank and malformed lines are skipped). */
function parseHeaders(text: string): [string, string][] {
  return text.split("\n").flatMap((line) => {
    const colon = line.indexOf(":");
    if (colon <= 0) return [];
    return [[line.slice(0, colon).trim(), line.slice(colon + 1).trim()] as [string, string]];
  });
}

/** The WebSocket address of an instance on the app's own host. */
function socketUrl(app: AppInfo | null, appId: string, name: string, instance: string): string {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const path = `/_do/${encodeURIComponent(name)}/${encodeURIComponent(instance)}`;
  if (appId === "app_default" || !app) return `${scheme}//${location.host}${path}`;
  const meta = document.querySelector<HTMLMetaElement>('meta[name="dohost-domain"]');
  const domain = meta?.content || "localhost";
  const port = location.port ? `:${location.port}` : "";
  return `${scheme}//${app.subdomain}.${domain}${port}${path}`;
}
