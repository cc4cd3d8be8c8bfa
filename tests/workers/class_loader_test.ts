/**
 * Class bundles: the bundler stores a class as a classic script that `workers/class_loader.ts`
 * compiles in place (strict, like the module it came from); a module that needs module
 * semantics (top-level await) stays an ES module and is imported.
 */

import assert from "node:assert/strict";
import { bundleSource } from "../../src/bundler.ts";
import { loadBundle, SCRIPT_MARK } from "../../workers/class_loader.ts";
import { DurableObject } from "../../workers/runtime.ts";

// What the instance worker exposes to the `cloudflare:workers` shim before loading a bundle.
Reflect.set(globalThis, "__CF", { DurableObject, env: { GREETING: "hi" } });

Deno.test("class loader: a bundled class is a script whose exports load synchronously", async () => {
  const bundle = await bundleSource(`
    import { DurableObject, env } from "cloudflare:workers";
    export const greeting = env.GREETING;
    export class Counter extends DurableObject {
      fetch() { return new Response("ok"); }
    }
    export function sloppy() {
      // @ts-ignore: assigning an undeclared name, which strict code refuses
      undeclaredName = 1;
    }
  `);
  assert.ok(bundle.code.startsWith(SCRIPT_MARK), "stored as a script");
  assert.deepEqual([...bundle.exports].sort(), ["Counter", "greeting", "sloppy"]);
  const exports = await loadBundle(bundle.code);
  assert.deepEqual(Object.keys(exports).sort(), ["Counter", "greeting", "sloppy"]);
  assert.equal(exports.greeting, "hi");
  const Counter = exports.Counter as new (ctx: unknown, env: unknown) => DurableObject;
  assert.ok(new Counter({}, {}) instanceof DurableObject, "the base class has one identity");
  assert.throws(() => (exports.sloppy as () => void)(), ReferenceError, "strict mode is kept");
});

Deno.test("class loader: a throw at a script's top level rejects the load", async () => {
  const bundle = await bundleSource(`
    export class Broken {}
    throw new Error("top-level failure");
  `);
  assert.ok(bundle.code.startsWith(SCRIPT_MARK));
  const loading = loadBundle(bundle.code);
  assert.ok(loading instanceof Promise);
  await assert.rejects(loading, /top-level failure/);
});

Deno.test("class loader: a module with top-level await stays a module and is imported", async () => {
  const bundle = await bundleSource(`
    import { DurableObject } from "cloudflare:workers";
    const ready = await Promise.resolve("awaited");
    export class Waiter extends DurableObject {
      static ready = ready;
    }
  `);
  assert.ok(!bundle.code.startsWith(SCRIPT_MARK), "kept as an ES module");
  const exports = await loadBundle(bundle.code);
  assert.equal((exports.Waiter as { ready: string }).ready, "awaited");
});
