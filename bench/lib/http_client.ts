/**
 * A minimal keep-alive HTTP/1.1 client on a raw TCP socket, for load generation.
 *
 * The client and the server share two cores, so the client must cost as little CPU per request
 * as possible: `fetch` spends several times more than the servers under test on small requests.
 * This one writes a prebuilt request, reads into one reusable buffer, and parses only the status
 * line, `content-length` and `transfer-encoding`. One request is in flight per connection.
 * Only loopback addresses are accepted.
 */

const CR = 13;
const LF = 10;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** What a request got back. `body` is a copy, made only when asked for. */
export interface HttpResult {
  status: number;
  body: Uint8Array | null;
}

/** Refuses anything but loopback: the bench never sends traffic off this machine. */
export function assertLoopback(hostname: string): void {
  if (hostname !== "127.0.0.1" && hostname !== "localhost" && hostname !== "::1") {
    throw new Error(`Refusing non-loopback target ${hostname}`);
  }
}

/** The bytes of one request (build once and reuse when the path repeats). */
export function requestBytes(
  method: string,
  path: string,
  host: string,
  body: Uint8Array | null = null,
): Uint8Array {
  const length = body?.byteLength ?? 0;
  const head = `${method} ${path} HTTP/1.1\r\nhost: ${host}\r\n` +
    (length || method === "POST" || method === "PUT" ? `content-length: ${length}\r\n` : "") +
    "\r\n";
  const bytes = encoder.encode(head);
  if (!body || body.byteLength === 0) return bytes;
  const all = new Uint8Array(bytes.byteLength + body.byteLength);
  all.set(bytes);
  all.set(body, bytes.byteLength);
  return all;
}

/** One keep-alive connection. */
export class HttpConnection {
  readonly #conn: Deno.TcpConn;
  #buf = new Uint8Array(64 * 1024);
  #start = 0;
  #end = 0;
  #closed = false;

  private constructor(conn: Deno.TcpConn) {
    this.#conn = conn;
  }

  /** Opens a connection to `hostname:port` (loopback only). */
  static async open(hostname: string, port: number): Promise<HttpConnection> {
    assertLoopback(hostname);
    const conn = await Deno.connect({ hostname, port });
    conn.setNoDelay(true);
    return new HttpConnection(conn);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Sends `request` (from {@linkcode requestBytes}) and reads the whole response. */
  async send(request: Uint8Array, keepBody = false): Promise<HttpResult> {
    let written = 0;
    while (written < request.byteLength) {
      written += await this.#conn.write(request.subarray(written));
    }
    return await this.#readResponse(keepBody);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch {
      // already closed by the peer
    }
  }

  async #readResponse(keepBody: boolean): Promise<HttpResult> {
    const headEnd = await this.#until(() => this.#findHeadEnd());
    const head = this.#buf.subarray(this.#start, headEnd);
    // "HTTP/1.1 200 ..."
    const headers = decoder.decode(head).toLowerCase();
    const status = Number(headers.slice(9, 12));
    this.#start = headEnd + 4;
    const lengthAt = headers.indexOf("\r\ncontent-length:");
    if (lengthAt >= 0) {
      const from = lengthAt + 17;
      const to = headers.indexOf("\r\n", from);
      const length = Number(headers.slice(from, to < 0 ? undefined : to).trim());
      return { status, body: await this.#readFixed(length, keepBody) };
    }
    if (headers.includes("\r\ntransfer-encoding: chunked")) {
      return { status, body: await this.#readChunked(keepBody) };
    }
    return { status, body: keepBody ? new Uint8Array(0) : null };
  }

  async #readFixed(length: number, keepBody: boolean): Promise<Uint8Array | null> {
    await this.#fill(length);
    const body = keepBody ? this.#buf.slice(this.#start, this.#start + length) : null;
    this.#start += length;
    return body;
  }

  async #readChunked(keepBody: boolean): Promise<Uint8Array | null> {
    const parts: Uint8Array[] = [];
    while (true) {
      const lineEnd = await this.#until(() => this.#findLineEnd());
      const size = parseInt(decoder.decode(this.#buf.subarray(this.#start, lineEnd)), 16);
      this.#start = lineEnd + 2;
      await this.#fill(size + 2);
      if (keepBody && size > 0) parts.push(this.#buf.slice(this.#start, this.#start + size));
      this.#start += size + 2;
      if (size === 0) break;
    }
    if (!keepBody) return null;
    const body = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
    let offset = 0;
    for (const part of parts) {
      body.set(part, offset);
      offset += part.byteLength;
    }
    return body;
  }

  /** Reads until `find()` returns an index. */
  async #until(find: () => number): Promise<number> {
    while (true) {
      const at = find();
      if (at >= 0) return at;
      await this.#readMore();
    }
  }

  async #fill(bytes: number): Promise<void> {
    while (this.#end - this.#start < bytes) await this.#readMore();
  }

  async #readMore(): Promise<void> {
    if (this.#start > 0) {
      this.#buf.copyWithin(0, this.#start, this.#end);
      this.#end -= this.#start;
      this.#start = 0;
    }
    if (this.#end === this.#buf.byteLength) {
      const bigger = new Uint8Array(this.#buf.byteLength * 2);
      bigger.set(this.#buf);
      this.#buf = bigger;
    }
    const n = await this.#conn.read(this.#buf.subarray(this.#end));
    if (n === null) {
      this.close();
      throw new Error("connection closed by server");
    }
    this.#end += n;
  }

  #findHeadEnd(): number {
    const buf = this.#buf;
    for (let i = this.#start; i + 3 < this.#end; i++) {
      if (buf[i] === CR && buf[i + 1] === LF && buf[i + 2] === CR && buf[i + 3] === LF) return i;
    }
    return -1;
  }

  #findLineEnd(): number {
    const buf = this.#buf;
    for (let i = this.#start; i + 1 < this.#end; i++) {
      if (buf[i] === CR && buf[i + 1] === LF) return i;
    }
    return -1;
  }
}
