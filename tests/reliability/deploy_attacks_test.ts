import assert from "node:assert/strict";
import { fixture, startServer, type TestServer } from "../_helpers.ts";

interface DeployReply {
  status: number;
  reason: string | undefined;
  message: string;
  body: Record<string, unknown>;
}

async function deploy(server: TestServer, name: string, code: string): Promise<DeployReply> {
  const res = await server.api("POST", "/v1/app_default/durable-objects", {
    name,
    code,
    access_mode: "public",
  });
  const body = await res.json() as Record<string, unknown>;
  const error = body.error as { reason?: string; message?: string } | undefined;
  return { status: res.status, reason: error?.reason, message: error?.message ?? "", body };
}

/** A deploy that must be refused with a 4xx that says why. */
async function assertRefused(
  server: TestServer,
  label: string,
  code: string,
  reason?: RegExp,
): Promise<DeployReply> {
  const reply = await deploy(server, "attack", code);
  assert.ok(reply.status >= 400 && reply.status < 500, `${label}: ${reply.status}`);
  assert.ok(reply.message.length > 0, `${label}: the error has a message`);
  if (reason) assert.match(reply.reason ?? "", reason, `${label}: ${reply.message}`);
  return reply;
}

async function assertStillDeploys(server: TestServer, after: string): Promise<void> {
  const reply = await deploy(server, "canary", await fixture("counter.ts"));
  assert.equal(reply.status, 200, `deploys broke after ${after}: ${reply.message}`);
  const res = await server.fetch("/_do/canary/x", { method: "POST" });
  assert.equal(res.status, 200, `the data plane broke after ${after}`);
  await res.body?.cancel();
}

const NESTED: [label: string, code: string][] = [
  ["5,000 nested blocks", "{".repeat(5_000) + "}".repeat(5_000)],
  ["20,000 nested parentheses", "const x = " + "(".repeat(20_000) + "1" + ")".repeat(20_000)],
  ["5,000 chained arrows", "const f = " + "x => ".repeat(5_000) + "1;"],
];

Deno.test("deploy attacks: deeply nested source is refused and the compiler keeps working", async () => {
  await using server = await startServer();
  for (const [label, body] of NESTED) {
    const reply = await assertRefused(server, label, `export class A {}\n${body}`, /SYNTAX_ERROR/);
    assert.match(reply.message, /nested too deeply|Syntax error/, label);
    await assertStillDeploys(server, label);
  }
});

Deno.test("deploy attacks: oversized and malformed sources get a clear 4xx", async () => {
  await using server = await startServer();
  await assertRefused(server, "5 MB + 1", "x".repeat(5 * 1024 * 1024 + 1), /SOURCE_TOO_LARGE/);
  const cases: [string, string, RegExp][] = [
    ["NUL bytes", "export class A {}\0\0\0", /SYNTAX_ERROR/],
    ["lone surrogate", "export class A { x = '\uD800'; }\n\uDC00", /SYNTAX_ERROR/],
    ["unterminated template", "export class A { x = `${", /SYNTAX_ERROR/],
    ["invalid regex", "export class A { x = /(/; }", /SYNTAX_ERROR|MODULE_INIT_FAILED/],
    ["re-export of a module", 'export * from "node:fs"; export class A {}', /DISALLOWED_IMPORT/],
    ["dynamic import", 'export class A { f() { return import("node:fs"); } }', /DISALLOWED_IMPORT/],
    ["require", 'const fs = require("fs"); export class A {}', /DISALLOWED_IMPORT/],
    ["no class at all", "export const a = 1;", /NO_EXPORTED_CLASS/],
    ["JSX in a .ts file", "export class A { f() { return <div/>; } }", /SYNTAX_ERROR/],
  ];
  for (const [label, code, reason] of cases) await assertRefused(server, label, code, reason);
  const wide = "export class A {}\nconst s = " + JSON.stringify("y".repeat(2 * 1024 * 1024)) + ";";
  const big = await deploy(server, "wide", wide);
  assert.equal(big.status, 200, `a 2 MB single-line source deploys: ${big.message}`);
  await assertStillDeploys(server, "the malformed sources");
});

Deno.test("deploy attacks: classes that throw at top level or in the constructor fail clearly", async () => {
  await using server = await startServer();
  const top = await assertRefused(
    server,
    "top-level throw",
    'throw new Error("boom at top level"); export class A {}',
    /MODULE_INIT_FAILED/,
  );
  assert.match(top.message, /boom at top level/);
  await assertRefused(
    server,
    "top-level memory bomb",
    "const a: unknown[] = []; while (true) a.push(new Array(1e6).fill(1)); export class A {}",
    /MODULE_INIT_FAILED/,
  );
  const ctor = await deploy(
    server,
    "ctor-throws",
    'export class A { constructor() { throw new Error("boom in constructor"); } }',
  );
  assert.equal(ctor.status, 200, "the constructor only runs on the first request");
  for (let i = 0; i < 2; i++) {
    const res = await server.fetch("/_do/ctor-throws/x");
    await res.body?.cancel();
    assert.equal(res.status, 500);
    assert.equal(res.headers.get("x-dohost-error"), "CONSTRUCTOR_FAILED");
  }
  await assertStillDeploys(server, "the throwing classes");
});

Deno.test("deploy attacks: module code that never finishes loading is refused after the inspect timeout", async () => {
  await using server = await startServer();
  const [loop, hang] = await Promise.all([
    deploy(server, "spin", "while (true) {} export class A {}"),
    deploy(server, "hang", "await new Promise(() => {}); export class A {}"),
  ]);
  for (const reply of [loop, hang]) {
    assert.equal(reply.status, 400);
    assert.equal(reply.reason, "MODULE_INIT_FAILED");
    assert.match(reply.message, /did not finish/);
  }
  await assertStillDeploys(server, "the hanging modules");
});
