/**
 * Outbound network access of object code: `fetch` and `WebSocket` go through the host's
 * egress proxy, which applies the server's outbound policy after resolving names, so DNS
 * rebinding cannot point an allowed name at a forbidden address. Installed by the bootstrap
 * before user code loads; it captures what it needs from `Deno` before `Deno` is deleted.
 *
 * Only `http:`/`https:` (and `ws:`/`wss:` for `WebSocket`) are accepted: Deno's own `fetch`
 * would read `file:` URLs from disk. Other network paths that bypass a client option
 * (`EventSource`, `WebSocketStream`, `WebTransport`) are removed.
 */

import type { WorkerEgress } from "./protocol.ts";

/** Network globals removed outright: they cannot be routed through the proxy. */
const REMOVED = ["EventSource", "WebSocketStream", "WebTransport"];

/** Replaces `fetch` and `WebSocket` on `globalThis` with policy-bound versions. */
export function installOutbound(egress: WorkerEgress | null): void {
  const nativeFetch = globalThis.fetch.bind(globalThis);
  const NativeWebSocket = globalThis.WebSocket;
  const createHttpClient = Deno.createHttpClient.bind(Deno);
  let client: Deno.HttpClient | null = null;
  function proxyClient(): Deno.HttpClient {
    if (!egress) throw new TypeError(DISABLED);
    client ??= createHttpClient({
      proxy: {
        url: egress.url,
        basicAuth: { username: egress.username, password: egress.password },
      },
    });
    return client;
  }

  async function guardedFetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
    const request = new Request(input, init);
    const url = new URL(request.url);
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new TypeError(`Fetch API cannot load "${url.href}": only http: and https: URLs`);
    }
    try {
      return await nativeFetch(request, { client: proxyClient() } as RequestInit);
    } catch (error) {
      throw clearer(error, url);
    }
  }

  class GuardedWebSocket extends NativeWebSocket {
    constructor(url: string | URL, protocolsOrOptions?: string | string[] | WebSocketOptions) {
      const target = new URL(url);
      if (!["ws:", "wss:", "http:", "https:"].includes(target.protocol)) {
        throw new DOMException(
          `WebSocket URL "${target.href}" must use ws:, wss:, http: or https:`,
          "SyntaxError",
        );
      }
      const options: WebSocketOptions = typeof protocolsOrOptions === "string" ||
          Array.isArray(protocolsOrOptions)
        ? { protocols: protocolsOrOptions }
        : { ...protocolsOrOptions };
      super(target, { ...options, client: proxyClient() } as WebSocketOptions);
    }
  }

  Object.defineProperty(globalThis, "fetch", {
    value: guardedFetch,
    writable: true,
    configurable: true,
    enumerable: true,
  });
  Object.defineProperty(globalThis, "WebSocket", {
    value: GuardedWebSocket,
    writable: true,
    configurable: true,
    enumerable: false,
  });
  for (const name of REMOVED) Reflect.deleteProperty(globalThis, name);
}

const DISABLED = "Outbound network access is disabled on this server";

/** Names the policy when the proxy refused the destination; other errors pass unchanged. */
function clearer(error: unknown, url: URL): unknown {
  const text = describe(error);
  if (/not allowed by ruleset|NotAllowed|ConnectionNotAllowed/i.test(text)) {
    return new TypeError(
      `Network connection to "${url.host}" is not allowed by the server's outbound policy`,
      { cause: error },
    );
  }
  return error;
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  return `${error.message} ${error.cause instanceof Error ? error.cause.message : ""}`;
}
