import assert from "node:assert/strict";
import { dirname } from "node:path";
import { fixture, startServer, type TestServer } from "../_helpers.ts";
import { METHODS, randomBody, randomName, segment } from "./_fuzz_inputs.ts";
import { Prng, seedFromEnv } from "./_prng.ts";
import { escapedFiles, sandbox } from "./_sandbox.ts";

/** Requests per run (`DOHOST_FUZZ_COUNT` raises it for a longer search). */
const COUNT = Number(Deno.env.get("DOHOST_FUZZ_COUNT") ?? "250");
/** Longest a single request may take before it counts as a hang. */
const HANG_MS = 20_000;

/**
 * The control routes, with `:param` holes the fuzzer fills. `POST /v1/backups` is left out on
 * purpose: writing a copy of the data dir to a path the admin names is its job.
 */
const ROUTES: [methods: string[], template: string][] = [
  [["GET", "POST"], "/v1/apps"],
  [["GET", "DELETE"], "/v1/apps/:app"],
  [["GET", "POST"], "/v1/apps/:app/keys"],
  [["DELETE"], "/v1/apps/:app/keys/:key"],
  [["GET", "POST"], "/v1/:app/durable-objects"],
  [["GET"], "/v1/:app/durable-objects/env"],
  [["PUT", "DELETE"], "/v1/:app/durable-objects/env/:key"],
  [["GET", "DELETE"], "/v1/:app/durable-objects/:name"],
  [["GET"], "/v1/:app/durable-objects/:name/usage"],
  [["GET"], "/v1/:app/durable-objects/:name/instances"],
  [["DELETE"], "/v1/:app/durable-objects/:name/instances/:id"],
  [["GET"], "/v1/:app/durable-objects/:name/instances/:id/storage"],
  [["POST"], "/v1/:app/durable-objects/:name/instances/:id/sql"],
  [["GET", "PUT"], "/v1/:app/durable-objects/:name/instances/:id/export"],
  [["POST"], "/v1/:app/durable-objects/:name/instances/:id/alarm"],
  [["POST"], "/v1/:app/durable-objects/:name/instances/:id/evict"],
  [["GET"], "/v1/:app/durable-objects/:name/logs"],
  [["GET", "POST"], "/v1/:seg"],
  [["GET", "POST"], "/v1/:seg/:seg/:seg/:seg"],
  [["POST", "GET", "DELETE"], "/mcp"],
];

interface Attempt {
  method: string;
  path: string;
  token: string;
  contentType: string;
  body: BodyInit | undefined;
}

function attempt(prng: Prng, server: TestServer): Attempt {
  const [methods, template] = prng.pick(ROUTES);
  const path = template.replace(/:(\w+)/g, (_, hole: string) => {
    if (hole === "app" && prng.chance(0.6)) return "app_default";
    if (hole === "name" && prng.chance(0.5)) return prng.pick(["echo", randomName(prng)]);
    if (hole === "key" && prng.chance(0.4)) return prng.pick(["API_KEY", "BUTTERBASE_X", "ECHO"]);
    return segment(prng);
  });
  return {
    method: prng.chance(0.8) ? prng.pick(methods) : prng.pick(METHODS),
    path: path + (prng.chance(0.1) ? `?${segment(prng)}=${segment(prng)}` : ""),
    token: prng.chance(0.85) ? server.adminToken : prng.pick(["", "bb_sk_x", "Bearer"]),
    contentType: prng.pick(["application/json", "application/json", "text/plain", ""]),
    body: randomBody(prng),
  };
}

function describe(seed: number, index: number, item: Attempt): string {
  const body = typeof item.body === "string"
    ? JSON.stringify(item.body.slice(0, 200))
    : item.body === undefined
    ? "none"
    : "bytes";
  return `seed ${seed} #${index}: ${item.method} ${item.path.slice(0, 300)} body=${body}`;
}

async function send(server: TestServer, item: Attempt): Promise<number> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), HANG_MS);
  try {
    const headers: Record<string, string> = {};
    if (item.token) headers.authorization = `Bearer ${item.token}`;
    if (item.contentType) headers["content-type"] = item.contentType;
    const body = item.method === "GET" || item.method === "HEAD" ? undefined : item.body;
    const res = await fetch(`${server.url}${item.path}`, {
      method: item.method,
      headers,
      body,
      signal: controller.signal,
    });
    await res.body?.cancel();
    return res.status;
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("fuzz: the control API never answers 500, never hangs and never writes outside the data dir", async () => {
  const seed = seedFromEnv();
  const prng = new Prng(seed);
  await using box = await sandbox();
  await using server = await startServer({ dataDir: box.dataDir });
  await server.deploy("echo", await fixture("echo_do.ts"));
  const failures: string[] = [];
  for (let i = 0; i < COUNT; i++) {
    const item = attempt(prng, server);
    try {
      const status = await send(server, item);
      if (status >= 500) failures.push(`${describe(seed, i, item)} → ${status}`);
    } catch (error) {
      failures.push(`${describe(seed, i, item)} → ${error instanceof Error ? error.name : error}`);
    }
  }
  const huge = new Uint8Array(13 * 1024 * 1024).fill(0x20);
  const big = await fetch(`${server.url}/v1/app_default/durable-objects`, {
    method: "POST",
    headers: { authorization: `Bearer ${server.adminToken}`, "content-type": "application/json" },
    body: huge,
  });
  await big.body?.cancel();
  assert.equal(big.status, 413, "a body over the control limit is refused");
  assert.deepEqual(failures, [], `replay with DOHOST_SEED=${seed}`);
  assert.deepEqual(await box.strays(), [], "nothing was written outside the data dir");
  assert.deepEqual(await escapedFiles([dirname(box.root), Deno.cwd()]), []);
  await server.deploy("zz-after-fuzz", await fixture("echo_do.ts"));
  const res = await server.fetch("/_do/zz-after-fuzz/check");
  assert.equal(res.status, 200, "the server still serves after the fuzz run");
  await res.body?.cancel();
});
