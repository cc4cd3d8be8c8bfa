/**
 * Raw TCP for requests `fetch` refuses to send: malformed HTTP, broken upgrades and
 * hand-made WebSocket frames.
 */

/** What came back on one raw connection. */
export interface RawReply {
  /** Everything read before the server closed or the wait ended. */
  text: string;
  /** The status of the first response line, or null if none arrived. */
  status: number | null;
  /** True when the server closed the connection; false when the wait ran out. */
  closed: boolean;
}

/** Options for {@linkcode rawExchange}. */
export interface RawOptions {
  /** How long to wait for the server; the connection is dropped afterwards. */
  waitMs?: number;
  /** Stop reading once the reply contains this (e.g. the end of the headers). */
  until?: string;
  /** Bytes to send after the first reply arrived (e.g. frames after a 101). */
  then?: Uint8Array;
  /** Half-close our side after sending, so the server sees EOF. */
  closeWrite?: boolean;
}

/** Sends `request` to `port` and reads the reply until close, `until`, or the wait ends. */
export async function rawExchange(
  port: number,
  request: Uint8Array | string,
  options: RawOptions = {},
): Promise<RawReply> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const decoder = new TextDecoder();
  let text = "";
  let closed = false;
  let expired = false;
  // Closing the connection is what ends a write or read the server never lets finish.
  const timer = setTimeout(() => {
    expired = true;
    closeQuietly(conn);
  }, options.waitMs ?? 3_000);
  try {
    await writeAll(conn, typeof request === "string" ? new TextEncoder().encode(request) : request);
    if (options.closeWrite) await conn.closeWrite();
    const buffer = new Uint8Array(16 * 1024);
    let then = options.then;
    while (true) {
      const n = await conn.read(buffer);
      if (n === null) {
        closed = true;
        break;
      }
      text += decoder.decode(buffer.subarray(0, n), { stream: true });
      if (then) {
        await writeAll(conn, then);
        then = undefined;
      } else if (options.until && text.includes(options.until)) {
        break;
      }
    }
  } catch {
    closed = !expired;
  } finally {
    clearTimeout(timer);
    closeQuietly(conn);
  }
  const match = /^HTTP\/1\.[01] (\d{3})/.exec(text);
  return { text, status: match?.[1] ? Number(match[1]) : null, closed };
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // already closed
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let offset = 0; offset < bytes.length;) offset += await conn.write(bytes.subarray(offset));
}

/** A client WebSocket frame (masked, as clients must send them unless `unmasked`). */
export function wsFrame(
  opcode: number,
  payload: Uint8Array,
  options: { fin?: boolean; unmasked?: boolean; declaredLength?: bigint } = {},
): Uint8Array {
  const length = options.declaredLength ?? BigInt(payload.length);
  const header: number[] = [(options.fin === false ? 0 : 0x80) | opcode];
  const mask = options.unmasked ? 0 : 0x80;
  if (length < 126n) header.push(mask | Number(length));
  else if (length < 65536n) {
    header.push(mask | 126, Number(length >> 8n) & 255, Number(length) & 255);
  } else {
    header.push(mask | 127);
    for (let shift = 56n; shift >= 0n; shift -= 8n) header.push(Number((length >> shift) & 255n));
  }
  const key = [0x12, 0x34, 0x56, 0x78];
  if (!options.unmasked) header.push(...key);
  const body = options.unmasked ? payload : payload.map((byte, i) => byte ^ (key[i % 4] ?? 0));
  const out = new Uint8Array(header.length + body.length);
  out.set(header);
  out.set(body, header.length);
  return out;
}

/** The request line and headers of a WebSocket handshake on `path`. */
export function upgradeRequest(path: string, headers: Record<string, string> = {}): string {
  const all: Record<string, string> = {
    host: "127.0.0.1",
    upgrade: "websocket",
    connection: "Upgrade",
    "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
    "sec-websocket-version": "13",
    ...headers,
  };
  const lines = Object.entries(all)
    .filter(([, value]) => value !== "")
    .map(([name, value]) => `${name}: ${value}`);
  return `GET ${path} HTTP/1.1\r\n${lines.join("\r\n")}\r\n\r\n`;
}
