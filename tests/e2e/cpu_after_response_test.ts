/**
 * CPU limit outside events: code an object runs after its response (a timer) is not an event
 * the host is waiting for, but once the host asks the idle-looking instance whether it may stop
 * (the idle sweep), the CPU limit applies until it answers. A loop there is stopped.
 */

import assert from "node:assert/strict";
import { startServer } from "../_helpers.ts";
import { waitFor } from "./_wait.ts";

const SPINS_LATER = `import { DurableObject } from "cloudflare:workers";
export class SpinsLater extends DurableObject {
  async fetch(request) {
    const count = ((await this.ctx.storage.get("count")) ?? 0) + 1;
    await this.ctx.storage.put("count", count);
    if (new URL(request.url).pathname.endsWith("/spin-later")) {
      setTimeout(() => { while (true) {} }, 50);
    }
    return new Response(String(count));
  }
}
`;

Deno.test("limits: a loop in a timer after the response is stopped by the CPU limit", async () => {
  await using server = await startServer({
    flags: ["--cpu-limit-ms", "500", "--idle-timeout", "1"],
  });
  await server.deploy("later", SPINS_LATER);
  const first = await server.fetch("/_do/later/one/spin-later");
  assert.equal(await first.text(), "1", "the response left before the loop started");

  const live = () => [...server.server.deps.instances.live].filter((i) => i.target.name === "one");
  assert.equal(live().length, 1);
  // Without the limit the worker would spin forever and stay live: it never answers the probe.
  await waitFor(() => Promise.resolve(live().length), (count) => count === 0, {
    what: "the spinning instance to be stopped",
    timeoutMs: 30_000,
  });

  const next = await server.fetch("/_do/later/one/ok");
  assert.equal(await next.text(), "2", "a fresh instance with its storage intact");
  assert.deepEqual(await (await server.fetch("/healthz")).json(), { ok: true });
});
