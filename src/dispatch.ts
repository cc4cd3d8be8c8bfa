/**
 * The data plane: `/_do/<name>/<id>[/<rest>][?<query>]` on an app's host reaches instance
 * `<id>` of class `<name>`.
 *
 * The host name picks the app (`<subdomain>.<domain>`; the bare domain, IP addresses and other
 * hosts reach `app_default`), the class's access mode is checked before any instance is
 * woken, and the object receives the original URL, method, headers and body. Errors here are
 * plain text, as in the original service. Headers a caller could use to impersonate the
 * platform (`x-dohost-*`) are dropped.
 */

import type { Context } from "hono";
import {
  isStorageFaultCode,
  objectIdFromName,
  responseFromWire,
  type WireRequest,
} from "../workers/protocol.ts";
import { type App, type AppStore, DEFAULT_APP_ID } from "./apps.ts";
import { allowedByAccessMode, bearer } from "./auth.ts";
import type { Config } from "./config.ts";
import { STORAGE_FAULT_STATUS } from "./errors.ts";
import { InstanceError, type InstanceManager, type InstanceTarget } from "./instances.ts";
import type { Registry } from "./registry.ts";
import type { UsageMeter } from "./usage.ts";

const DO_PATH = /^\/_do\/([^/]+)\/([^/]+)/;
/** Instance names longer than this are refused (Cloudflare's URL limit is 16 KB). */
const MAX_ID_BYTES = 4096;
/** Instance ids computed recently: two SHA-256 digests per request are worth skipping. */
const ID_CACHE_SIZE = 4096;
const idCache = new Map<string, string>();

/**
 * Methods the fetch `Request` constructor refuses, so no object could receive them; forwarding
 * one would fail inside the instance's worker instead of here.
 */
const FORBIDDEN_METHODS = new Set(["CONNECT", "TRACE", "TRACK"]);

/** The plain-text body of each status an instance failure is answered with. */
const STATUS_TEXT: Record<number, string> = {
  500: "Internal Server Error",
  503: "Service Unavailable",
  507: "Insufficient Storage",
};

/** What the dispatcher needs. */
export interface DispatchDeps {
  config: Config;
  apps: AppStore;
  registry: Registry;
  instances: InstanceManager;
  usage: UsageMeter;
}

/** A request that was matched, authorised and resolved to an instance. */
export interface ResolvedRequest {
  target: InstanceTarget;
}

/** Resolves the app a host (`name[:port]`) selects, or a plain-text 404. */
export function appForHost(host: string | undefined, deps: DispatchDeps): App | Response {
  const hostname = (host ?? "").toLowerCase().replace(/:\d+$/, "").replace(/\.$/, "");
  const suffix = `.${deps.config.domain}`;
  if (hostname.endsWith(suffix)) {
    const label = hostname.slice(0, -suffix.length).split(".").pop() ?? "";
    const app = deps.apps.bySubdomain(label);
    if (!app) return text(404, `No app for subdomain "${label}"`);
    return app;
  }
  const fallback = deps.apps.get(DEFAULT_APP_ID);
  return fallback ?? text(404, "Not found");
}

/**
 * Matches the path, resolves the class and checks access. Returns the instance target, or the
 * plain-text response to send instead. Shared by HTTP and WebSocket upgrades.
 */
