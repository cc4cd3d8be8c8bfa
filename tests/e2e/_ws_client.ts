/**
 * A WebSocket client for tests: messages are awaited in order, the close event is a promise,
 * and `await using` closes the connection and waits for it to end.
 */

import type { TestServer } from "../_helpers.ts";

/** How long a test waits for one awaited event before it fails. */
const WAIT_MS = 10_000;

/** A connected test client. */
export class WsClient implements AsyncDisposable {
  readonly ws: WebSocket;
  readonly closed: Promise<CloseEvent>;
  #messages: (string | ArrayBuffer)[] = [];
  #waiters: ((message: string | ArrayBuffer) => void)[] = [];

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.binaryType = "arraybuffer";
    this.closed = new Promise((resolve) => ws.addEventListener("close", resolve));
    ws.addEventListener("message", (event) => {
      const waiter = this.#waiters.shift();
      if (waiter) waiter(event.data);
      else this.#messages.push(event.data);
    });
  }

  /** Opens `path` on the server (ws://…/_do/…); rejects when the handshake fails. */
  static async open(server: TestServer, path: string): Promise<WsClient> {
    const ws = new WebSocket(server.url.replace(/^http/, "ws") + path);
    const client = new WsClient(ws);
    await new Promise<void>((resolve, reject) => {
      ws.addEventListener("open", () => resolve());
      ws.addEventListener("error", () => reject(new Error(`WebSocket to ${path} failed`)));
    });
    return client;
  }

  /** The next message (in arrival order). */
  next(): Promise<string | ArrayBuffer> {
    const queued = this.#messages.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    return within(new Promise((resolve) => this.#waiters.push(resolve)), "a message");
  }

  /** The next message, which must be text. */
  async text(): Promise<string> {
    const message = await this.next();
    if (typeof message !== "string") throw new Error("expected a text message");
    return message;
  }

  send(data: string | ArrayBuffer | Uint8Array): void {
    this.ws.send(data);
  }

  /** The close event (within the wait limit). */
  closeEvent(): Promise<CloseEvent> {
    return within(this.closed, "the close event");
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(1000, "done");
    await this.closed;
  }
}

/** Resolves with `promise`, or fails after the wait limit. */
export function within<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), WAIT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Polls `check` until it returns true (every 20 ms, within the wait limit). */
export async function until(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!await check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * Opens a WebSocket handshake over raw TCP: the test controls the connection afterwards
 * (drop it without a close frame, or never read from it).
 */
export async function rawUpgrade(
  server: TestServer,
  path: string,
): Promise<{ status: number; conn: Deno.TcpConn }> {
  const { port } = new URL(server.url);
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: Number(port) });
  const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
  const request = [
    `GET ${path} HTTP/1.1`,
    `Host: 127.0.0.1:${port}`,
    "Upgrade: websocket",
    "Connection: Upgrade",
    `Sec-WebSocket-Key: ${key}`,
    "Sec-WebSocket-Version: 13",
    "",
    "",
  ].join("\r\n");
  await conn.write(new TextEncoder().encode(request));
  let head = "";
  const buffer = new Uint8Array(4096);
  while (!head.includes("\r\n\r\n")) {
    const read = await within(conn.read(buffer), "the handshake response");
    if (read === null) break;
    head += new TextDecoder().decode(buffer.subarray(0, read));
  }
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
  return { status, conn };
}
