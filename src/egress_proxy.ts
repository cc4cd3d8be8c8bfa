/**
 * The egress proxy: every outbound connection of object code (and the host's own JWKS
 * fetches) goes through this small SOCKS5 server on 127.0.0.1, which applies the outbound
 * policy (`outbound_policy.ts`).
 *
 * Why a proxy and not a check in `fetch`: a check on the URL's host name is defeated by DNS
 * rebinding (the name resolves to a public address for the check and to 127.0.0.1 for the
 * connection). Here the proxy resolves the name itself, checks every address, and connects to
 * an address it checked, so the check and the connection cannot disagree. TLS stays end to end
 * (the worker's `fetch` speaks TLS through the tunnel with the real server name), redirects
 * are checked hop by hop because each hop is a new connection, and `WebSocket` uses the same
 * client. Workers get the proxy's address and a per-server password through `workerData`.
 *
 * The proxy also remembers the local address of each connection it opened, so the HTTP server
 * can refuse control-API requests that arrive through it (`refusesControl`), even when the
 * policy allows the server's own address (`--outbound all`, or a public server address).
 */

import { lookup } from "node:dns/promises";
import type { FetchImplementation } from "jose";
import type { WorkerEgress } from "../workers/protocol.ts";
import type { Logger } from "./log.ts";
import { outboundAllowed, type OutboundPolicy, parseAddress } from "./outbound_policy.ts";
import { randomToken, timingSafeEqualText } from "./secrets.ts";

const HANDSHAKE_TIMEOUT_MS = 10_000;
const REPLY = {
  ok: 0x00,
  failure: 0x01,
  notAllowed: 0x02,
  hostUnreachable: 0x04,
  refused: 0x05,
  commandNotSupported: 0x07,
  addressNotSupported: 0x08,
} as const;

/** Options for {@linkcode EgressProxy.start}. */
export interface EgressOptions {
  policy: OutboundPolicy;
  logger: Logger;
  /** Name resolution (tests replace it); the default uses the system resolver. */
  resolve?: (host: string) => Promise<string[]>;
}

/** The running proxy. */
export class EgressProxy {
  readonly #listener: Deno.Listener | null;
  readonly #options: EgressOptions;
  readonly #credentials = { username: "dohost", password: randomToken(24) };
  readonly #open = new Set<Deno.Conn>();
  /** `host:port` of the local end of each upstream connection. */
  readonly #localEnds = new Set<string>();
  #client: Deno.HttpClient | null = null;

  private constructor(listener: Deno.Listener | null, options: EgressOptions) {
    this.#listener = listener;
    this.#options = options;
    if (listener) this.#accept(listener);
  }

  /** Starts the proxy (no listener at all under `--outbound none`). */
  static start(options: EgressOptions): EgressProxy {
    const listener = options.policy.mode === "none"
      ? null
      : Deno.listen({ hostname: "127.0.0.1", port: 0 });
    return new EgressProxy(listener, options);
  }

