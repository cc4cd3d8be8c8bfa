/**
 * Conformance sections F (`blockConcurrencyWhile`) and K (errors and abort), plus
 * `ctx.waitUntil()` and constructor failures, through real instance workers. The 30 s
 * `blockConcurrencyWhile` timeout is shortened with the hidden `--block-timeout-ms` flag.
 */

import assert from "node:assert/strict";
import { fixture, getJson, startServer, type TestServer } from "../_helpers.ts";
import { waitFor } from "./_wait.ts";

const B = "/_do/lifecycle";

async function body(server: TestServer, path: string): Promise<unknown> {
  const { status, body } = await getJson(server, path);
  assert.equal(status, 200, `${path}: ${JSON.stringify(body)}`);
  return body;
}

async function failure(server: TestServer, path: string): Promise<[number, string, string]> {
  const res = await server.fetch(path);
  return [res.status, await res.text(), res.headers.get("x-dohost-error") ?? ""];
}

function inst(server: TestServer, uid: string): Promise<{ inst: string; ctor: number }> {
  return body(server, `${B}/${uid}/inst`) as Promise<{ inst: string; ctor: number }>;
}

const CASES: [string, (server: TestServer) => Promise<void>][] = [];

CASES.push([
  "F57: blockConcurrencyWhile() in the constructor gates the first requests",
  async (s) => {
    const results = await Promise.all(Array.from({ length: 5 }, () => body(s, `${B}/slow1/ready`)));
    assert.deepEqual(results, [true, true, true, true, true]);
  },
]);

CASES.push(["F59: blockConcurrencyWhile() passes the callback's value through", async (s) => {
  assert.deepEqual(await body(s, `${B}/f59/bcw`), [42, "sync"]);
}]);

CASES.push(["blockConcurrencyWhile() nests 64 deep; the 65th level throws", async (s) => {
  assert.deepEqual(await body(s, `${B}/nest/bcw-nested?n=64`), { reached: 64, error: "" });
  assert.deepEqual(await body(s, `${B}/nest/bcw-nested?n=65`), {
    reached: 64,
    error: "blockConcurrencyWhile() calls are nested too deeply.",
  });
}]);

CASES.push(["F61: a constructor whose blockConcurrencyWhile() fails is retried", async (s) => {
  await body(s, `${B}/f61/flag?k=failNext&v=true`);
  assert.equal((await failure(s, `${B}/f61/break`))[0], 500, "reset to construct again");
  const [status, , code] = await failure(s, `${B}/f61/inst`);
  assert.equal(status, 500);
  assert.equal(code, "OBJECT_RESET");
  const after = await inst(s, "f61");
  assert.equal(after.ctor, 3, "constructed once more after the failing construction");
}]);

CASES.push(["A throwing constructor fails the request and runs again on the next", async (s) => {
  await body(s, `${B}/ctor/flag?k=ctorThrows&v=1`);
  await failure(s, `${B}/ctor/break`);
  const [status, text, code] = await failure(s, `${B}/ctor/inst`);
  assert.deepEqual([status, text, code], [500, "Internal Server Error", "CONSTRUCTOR_FAILED"]);
  assert.equal((await inst(s, "ctor")).ctor, 3);
}]);

CASES.push([
  "F63: a blockConcurrencyWhile() past its timeout resets the object (503)",
  async (s) => {
    const before = await inst(s, "f63");
    const [status, text, code] = await failure(s, `${B}/f63/bcw-hang`);
    assert.deepEqual([status, text, code], [503, "Service Unavailable", "OBJECT_RESET"]);
    assert.notEqual((await inst(s, "f63")).inst, before.inst);
  },
]);

CASES.push(["A failing blockConcurrencyWhile() in a handler resets the object", async (s) => {
  assert.equal(await body(s, `${B}/bcwt/mem`), 1);
  const before = await inst(s, "bcwt");
  const [status, , code] = await failure(s, `${B}/bcwt/bcw-throw`);
  assert.deepEqual([status, code], [500, "OBJECT_RESET"]);
  assert.notEqual((await inst(s, "bcwt")).inst, before.inst);
  assert.equal(await body(s, `${B}/bcwt/mem`), 1, "in-memory state is gone");
}]);

CASES.push(["K114: an uncaught exception is HTTP 500 Internal Server Error", async (s) => {
  const before = await inst(s, "k114");
  assert.deepEqual(await failure(s, `${B}/k114/throw`), [
    500,
    "Internal Server Error",
    "USER_EXCEPTION",
  ]);
  assert.equal((await inst(s, "k114")).inst, before.inst, "a throw does not reset the object");
}]);

CASES.push(["ctx.abort() cannot be caught and resets the object", async (s) => {
  const before = await inst(s, "abort");
  const [status, , code] = await failure(s, `${B}/abort/abort-caught`);
  assert.deepEqual([status, code], [500, "OBJECT_RESET"]);
  assert.notEqual((await inst(s, "abort")).inst, before.inst);
}]);

CASES.push(["ctx.waitUntil() does not delay the response and its work completes", async (s) => {
  assert.equal(await body(s, `${B}/wu/wu`), null);
  await waitFor(() => body(s, `${B}/wu/kv?k=wu`), (value) => value === "done", {
    what: "the waitUntil() promise to write",
  });
}]);

Deno.test("lifecycle: conformance F and K through real instance workers", async (t) => {
  await using server = await startServer({ flags: ["--block-timeout-ms", "1000"] });
  await server.deploy("lifecycle", await fixture("lifecycle_do.ts"));
  for (const [name, run] of CASES) await t.step(name, () => run(server));
});