export async function resolveRequest(
  c: Context,
  deps: DispatchDeps,
  options: { queryToken: boolean },
): Promise<ResolvedRequest | Response> {
  // The request URL, not the Host header: Deno.serve builds the URL from Host, and in-process
  // requests (tests, internal calls) carry no Host header at all.
  const url = new URL(c.req.url);
  const app = appForHost(url.host, deps);
  if (app instanceof Response) return app;
  const match = DO_PATH.exec(url.pathname);
  if (!match) return text(404, "not found");
  const [, rawName = "", rawId = ""] = match;
  const record = deps.registry.ready(app.appId, rawName);
  if (!record) return text(404, "unknown DO");
  let token = bearer(c.req.header("authorization"));
  if (token === null && options.queryToken) token = url.searchParams.get("token");
  if (!await allowedByAccessMode(record.accessMode, app, token, deps.apps)) {
    return text(401, "unauthorized");
  }
  let name: string;
  try {
    name = decodeURIComponent(rawId);
  } catch {
    return text(400, "invalid instance id: bad percent-encoding");
  }
  // A UTF-16 unit is at most 3 UTF-8 bytes: only long names need encoding to be measured.
  if (name.length * 3 > MAX_ID_BYTES && new TextEncoder().encode(name).length > MAX_ID_BYTES) {
    return text(414, `invalid instance id: longer than ${MAX_ID_BYTES} bytes`);
  }
  const idHex = cachedObjectId(`${app.appId}/${record.name}`, name);
  return { target: { app, record, idHex, name } };
}

/** `objectIdFromName`, remembered for recent short names (the cache is emptied when full). */
function cachedObjectId(namespace: string, name: string): string {
  if (name.length > 256) return objectIdFromName(namespace, name);
  const key = `${namespace}\0${name}`;
  let idHex = idCache.get(key);
  if (idHex === undefined) {
    idHex = objectIdFromName(namespace, name);
    if (idCache.size >= ID_CACHE_SIZE) idCache.clear();
    idCache.set(key, idHex);
  }
  return idHex;
}

/** Handles an HTTP request on `/_do/*`. */
export async function dispatchHttp(c: Context, deps: DispatchDeps): Promise<Response> {
  if (FORBIDDEN_METHODS.has(c.req.method.toUpperCase())) {
    return text(405, `method ${c.req.method} is not allowed`);
  }
  const resolved = await resolveRequest(c, deps, { queryToken: false });
  if (resolved instanceof Response) return resolved;
  const { target } = resolved;
  const body = await readBody(c.req.raw, deps.config.maxBodyBytes);
  if (body instanceof Response) return body;
  deps.usage.countRequest(target.app.appId, target.record.name, target.idHex, target.name);
  const req: WireRequest = {
    url: c.req.url,
    method: c.req.method,
    headers: forwardedHeaders(c.req.raw.headers),
    body,
  };
  try {
    return responseFromWire(await deps.instances.fetch(target, req));
  } catch (error) {
    if (error instanceof InstanceError) return instanceErrorResponse(error);
    throw error;
  }
}

/**
 * The response for an event that failed inside (or because of) the instance: 503 for
 * overload-class errors, a storage fault's own status, else 500.
 */
export function instanceErrorResponse(error: InstanceError): Response {
  const { code } = error.wire;
  const status = isStorageFaultCode(code)
    ? STORAGE_FAULT_STATUS[code]
    : error.wire.overloaded === true
    ? 503
    : 500;
  return new Response(STATUS_TEXT[status] ?? "Internal Server Error", {
    status,
    headers: { "content-type": "text/plain;charset=UTF-8", "x-dohost-error": code },
  });
}

/** The request headers the object sees: everything but `x-dohost-*`. */
export function forwardedHeaders(headers: Headers): [string, string][] {
  return [...headers].filter(([name]) => !name.startsWith("x-dohost-"));
}

async function readBody(request: Request, limit: number): Promise<ArrayBuffer | null | Response> {
  if (request.method === "GET" || request.method === "HEAD" || !request.body) return null;
  const declared = Number(request.headers.get("content-length") ?? "0");
  if (declared > limit) return text(413, `payload too large: limit is ${limit} bytes`);
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for await (const chunk of request.body) {
      size += chunk.byteLength;
      if (size > limit) return text(413, `payload too large: limit is ${limit} bytes`);
      chunks.push(chunk);
    }
  } catch {
    // The client went away or sent a malformed body (fewer bytes than declared, bad chunks).
    return text(400, "invalid request body: it ended early or is malformed");
  }
  const body = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return body.buffer;
}

function text(status: number, body: string): Response {
  return new Response(body, { status, headers: { "content-type": "text/plain;charset=UTF-8" } });
}
