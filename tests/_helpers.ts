/**
 * Test helpers: a real dohost server on port 0 in a temporary data dir, disposed with
 * `await using`, plus small request helpers.
 */

import { loadConfig } from "../src/config.ts";
import { silentLogger } from "../src/log.ts";
import { createServer, type Server } from "../src/server.ts";

/** A server started for one test. */
export interface TestServer extends AsyncDisposable {
  url: string;
  adminToken: string;
  dataDir: string;
  server: Server;
  /** A control-API call with the admin token (or `token`). */
  api(method: string, path: string, body?: unknown, token?: string): Promise<Response>;
  /** Deploys `code` as `name` into app_default; throws unless it becomes READY. */
  deploy(name: string, code: string, accessMode?: string): Promise<void>;
  /** `fetch` on the data plane of app_default. */
  fetch(path: string, init?: RequestInit): Promise<Response>;
  /** Stops the server (storage committed) without removing the data dir. */
  stop(): Promise<void>;
}

/** Options for {@linkcode startServer}. */
export interface StartOptions {
  /** Extra command-line flags, e.g. `["--max-value-bytes", "2097152"]`. */
  flags?: string[];
  /** Reuse a data dir (restart tests). */
  dataDir?: string;
}

const ADMIN = "test-admin-token";

/** Starts a server; `await using server = await startServer()`. */
export async function startServer(options: StartOptions = {}): Promise<TestServer> {
  const dataDir = options.dataDir ?? await Deno.makeTempDir({ prefix: "dohost-test-" });
  const config = loadConfig(["--port", "0", "--data-dir", dataDir, ...(options.flags ?? [])], {
    DOHOST_ADMIN_TOKEN: ADMIN,
  });
  if (!config) throw new Error("unreachable: --help");
  const server = await createServer(config, silentLogger);
  const listening = Promise.withResolvers<Deno.NetAddr>();
  const http = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen: (addr) => listening.resolve(addr) },
    server.handler,
  );
  const addr = await listening.promise;
  const url = `http://127.0.0.1:${addr.port}`;
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    server.endStreams();
    await http.shutdown();
    await server.close();
  };
  const api = (method: string, path: string, body?: unknown, token = ADMIN) =>
    fetch(`${url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  return {
    url,
    adminToken: ADMIN,
    dataDir,
    server,
    api,
    async deploy(name, code, accessMode = "public") {
      const res = await api("POST", "/v1/app_default/durable-objects", {
        name,
        code,
        access_mode: accessMode,
      });
      const body = await res.json();
      if (res.status !== 200 || body.status !== "READY") {
        throw new Error(`deploy ${name} failed: ${res.status} ${JSON.stringify(body)}`);
      }
    },
    fetch: (path, init) => fetch(`${url}${path}`, init),
    stop,
    async [Symbol.asyncDispose]() {
      await stop();
      if (!options.dataDir) await Deno.remove(dataDir, { recursive: true });
    },
  };
}

/** Reads a fixture class file from `tests/fixtures/`. */
export function fixture(name: string): Promise<string> {
  return Deno.readTextFile(new URL(`./fixtures/${name}`, import.meta.url));
}

/** `fetch` and parse JSON, asserting nothing about the status. */
export async function getJson(
  server: TestServer,
  path: string,
  init?: RequestInit,
): Promise<{ status: number; body: unknown }> {
  const res = await server.fetch(path, init);
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // plain-text bodies stay strings
  }
  return { status: res.status, body };
}
