/**
 * The bundler thread (`src/bundler.ts`, `src/bundler_worker.ts`): the main thread keeps serving
 * while esbuild works, errors cross the thread boundary intact, and a crashed or stuck thread is
 * replaced. No timing assertions: "while" is shown by ordering (answers that arrive before a
 * build settles), and the timeout test only fixes the limit it runs under.
 */

import assert from "node:assert/strict";
import { BundleError, Bundler, bundleSource } from "../src/bundler.ts";
import { startServer } from "./_helpers.ts";

/** A class file of about 5 MB (60,000 small functions): seconds of esbuild work. */
function largeSource(): string {
  const lines = ['import { DurableObject } from "cloudflare:workers";'];
  for (let i = 0; i < 60_000; i++) {
    lines.push(`export function f${i}(a: number, b: number): number { return a * ${i} + b; }`);
  }
  lines.push("export class Large extends DurableObject {}");
  return lines.join("\n");
}

const SMALL = 'import { DurableObject } from "cloudflare:workers";\n' +
  "export class Small extends DurableObject {}";

Deno.test("bundler: the server answers requests while a large source is being bundled", async () => {
  await using server = await startServer();
  let built = false;
  const large = bundleSource(largeSource()).finally(() => built = true);
  // Builds run one at a time, so this deploy cannot finish before the large build.
  let deployed = false;
  const deploy = server.api("POST", "/v1/app_default/durable-objects", {
    name: "small",
    code: SMALL,
    access_mode: "public",
  }).finally(() => deployed = true);

  for (let i = 0; i < 20; i++) {
    const health = await fetch(`${server.url}/healthz`);
    assert.deepEqual(await health.json(), { ok: true });
  }
  const pending = await server.api("GET", "/v1/app_default/durable-objects/small");
  await pending.body?.cancel();
  assert.equal(pending.status, 404, "the queued deploy has not saved its class yet");
  assert.equal(built, false, "the large build finished before 20 requests were answered");
  assert.equal(deployed, false);

  assert.equal((await large).exports.length, 60_001);
  const answer = await deploy;
  assert.equal(answer.status, 200);
  assert.equal((await answer.json()).status, "READY");
});

Deno.test("bundler: syntax errors and rejected imports come back from the thread unchanged", async () => {
  const bundler = new Bundler();
  try {
    await assert.rejects(
      bundler.build("export class A {\n  x = ;\n}"),
      (error: unknown) =>
        error instanceof BundleError && error.reason === "SYNTAX_ERROR" &&
        error.message === 'Syntax error at line 2, column 7: Unexpected ";"',
    );
    await assert.rejects(
      bundler.build('import { readFileSync } from "node:fs";\nexport const read = readFileSync;'),
      (error: unknown) =>
        error instanceof BundleError && error.reason === "DISALLOWED_IMPORT" &&
        error.message.startsWith("Import 'node:fs' is not allowed."),
    );
    assert.deepEqual((await bundler.build(SMALL)).exports, ["Small"]);
  } finally {
    await bundler.close();
  }
});

Deno.test("bundler: a source that crashes esbuild fails alone; the next build gets a fresh thread", async () => {
  const bundler = new Bundler();
  try {
    await assert.rejects(
      bundler.build("{".repeat(5_000) + "}".repeat(5_000)),
      (error: unknown) =>
        error instanceof BundleError && error.reason === "SYNTAX_ERROR" &&
        /nested too deeply/.test(error.message),
    );
    assert.deepEqual((await bundler.build(SMALL)).exports, ["Small"]);
  } finally {
    await bundler.close();
  }
});

Deno.test("bundler: a build past its timeout fails and its thread is replaced", async () => {
  const bundler = new Bundler({ timeoutMs: 1_000 });
  try {
    await bundler.start();
    await assert.rejects(
      bundler.build(largeSource()),
      (error: unknown) =>
        error instanceof BundleError && error.reason === "SYNTAX_ERROR" &&
        error.message === "Cannot compile the source: bundling did not finish within 1000 ms",
    );
    // Were the stuck thread kept, this build would wait behind seconds of work and time out too.
    await bundler.start();
    assert.deepEqual((await bundler.build(SMALL)).exports, ["Small"]);
  } finally {
    await bundler.close();
  }
});
