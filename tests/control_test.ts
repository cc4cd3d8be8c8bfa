/**
 * The control API (Butterbase `manage_durable_objects` REST routes plus apps) against a real
 * server: every route, every validation error with its status, `error.code`, `error.reason`
 * and message, authentication, and what deploy/delete/env changes do to live instances.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { fixture, startServer, type TestServer } from "./_helpers.ts";

interface ErrorBody {
  error: { code: string; message: string; remediation: string; reason?: string };
}

type Row = Record<string, unknown>;

const DEPLOY_REMEDIATION = "Fix the source code or input and retry. See the dohost README.";
const NOT_FOUND_REMEDIATION = "Use list_durable_objects to see registered DOs.";
const CLASS = (name: string) =>
  `import { DurableObject } from "cloudflare:workers";
export class ${name} extends DurableObject {
  async fetch() { return new Response("${name}"); }
}
`;

/** A control call; the body parsed as JSON. */
async function call(
  server: TestServer,
  method: string,
  path: string,
  body?: unknown,
  token?: string,
): Promise<{ status: number; body: Row }> {
  const res = await server.api(method, path, body, token);
  return { status: res.status, body: await res.json() };
}

/** A control call with a raw body and raw headers. */
async function raw(
  server: TestServer,
  method: string,
  path: string,
  init: { body?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: Row }> {
  const res = await fetch(`${server.url}${path}`, { method, ...init });
  return { status: res.status, body: await res.json() };
}

/** Asserts the error envelope. */
function assertError(
  reply: { status: number; body: unknown },
  expected: {
    status: number;
    code: string;
    reason?: string;
    message?: string | RegExp;
    remediation?: string;
  },
): void {
  const context = JSON.stringify(reply.body);
  assert.equal(reply.status, expected.status, context);
  const { error } = reply.body as ErrorBody;
  assert.equal(error.code, expected.code, context);
  assert.equal(error.reason, expected.reason, context);
  assert.equal(typeof error.remediation, "string", context);
  if (typeof expected.message === "string") assert.equal(error.message, expected.message);
  else if (expected.message) assert.match(error.message, expected.message);
  if (expected.remediation) assert.equal(error.remediation, expected.remediation);
}

function deploy(server: TestServer, body: Row, appId = "app_default", token?: string) {
  return call(server, "POST", `/v1/${appId}/durable-objects`, body, token);
}

function listNames(server: TestServer, appId = "app_default"): Promise<unknown[]> {
  return call(server, "GET", `/v1/${appId}/durable-objects`).then((reply) =>
    (reply.body.durable_objects as Row[]).map((row) => row.name)
  );
}

/** A data-plane request to the app on `subdomain`, in process (the URL carries the host). */
async function onHost(
  server: TestServer,
  subdomain: string,
  path: string,
  init?: RequestInit,
): Promise<{ status: number; text: string }> {
  const res = await server.server.handler(
    new Request(`http://${subdomain}.localhost${path}`, init),
  );
  return { status: res.status, text: await res.text() };
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

Deno.test("POST /v1/apps creates an app with its secrets; GET /v1/apps lists apps without them", async () => {
  await using server = await startServer();
  const created = await call(server, "POST", "/v1/apps", { name: "Demo App" });
  assert.equal(created.status, 200);
  const app = created.body;
  for (const field of ["app_id", "name", "subdomain", "service_key", "jwt_secret"]) {
    assert.ok(field in app, field);
  }
  assert.match(String(app.app_id), /^app_[a-z0-9]+$/);
  assert.equal(app.name, "Demo App");
  assert.equal(app.subdomain, "demo-app");
  assert.match(String(app.service_key), /^bb_sk_.{20,}$/);
  assert.ok(String(app.jwt_secret).length >= 32);
  const twin = await call(server, "POST", "/v1/apps", { name: "Demo App" });
  assert.notEqual(twin.body.subdomain, "demo-app", "subdomains are unique");
  assert.notEqual(twin.body.app_id, app.app_id);

  const res = await server.api("GET", "/v1/apps");
  const text = await res.text();
  assert.ok(!text.includes(String(app.service_key)), "no service key in the list");
  assert.ok(!text.includes(String(app.jwt_secret)), "no JWT secret in the list");
  const apps = JSON.parse(text).apps as Row[];
  assert.deepEqual(apps.map((item) => item.app_id), [
    "app_default",
    app.app_id,
    twin.body.app_id,
  ]);
  assert.equal(apps[0]?.subdomain, "default");

  for (const body of [{}, { name: "" }, { name: 7 }]) {
    const bad = await call(server, "POST", "/v1/apps", body);
    assertError(bad, { status: 400, code: "VALIDATION_INVALID_SCHEMA", reason: "INVALID_BODY" });
  }
  assertError(await call(server, "POST", "/v1/apps", { name: "   " }), {
    status: 400,
    code: "VALIDATION_INVALID_SCHEMA",
    reason: "INVALID_APP_NAME",
  });
});

Deno.test("DELETE /v1/apps/:appId removes the app, its classes and storage; app_default stays", async () => {
  await using server = await startServer();
  const app = (await call(server, "POST", "/v1/apps", { name: "gone" })).body;
  const appId = String(app.app_id);
  const code = await fixture("conformance_do.ts");
  assert.equal(
    (await deploy(server, { name: "conformance-do", code, access_mode: "public" }, appId))
      .body.status,
    "READY",
  );
  assert.equal(
    (await onHost(server, "gone", "/_do/conformance-do/a/kv?k=x&v=1", { method: "PUT" }))
      .status,
    200,
  );
  assert.equal((await onHost(server, "gone", "/_do/conformance-do/a/kv?k=x")).text, "1");
  const appDir = join(server.dataDir, "instances", appId);
  assert.ok(await exists(appDir));

  assert.deepEqual(await call(server, "DELETE", `/v1/apps/${appId}`), {
    status: 200,
    body: { deleted: true, app_id: appId },
  });
  assert.equal(await exists(appDir), false, "instance files purged");
  assert.equal(server.server.deps.instances.live[Symbol.iterator]().next().done, true);
  assertError(await call(server, "GET", `/v1/${appId}/durable-objects`), {
    status: 404,
    code: "RESOURCE_NOT_FOUND",
    message: "App not found",
  });
  assert.deepEqual(await onHost(server, "gone", "/_do/conformance-do/a/kv?k=x"), {
    status: 404,
    text: 'No app for subdomain "gone"',
  });
  assertError(await call(server, "DELETE", `/v1/apps/${appId}`), {
    status: 404,
    code: "RESOURCE_NOT_FOUND",
    message: "App not found",
  });

  assertError(await call(server, "DELETE", "/v1/apps/app_default"), {
    status: 400,
    code: "REQUEST_ERROR",
    reason: "DEFAULT_APP",
    message: "Cannot delete app_default: it always exists",
  });
  const apps = (await call(server, "GET", "/v1/apps")).body.apps as Row[];
  assert.deepEqual(apps.map((item) => item.app_id), ["app_default"]);
});

Deno.test("control auth: missing, malformed and unknown tokens are 401 with the original codes", async () => {
  await using server = await startServer();
  const anonymous: Record<string, string>[] = [
    {},
    { authorization: "Basic abc" },
    { authorization: "Bearer " },
  ];
  for (const headers of anonymous) {
    assertError(await raw(server, "GET", "/v1/app_default/durable-objects", { headers }), {
      status: 401,
      code: "REQUEST_ERROR",
      message: "Authentication required",
      remediation: "Check your request parameters and retry.",
    });
  }
  assertError(await call(server, "GET", "/v1/apps", undefined, "bb_sk_not-a-real-key"), {
    status: 401,
    code: "AUTH_INVALID_API_KEY",
    message: "Invalid or revoked API key",
  });
  assertError(await call(server, "GET", "/v1/apps", undefined, "eyJhbGciOiJIUzI1NiJ9.e30.x"), {
    status: 401,
    code: "AUTH_INVALID_TOKEN",
    message: "Invalid JWT token",
  });
  assertError(await call(server, "GET", "/v1/app_default/durable-objects", undefined, "wrong"), {
    status: 401,
    code: "AUTH_INVALID_TOKEN",
    message: "Invalid JWT token",
  });
  // Authentication is checked before the body is read or the app is looked up.
  assertError(await raw(server, "POST", "/v1/app_nope/durable-objects", { body: "{" }), {
    status: 401,
    code: "REQUEST_ERROR",
    message: "Authentication required",
  });
});

Deno.test("control auth: a service key reaches its own app only; app routes need the admin token", async () => {
  await using server = await startServer();
  const mine = (await call(server, "POST", "/v1/apps", { name: "mine" })).body;
  const other = (await call(server, "POST", "/v1/apps", { name: "other" })).body;
  const key = String(mine.service_key);

  const own = await deploy(
    server,
    { name: "counter", code: CLASS("Counter") },
    String(mine.app_id),
    key,
  );
  assert.equal(own.status, 200);
  assert.equal(own.body.status, "READY");
  const listed = await call(server, "GET", `/v1/${mine.app_id}/durable-objects`, undefined, key);
  assert.equal(listed.status, 200);
  assert.equal((listed.body.durable_objects as Row[]).length, 1);

  const notFound = {
    status: 404,
    code: "RESOURCE_NOT_FOUND",
    message: "App not found",
    remediation: "Verify the app_id is correct.",
  };
  for (const appId of [other.app_id, "app_default", "app_missing"]) {
    assertError(
      await call(server, "GET", `/v1/${appId}/durable-objects`, undefined, key),
      notFound,
    );
    assertError(
      await deploy(server, { name: "x", code: CLASS("X") }, String(appId), key),
      notFound,
    );
    assertError(
      await call(server, "PUT", `/v1/${appId}/durable-objects/env/A`, { value: "1" }, key),
      notFound,
    );
    assertError(
      await call(server, "GET", `/v1/${appId}/durable-objects/x/usage`, undefined, key),
      notFound,
    );
  }
  assertError(await call(server, "GET", "/v1/app_missing/durable-objects"), notFound);

  const apps = await call(server, "GET", "/v1/apps", undefined, key);
  assert.deepEqual((apps.body.apps as Row[]).map((item) => item.app_id), [mine.app_id]);
  const forbidden = { status: 403, code: "AUTH_FORBIDDEN" };
  assertError(await call(server, "POST", "/v1/apps", { name: "x" }, key), forbidden);
  assertError(await call(server, "DELETE", `/v1/apps/${mine.app_id}`, undefined, key), forbidden);
  assertError(await call(server, "DELETE", `/v1/apps/${other.app_id}`, undefined, key), forbidden);
  const all = (await call(server, "GET", "/v1/apps")).body.apps as Row[];
  assert.deepEqual(all.map((item) => item.app_id), ["app_default", mine.app_id, other.app_id]);
});

Deno.test("deploy, list, get and delete a class with the original response shapes", async () => {
  await using server = await startServer();
  const code = CLASS("Alpha");
  const first = await deploy(server, { name: "alpha", code });
  assert.equal(first.status, 200);
  assert.match(
    String(first.body.id),
    /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
  );
  assert.equal(first.body.name, "alpha");
  assert.equal(first.body.status, "READY");
  assert.equal(first.body.class_name, "Alpha");
  assert.equal(first.body.access_mode, "authenticated", "access_mode defaults to authenticated");
  await deploy(server, { name: "beta", code: CLASS("Beta"), access_mode: "public" });
  await deploy(server, { name: "gamma", code: CLASS("Gamma"), access_mode: "service_key" });
  assert.deepEqual(await listNames(server), ["gamma", "beta", "alpha"], "newest first");

  // A redeploy is an upsert: same id, same place in the list, access_mode back to the default.
  const again = await deploy(server, { name: "beta", code: CLASS("BetaTwo") });
  assert.equal(again.body.class_name, "BetaTwo");
  assert.deepEqual(await listNames(server), ["gamma", "beta", "alpha"]);
  const list = (await call(server, "GET", "/v1/app_default/durable-objects")).body;
  const beta = (list.durable_objects as Row[])[1] ?? {};
  assert.deepEqual(Object.keys(beta).sort(), [
    "access_mode",
    "class_name",
    "error_message",
    "id",
    "last_deployed_at",
    "name",
    "status",
  ]);
  assert.equal(beta.access_mode, "authenticated");
  assert.equal(beta.error_message, null);
  assert.equal(beta.status, "READY");

  const got = await call(server, "GET", "/v1/app_default/durable-objects/alpha");
  assert.equal(got.status, 200);
  assert.equal(got.body.code, code, "code exactly as submitted");
  assert.equal(got.body.id, first.body.id);
  assert.equal(got.body.class_name, "Alpha");
  assert.equal(got.body.error_message, null);
  for (const field of ["last_deployed_at", "created_at", "updated_at"]) {
    assert.match(String(got.body[field]), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, field);
  }
  assertError(await call(server, "GET", "/v1/app_default/durable-objects/nope"), {
    status: 404,
    code: "RESOURCE_NOT_FOUND",
    message: "Durable Object not found",
    remediation: NOT_FOUND_REMEDIATION,
  });

  assert.deepEqual(await call(server, "DELETE", "/v1/app_default/durable-objects/alpha"), {
    status: 200,
    body: { deleted: true, name: "alpha" },
  });
  assertError(await call(server, "DELETE", "/v1/app_default/durable-objects/alpha"), {
    status: 404,
    code: "RESOURCE_NOT_FOUND",
    message: "DO not found",
    remediation: NOT_FOUND_REMEDIATION,
  });
  assert.deepEqual(await listNames(server), ["gamma", "beta"]);
  assert.equal((await server.fetch("/_do/alpha/x")).status, 404);
});

Deno.test("deploy rejects bad bodies with 400, never 500", async () => {
  await using server = await startServer();
  const code = CLASS("A");
  const invalidBody = { status: 400, code: "VALIDATION_INVALID_SCHEMA", reason: "INVALID_BODY" };
  for (
    const body of [
      { code },
      { name: "a" },
      { name: "", code },
      { name: "a", code: "" },
      { name: 1, code },
      { name: "a", code: 5 },
      { name: "a", code, access_mode: "everyone" },
    ]
  ) {
    assertError(await deploy(server, body), invalidBody);
  }
  assertError(await deploy(server, {}), { ...invalidBody, message: /name/ });
  const invalidJson = {
    status: 400,
    code: "REQUEST_ERROR",
    reason: "INVALID_JSON",
    message: "Request body is not valid JSON",
  };
  const headers = { authorization: `Bearer ${server.adminToken}` };
  for (const body of ["{", "name=a", '{"name":"a",}']) {
    assertError(
      await raw(server, "POST", "/v1/app_default/durable-objects", { body, headers }),
      invalidJson,
    );
  }
  for (const body of ["[]", "null", "42", '"text"']) {
    assertError(
      await raw(server, "POST", "/v1/app_default/durable-objects", { body, headers }),
      invalidBody,
    );
  }
  assertError(
    await raw(server, "POST", "/v1/app_default/durable-objects", { headers }),
    invalidBody,
  );
  assertError(
    await raw(server, "PUT", "/v1/app_default/durable-objects/env/A", { body: "{", headers }),
    invalidJson,
  );
  assertError(
    await raw(server, "POST", "/v1/apps", { body: "nope", headers }),
    invalidJson,
  );
  const tooLarge = await deploy(server, { name: "huge", code: "x".repeat(13 * 1024 * 1024) });
  assertError(tooLarge, {
    status: 413,
    code: "REQUEST_ERROR",
    reason: "BODY_TOO_LARGE",
    message: "Request body is too large",
  });
  assert.deepEqual(await listNames(server), [], "nothing was written");
});

Deno.test("deploy source checks reject without writing a row", async () => {
  await using server = await startServer();
  const reject = async (name: string, code: string, reason: string, message: string | RegExp) => {
    assertError(await deploy(server, { name, code }), {
      status: 400,
      code: "VALIDATION_INVALID_SCHEMA",
      reason,
      message,
      remediation: DEPLOY_REMEDIATION,
    });
  };
  for (const name of ["Chat-Room", "chat_room", "1chat", "chat--room", "chat-", "-chat", "a b"]) {
    await reject(
      name,
      CLASS("A"),
      "INVALID_NAME",
      `Invalid DO name: ${name}. Must be lowercase kebab-case (e.g. 'chat-room').`,
    );
  }
  const big = `export class Big {}\n//${"x".repeat(5 * 1024 * 1024)}`;
  await reject(
    "big",
    big,
    "SOURCE_TOO_LARGE",
    `Source is ${big.length} bytes; the limit is 5242880 bytes per class.`,
  );
  const disallowed = (spec: string) =>
    `Import '${spec}' is not allowed. v1 DO source files may only import from cloudflare:* ` +
    "(e.g. 'cloudflare:workers'). npm packages are not supported.";
  await reject(
    "npm",
    `import { Hono } from "npm:hono";\nexport class A { fetch() { return Hono; } }`,
    "DISALLOWED_IMPORT",
    disallowed("npm:hono"),
  );
  await reject(
    "npm",
    `import x from "npm:hono";\nexport class A { fetch() { return x; } }`,
    "DISALLOWED_IMPORT",
    disallowed("npm:hono"),
  );
  await reject(
    "fs",
    `const fs = require("fs");\nexport class A { fetch() { return fs; } }`,
    "DISALLOWED_IMPORT",
    disallowed("fs"),
  );
  await reject(
    "dyn",
    `export class A { async fetch() { return await import("node:fs"); } }`,
    "DISALLOWED_IMPORT",
    disallowed("node:fs"),
  );
  await reject(
    "rel",
    `export { helper } from "./helper.ts";\nexport class A {}`,
    "DISALLOWED_IMPORT",
    disallowed("./helper.ts"),
  );
  const defaultMessage = "Source uses 'export default class' which is not supported. " +
    "Use named export instead: 'export class YourClassName {}'.";
  await reject(
    "d1",
    "export default class Room {}",
    "EXPORT_DEFAULT_NOT_SUPPORTED",
    defaultMessage,
  );
  await reject("d2", "export default class {}", "EXPORT_DEFAULT_NOT_SUPPORTED", defaultMessage);
  const none = "Source must export exactly one class via 'export class YourClassName {}'. " +
    "None found.";
  await reject("none", "class Hidden {}\nexport const x = 1;", "NO_EXPORTED_CLASS", none);
  await reject("fn", "export function f() {}", "NO_EXPORTED_CLASS", none);
  await reject(
    "two",
    "export class A {}\nexport class B {}",
    "MULTIPLE_EXPORTED_CLASSES",
    "Source must export exactly one class. Found 2: A, B",
  );
  assert.deepEqual(await listNames(server), [], "no row was written");

  // Other exports and helper classes are allowed next to the one class.
  const ok = await deploy(server, {
    name: "ok",
    code: "class Helper {}\nexport const VERSION = 1;\nexport function util() {}\n" + CLASS("Ok"),
  });
  assert.equal(ok.body.status, "READY");
  assert.equal(ok.body.class_name, "Ok");
});

Deno.test("deploy keeps an ERROR row with error_message for syntax errors and top-level throws", async () => {
  await using server = await startServer();
  const broken = "export class A {\n  fetch() {\n    return new Response(;\n  }\n}\n";
  const syntax = await deploy(server, { name: "broken", code: broken });
  assertError(syntax, {
    status: 400,
    code: "VALIDATION_INVALID_SCHEMA",
    reason: "SYNTAX_ERROR",
    message: 'Syntax error at line 3, column 25: Unexpected ";"',
    remediation: DEPLOY_REMEDIATION,
  });
  const row = (await call(server, "GET", "/v1/app_default/durable-objects/broken")).body;
  assert.equal(row.status, "ERROR");
  assert.equal(row.error_message, (syntax.body as unknown as ErrorBody).error.message);
  assert.equal(row.code, broken);
  assert.equal(row.last_deployed_at, null);

  const init = await deploy(server, {
    name: "init",
    code: 'throw new Error("boom at load");\nexport class A {}',
  });
  assertError(init, {
    status: 400,
    code: "VALIDATION_INVALID_SCHEMA",
    reason: "MODULE_INIT_FAILED",
    message: /boom at load/,
  });
  const list = (await call(server, "GET", "/v1/app_default/durable-objects")).body
    .durable_objects as Row[];
  assert.deepEqual(list.map((item) => [item.name, item.status]), [
    ["init", "ERROR"],
    ["broken", "ERROR"],
  ]);
  assert.match(String(list[0]?.error_message), /boom at load/);
  assert.equal((await server.fetch("/_do/init/x")).status, 404, "an ERROR class is not served");

  // Fixing the source makes the same row READY again.
  const fixed = await deploy(server, { name: "broken", code: CLASS("A"), access_mode: "public" });
  assert.equal(fixed.body.status, "READY");
  const again = (await call(server, "GET", "/v1/app_default/durable-objects/broken")).body;
  assert.equal(again.error_message, null);
  assert.equal(again.id, row.id);
  assert.equal(await (await server.fetch("/_do/broken/x")).text(), "A");
});

Deno.test("deploy allows five classes; a sixth is TOO_MANY_CLASSES and uses no slot", async () => {
  await using server = await startServer();
  for (const name of ["c-one", "c-two", "c-three", "c-four", "c-five"]) {
    assert.equal((await deploy(server, { name, code: CLASS("K") })).body.status, "READY");
  }
  const tooMany = {
    status: 400,
    code: "VALIDATION_INVALID_SCHEMA",
    reason: "TOO_MANY_CLASSES",
    message: "Too many DO classes for one app (max 5, got 6).",
  };
  assertError(await deploy(server, { name: "c-six", code: CLASS("K") }), tooMany);
  const six = (await call(server, "GET", "/v1/app_default/durable-objects/c-six")).body;
  assert.equal(six.status, "ERROR");
  assert.equal(six.error_message, tooMany.message);
  // The ERROR row does not count: a seventh is still "got 6", and redeploys at 5 work.
  assertError(await deploy(server, { name: "c-seven", code: CLASS("K") }), tooMany);
  const redeploy = await deploy(server, {
    name: "c-three",
    code: CLASS("K"),
    access_mode: "public",
  });
  assert.equal(redeploy.body.status, "READY");
  assertError(await deploy(server, { name: "c-six", code: CLASS("K") }), tooMany);

  await call(server, "DELETE", "/v1/app_default/durable-objects/c-one");
  const freed = await deploy(server, { name: "c-six", code: CLASS("K"), access_mode: "public" });
  assert.equal(freed.body.status, "READY");
  assert.equal(await (await server.fetch("/_do/c-six/x")).text(), "K");
});

Deno.test("deploy refuses an app whose bundles together exceed 10 MiB (BUNDLE_TOO_LARGE)", async () => {
  await using server = await startServer();
  // A legal comment (`/*! … */`) is kept in the bundle and is cheap for esbuild to scan.
  const large = (name: string) => `/*! ${"d".repeat(4 * 1024 * 1024)} */\n${CLASS(name)}`;
  assert.equal(
    (await deploy(server, { name: "big-one", code: large("One") })).body.status,
    "READY",
  );
  assert.equal(
    (await deploy(server, { name: "big-two", code: large("Two") })).body.status,
    "READY",
  );
  const third = await deploy(server, { name: "big-three", code: large("Three") });
  assertError(third, {
    status: 400,
    code: "VALIDATION_INVALID_SCHEMA",
    reason: "BUNDLE_TOO_LARGE",
    message: "Bundle exceeds 10485760 bytes after concatenation.",
  });
  const row = (await call(server, "GET", "/v1/app_default/durable-objects/big-three")).body;
  assert.equal(row.status, "ERROR");
  assert.equal(row.error_message, "Bundle exceeds 10485760 bytes after concatenation.");
  // Redeploying one of the first two (same size) still fits: a class is not counted twice.
  assert.equal(
    (await deploy(server, { name: "big-two", code: large("Two") })).body.status,
    "READY",
  );
});

Deno.test("env routes: set_env, list_env, delete_env and their validation", async () => {
  await using server = await startServer();
  const env = "/v1/app_default/durable-objects/env";
  assert.deepEqual(await call(server, "PUT", `${env}/ZED`, { value: "z" }), {
    status: 200,
    body: { key: "ZED", redeployed: false },
  });
  assert.deepEqual((await call(server, "PUT", `${env}/API_URL`, { value: "" })).body, {
    key: "API_URL",
    redeployed: false,
  });
  await call(server, "PUT", `${env}/_UNDER_1`, { value: "x".repeat(8192) });
  assert.deepEqual(await call(server, "GET", env), {
    status: 200,
    body: { keys: ["API_URL", "ZED", "_UNDER_1"] },
  });

  for (const key of ["BUTTERBASE_APP_ID", "butterbase_x", "Butterbase_Foo"]) {
    assertError(await call(server, "PUT", `${env}/${key}`, { value: "1" }), {
      status: 400,
      code: "VALIDATION_INVALID_SCHEMA",
      reason: "RESERVED_ENV_KEY",
      message: `Reserved key: "${key}" — keys starting with BUTTERBASE_ are reserved for ` +
        "platform use",
      remediation: "Rename the key. BUTTERBASE_* is reserved for platform-injected values.",
    });
  }
  for (const key of ["lower", "1ABC", "A-B", "A.B"]) {
    assertError(await call(server, "PUT", `${env}/${key}`, { value: "1" }), {
      status: 400,
      code: "VALIDATION_INVALID_SCHEMA",
      reason: "INVALID_ENV_KEY",
      message: `Invalid env var key '${key}'. Must match /^[A-Z_][A-Z0-9_]*$/ ` +
        "(uppercase, digits, underscore).",
      remediation: "Use uppercase identifiers for DO env keys (e.g. APP_ID, API_BASE_URL).",
    });
  }
  assertError(await call(server, "PUT", `${env}/${"K".repeat(101)}`, { value: "1" }), {
    status: 400,
    code: "VALIDATION_INVALID_SCHEMA",
    reason: "INVALID_ENV_KEY",
  });
  assertError(await call(server, "PUT", `${env}/LONG`, { value: "x".repeat(8193) }), {
    status: 400,
    code: "VALIDATION_INVALID_SCHEMA",
    reason: "ENV_VALUE_TOO_LONG",
    message: "Env value too long (max 8 KB).",
  });
  for (const body of [{}, { value: 1 }, { value: null }]) {
    assertError(await call(server, "PUT", `${env}/NUM`, body), {
      status: 400,
      code: "VALIDATION_INVALID_SCHEMA",
      reason: "INVALID_BODY",
    });
  }
  assert.deepEqual((await call(server, "GET", env)).body, { keys: ["API_URL", "ZED", "_UNDER_1"] });

  assert.deepEqual(await call(server, "DELETE", `${env}/ZED`), {
    status: 200,
    body: { deleted: true, key: "ZED", redeployed: false },
  });
  assert.deepEqual((await call(server, "DELETE", `${env}/NEVER_SET`)).body, {
    deleted: true,
    key: "NEVER_SET",
    redeployed: false,
  });
  assert.deepEqual((await call(server, "GET", env)).body, { keys: ["API_URL", "_UNDER_1"] });
});

Deno.test("env keys may not collide with a class binding, whichever comes first", async () => {
  await using server = await startServer();
  const env = "/v1/app_default/durable-objects/env";
  const collision = (key: string) => ({
    status: 400,
    code: "VALIDATION_INVALID_SCHEMA",
    reason: "ENV_BINDING_COLLISION",
    message: `DO env var key '${key}' collides with a DO namespace binding. ` +
      "Rename the env var or the conflicting class.",
  });
  await deploy(server, { name: "chat-room", code: CLASS("ChatRoom") });
  assertError(await call(server, "PUT", `${env}/CHAT_ROOM`, { value: "1" }), {
    ...collision("CHAT_ROOM"),
    remediation: "Pick an env var name that does not match a DO class binding name " +
      "(UPPER_SNAKE form of the class URL name).",
  });
  assert.deepEqual((await call(server, "GET", env)).body, { keys: [] }, "nothing was saved");

  assert.equal(
    (await call(server, "PUT", `${env}/RATE_LIMITER`, { value: "1" })).body.redeployed,
    true,
  );
  assertError(
    await deploy(server, { name: "rate-limiter", code: CLASS("RateLimiter") }),
    collision("RATE_LIMITER"),
  );
  const row = (await call(server, "GET", "/v1/app_default/durable-objects/rate-limiter")).body;
  assert.equal(row.status, "ERROR");
  assert.equal(row.error_message, collision("RATE_LIMITER").message);
  // Platform keys count as env keys too.
  assertError(
    await deploy(server, { name: "butterbase-app-id", code: CLASS("X") }),
    collision("BUTTERBASE_APP_ID"),
  );

  await call(server, "DELETE", `${env}/RATE_LIMITER`);
  const fixed = await deploy(server, { name: "rate-limiter", code: CLASS("RateLimiter") });
  assert.equal(fixed.body.status, "READY");
});

Deno.test("env values are never returned by a control route", async () => {
  await using server = await startServer();
  const secret = "s3cret-value-that-must-not-leak";
  await deploy(server, {
    name: "conformance-do",
    code: await fixture("conformance_do.ts"),
    access_mode: "public",
  });
  const put = await server.api("PUT", "/v1/app_default/durable-objects/env/SECRET", {
    value: secret,
  });
  const bodies = [await put.text()];
  for (
    const path of [
      "/v1/apps",
      "/v1/app_default/durable-objects",
      "/v1/app_default/durable-objects/conformance-do",
      "/v1/app_default/durable-objects/env",
      "/v1/app_default/durable-objects/conformance-do/usage",
    ]
  ) {
    const res = await server.api("GET", path);
    assert.equal(res.status, 200, path);
    bodies.push(await res.text());
  }
  const redeploy = await server.api("POST", "/v1/app_default/durable-objects", {
    name: "conformance-do",
    code: await fixture("conformance_do.ts"),
  });
  bodies.push(await redeploy.text());
  bodies.push(
    await (await server.api("DELETE", "/v1/app_default/durable-objects/env/SECRET")).text(),
  );
  for (const body of bodies) assert.ok(!body.includes(secret), body);
});

Deno.test("set_env and delete_env restart live instances so the new env is visible", async () => {
  await using server = await startServer();
  await server.deploy("conformance-do", await fixture("conformance_do.ts"));
  const env = "/v1/app_default/durable-objects/env";
  const read = async (path: string) =>
    await (await server.fetch(`/_do/conformance-do/i/${path}`)).json();
  await call(server, "PUT", `${env}/GREETING`, { value: "hello" });
  assert.equal((await read("env")).GREETING, "hello");
  assert.equal(await read("mem"), 1);
  assert.equal(await read("mem"), 2);
  await server.fetch("/_do/conformance-do/i/kv?k=kept&v=1", { method: "PUT" });
  assert.deepEqual(await call(server, "PUT", `${env}/GREETING`, { value: "bye" }), {
    status: 200,
    body: { key: "GREETING", redeployed: true },
  });
  assert.equal(await read("mem"), 1, "the instance was restarted");
  assert.equal((await read("env")).GREETING, "bye");
  assert.equal(await read("kv?k=kept"), 1, "storage is untouched");
  assert.deepEqual(await call(server, "DELETE", `${env}/GREETING`), {
    status: 200,
    body: { deleted: true, key: "GREETING", redeployed: true },
  });
  assert.equal(await read("mem"), 1, "restarted again");
  assert.equal("GREETING" in await read("env"), false);
  assert.equal((await read("env")).BUTTERBASE_APP_ID, "app_default");
});

Deno.test("delete purges every instance and its storage; a redeploy starts empty", async () => {
  await using server = await startServer();
  const code = await fixture("conformance_do.ts");
  await server.deploy("conformance-do", code);
  await server.deploy("counter", await fixture("counter.ts"));
  const put = (id: string) =>
    server.fetch(`/_do/conformance-do/${id}/kv?k=a&v=1`, { method: "PUT" }).then((r) => r.json());
  assert.equal(await put("one"), "ok");
  assert.equal(await put("two"), "ok");
  await (await server.fetch("/_do/counter/c", { method: "POST" })).body?.cancel();
  const classDir = join(server.dataDir, "instances", "app_default", "conformance-do");
  assert.ok(await exists(classDir));

  await call(server, "DELETE", "/v1/app_default/durable-objects/conformance-do");
  assert.equal(await exists(classDir), false, "instance files removed");
  const live = [...server.server.deps.instances.live].map((item) => item.target.record.name);
  assert.deepEqual(live, ["counter"], "only the other class keeps its instance");
  const gone = await server.fetch("/_do/conformance-do/one/kv?k=a");
  assert.equal(gone.status, 404);
  assert.equal(await gone.text(), "unknown DO");

  await server.deploy("conformance-do", code);
  const empty = await server.fetch("/_do/conformance-do/one/kv?k=a");
  assert.deepEqual(await empty.json(), { $u: 1 }, "storage starts empty");
  const inst = await (await server.fetch("/_do/conformance-do/one/inst")).json();
  assert.equal(inst.ctor, 1, "the constructor count restarted too");
  assert.deepEqual(await (await server.fetch("/_do/counter/c")).json(), { value: 1 });
});

Deno.test("redeploy serves the new code, resets memory and keeps storage", async () => {
  await using server = await startServer();
  const v1 = `import { DurableObject } from "cloudflare:workers";
export class Versioned extends DurableObject {
  mem = 0;
  async fetch() {
    const n = ((await this.ctx.storage.get("n")) ?? 0) + 1;
    await this.ctx.storage.put("n", n);
    return Response.json({ v: VERSION, n, mem: ++this.mem });
  }
}
const VERSION = 1;
`;
  await server.deploy("versioned", v1);
  const hit = async () => await (await server.fetch("/_do/versioned/x")).json();
  assert.deepEqual(await hit(), { v: 1, n: 1, mem: 1 });
  assert.deepEqual(await hit(), { v: 1, n: 2, mem: 2 });
  await server.deploy("versioned", v1.replace("VERSION = 1", "VERSION = 2"));
  assert.deepEqual(await hit(), { v: 2, n: 3, mem: 1 });
});

Deno.test("usage counts dispatched requests and the CPU time instances used this month", async () => {
  await using server = await startServer();
  const usage = async (name = "conformance-do", appId = "app_default") => {
    const reply = await call(server, "GET", `/v1/${appId}/durable-objects/${name}/usage`);
    assert.equal(reply.status, 200);
    return { do_requests: reply.body.do_requests, do_cpu_ms: reply.body.do_cpu_ms };
  };
  assert.deepEqual(await usage(), { do_requests: 0, do_cpu_ms: 0 });
  await server.deploy("conformance-do", await fixture("conformance_do.ts"));
  for (let i = 0; i < 3; i++) {
    await (await server.fetch("/_do/conformance-do/u/mem")).body?.cancel();
  }
  // Refused requests never reach an instance and are not counted.
  await (await server.fetch("/_do/unknown-class/u")).body?.cancel();
  await (await server.fetch("/_do/conformance-do")).body?.cancel();
  assert.equal((await usage()).do_requests, 3);
  const burn = await server.fetch("/_do/conformance-do/u/burn?rounds=10");
  assert.equal(await burn.json(), "ok");
  const after = await usage();
  assert.equal(after.do_requests, 4);
  assert.ok(Number(after.do_cpu_ms) >= 100, `do_cpu_ms ${after.do_cpu_ms} covers the burn`);
  // The name is ignored for these two figures (app totals), as in the original.
  assert.deepEqual(await usage("anything"), after);
  const other = (await call(server, "POST", "/v1/apps", { name: "quiet" })).body;
  assert.deepEqual(await usage("x", String(other.app_id)), { do_requests: 0, do_cpu_ms: 0 });
});