  /** What a worker needs to use the proxy, or null when objects have no network access. */
  get endpoint(): WorkerEgress | null {
    if (!this.#listener) return null;
    const { port } = this.#listener.addr as Deno.NetAddr;
    return { url: `socks5://127.0.0.1:${port}`, ...this.#credentials };
  }

  /** A fetch for the host's own outbound requests (JWKS URLs), under the same policy. */
  readonly fetch: FetchImplementation = (url, init) => {
    const endpoint = this.endpoint;
    if (!endpoint) {
      return Promise.reject(new TypeError("Outbound network access is disabled (--outbound none)"));
    }
    this.#client ??= Deno.createHttpClient({
      proxy: {
        url: endpoint.url,
        basicAuth: { username: endpoint.username, password: endpoint.password },
      },
    });
    return fetch(url, { ...init, client: this.#client });
  };

  /** Whether a request from `remote` came in through this proxy. */
  isEgressPeer(remote: Deno.Addr): boolean {
    if (remote.transport !== "tcp") return false;
    return this.#localEnds.has(endKey(remote.hostname, remote.port));
  }

  /**
   * A 403 for control-API requests (`/v1`, `/mcp`) that arrive through the proxy, or null.
   * Object code must never reach the control plane, whatever the outbound policy.
   */
  refusesControl(request: Request, remote: Deno.Addr | undefined): Response | null {
    if (!remote || !this.isEgressPeer(remote)) return null;
    const path = new URL(request.url).pathname;
    if (!/^\/(v1|mcp)(\/|$)/.test(path)) return null;
    return Response.json({
      error: {
        code: "AUTH_FORBIDDEN",
        message: "Durable Objects cannot call the control API",
        remediation: "Call the control API from outside the server.",
      },
    }, { status: 403 });
  }

  /** Stops accepting and closes every tunnel. */
  close(): void {
    try {
      this.#listener?.close();
    } catch {
      // already closed
    }
    for (const conn of this.#open) closeQuietly(conn);
    this.#open.clear();
    this.#client?.close();
    this.#client = null;
  }

  async #accept(listener: Deno.Listener): Promise<void> {
    try {
      for await (const conn of listener) this.#serve(conn);
    } catch {
      // the listener was closed
    }
  }

  async #serve(client: Deno.Conn): Promise<void> {
    this.#open.add(client);
    let upstream: Deno.Conn | null = null;
    const timer = setTimeout(() => closeQuietly(client), HANDSHAKE_TIMEOUT_MS);
    try {
      const reader = new ByteReader(client);
      const target = await this.#handshake(client, reader);
      if (!target) return;
      upstream = await this.#connect(client, target);
      if (!upstream) return;
      clearTimeout(timer);
      await pipe(client, upstream, reader.rest());
    } catch {
      // a broken client or upstream: both ends are closed below
    } finally {
      clearTimeout(timer);
      closeQuietly(client);
      this.#open.delete(client);
      if (upstream) {
        const local = upstream.localAddr as Deno.NetAddr;
        this.#localEnds.delete(endKey(local.hostname, local.port));
        closeQuietly(upstream);
        this.#open.delete(upstream);
      }
    }
  }

  /** RFC 1928 greeting, RFC 1929 password check and the CONNECT request. */
  async #handshake(
    client: Deno.Conn,
    reader: ByteReader,
  ): Promise<{ host: string; port: number } | null> {
    const [version = 0, count = 0] = await reader.exactly(2);
    const methods = await reader.exactly(count);
    if (version !== 5 || !methods.includes(0x02)) {
      await client.write(new Uint8Array([5, 0xff]));
      return null;
    }
    await client.write(new Uint8Array([5, 0x02]));
    const [, userLength = 0] = await reader.exactly(2);
    const username = decode(await reader.exactly(userLength));
    const [passLength = 0] = await reader.exactly(1);
    const password = decode(await reader.exactly(passLength));
    const valid = timingSafeEqualText(username, this.#credentials.username) &&
      timingSafeEqualText(password, this.#credentials.password);
    await client.write(new Uint8Array([1, valid ? 0 : 1]));
    if (!valid) return null;
    const [, command, , addressType] = await reader.exactly(4);
    let host: string;
    if (addressType === 1) host = [...await reader.exactly(4)].join(".");
    else if (addressType === 3) {
      const [length = 0] = await reader.exactly(1);
      host = decode(await reader.exactly(length));
    } else if (addressType === 4) host = formatV6(await reader.exactly(16));
    else {
      await reply(client, REPLY.addressNotSupported);
      return null;
    }
    const [high = 0, low = 0] = await reader.exactly(2);
    if (command !== 1) {
      await reply(client, REPLY.commandNotSupported);
      return null;
    }
    return { host, port: high << 8 | low };
  }

  async #connect(
    client: Deno.Conn,
    target: { host: string; port: number },
  ): Promise<Deno.Conn | null> {
    let addresses: string[];
    try {
      addresses = parseAddress(target.host)
        ? [target.host.replace(/^\[|\]$/g, "")]
        : await (this.#options.resolve ?? resolveHost)(target.host);
    } catch {
      await reply(client, REPLY.hostUnreachable);
      return null;
    }
    if (!outboundAllowed(this.#options.policy, { ...target, addresses })) {
      this.#options.logger.log("info", "Outbound connection refused by policy", {
        host: target.host,
        port: target.port,
        addresses: addresses.join(" "),
      });
      await reply(client, REPLY.notAllowed);
      return null;
    }
    for (const hostname of addresses) {
      try {
        const upstream = await Deno.connect({ hostname, port: target.port });
        this.#open.add(upstream);
        const local = upstream.localAddr as Deno.NetAddr;
        this.#localEnds.add(endKey(local.hostname, local.port));
        await reply(client, REPLY.ok);
        return upstream;
      } catch {
        // try the next address
      }
    }
    await reply(client, REPLY.refused);
    return null;
  }
}

/** Buffered exact reads from a connection (the SOCKS handshake is byte-framed). */
class ByteReader {
  readonly #conn: Deno.Conn;
  #buffer = new Uint8Array(0);

  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  async exactly(count: number): Promise<Uint8Array> {
    while (this.#buffer.length < count) {
      const chunk = new Uint8Array(4096);
      const read = await this.#conn.read(chunk);
      if (read === null) throw new Error("The client closed the connection");
      const joined = new Uint8Array(this.#buffer.length + read);
      joined.set(this.#buffer);
      joined.set(chunk.subarray(0, read), this.#buffer.length);
      this.#buffer = joined;
    }
    const out = this.#buffer.slice(0, count);
    this.#buffer = this.#buffer.slice(count);
    return out;
  }

  /** Bytes read past the handshake (sent before the reply arrived). */
  rest(): Uint8Array {
    return this.#buffer;
  }
}

async function resolveHost(host: string): Promise<string[]> {
  const results = await lookup(host, { all: true, verbatim: true });
  return results.map((result) => result.address);
}

async function reply(client: Deno.Conn, code: number): Promise<void> {
  await client.write(new Uint8Array([5, code, 0, 1, 0, 0, 0, 0, 0, 0]));
}

/** Copies both ways until either side ends, then closes both. */
async function pipe(client: Deno.Conn, upstream: Deno.Conn, early: Uint8Array): Promise<void> {
  if (early.length > 0) await upstream.write(early);
  const options = { preventClose: true, preventAbort: true, preventCancel: true };
  await Promise.race([
    client.readable.pipeTo(upstream.writable, options).catch(() => {}),
    upstream.readable.pipeTo(client.writable, options).catch(() => {}),
  ]);
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // already closed
  }
}

function endKey(hostname: string, port: number): string {
  return `${hostname.replace(/^::ffff:/i, "").toLowerCase()}|${port}`;
}

function formatV6(bytes: Uint8Array): string {
  const words: string[] = [];
  for (let i = 0; i < 16; i += 2) {
    words.push((((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0)).toString(16));
  }
  return words.join(":");
}

function decode(bytes: Uint8Array): string {
  return new TextDecoder().decode(bytes);
}
