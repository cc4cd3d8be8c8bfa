/**
 * Metering: the usage route keeps Butterbase's `do_requests`/`do_cpu_ms` for the app and adds
 * per-class and per-instance requests, thread CPU, WebSocket messages and storage bytes, for
 * the current month and in total.
 */

import assert from "node:assert/strict";
import { openMetaDb } from "../../src/meta_db.ts";
import { UsageMeter } from "../../src/usage.ts";
import { fixture, startServer } from "../_helpers.ts";

Deno.test("usage reports requests, thread CPU and storage per class and per instance", async () => {
  await using server = await startServer();
  await server.deploy("counter", await fixture("counter.ts"));
  await server.deploy("limits", await fixture("limits_do.ts"));
  for (const name of ["a", "a", "a", "b"]) {
    const res = await server.fetch(`/_do/counter/${name}`, { method: "POST" });
    assert.equal(res.status, 200);
    await res.body?.cancel();
  }
  const burn = await server.fetch("/_do/limits/burner/burn?rounds=5");
  assert.equal(burn.status, 200);
  await burn.body?.cancel();

  const res = await server.api("GET", "/v1/app_default/durable-objects/counter/usage");
  assert.equal(res.status, 200);
  const usage = await res.json();
  assert.equal(usage.do_requests, 5);
  assert.equal(typeof usage.do_cpu_ms, "number");
  assert.match(usage.period, /^\d{4}-\d{2}-01$/);
  assert.equal(usage.app.month.requests, 5);
  assert.equal(usage.app.total.requests, 5);
  assert.equal(usage.class.name, "counter");
  assert.equal(usage.class.month.requests, 4);
  assert.ok(usage.class.storage_bytes > 0);
  assert.deepEqual(usage.classes.map((item: { name: string }) => item.name), ["counter", "limits"]);
  const [first, second] = usage.instances;
  assert.equal(usage.instances.length, 2);
  assert.equal(first.name, "a");
  assert.match(first.id, /^[0-9a-f]{64}$/);
  assert.deepEqual(first.month, {
    requests: 3,
    cpu_ms: first.month.cpu_ms,
    ws_messages_in: 0,
    ws_messages_out: 0,
  });
  assert.equal(second.name, "b");
  assert.equal(second.total.requests, 1);
  assert.ok(first.storage_bytes > 0);

  // CPU is the worker thread's CPU time: 5e7 square roots (~300 ms) show up on their instance,
  // well above an instance that started and answered one trivial request.
  const limits = await (await server.api(
    "GET",
    "/v1/app_default/durable-objects/limits/usage",
  )).json();
  const burned = limits.instances[0].month.cpu_ms;
  assert.ok(
    burned - second.month.cpu_ms >= 100,
    `burner ${burned} ms, b ${second.month.cpu_ms} ms`,
  );
  assert.ok(limits.do_cpu_ms >= limits.class.month.cpu_ms);
  assert.equal(limits.instances[0].name, "burner");
});

Deno.test("UsageMeter.countMessages() adds WebSocket messages to the instance's figures", () => {
  const db = openMetaDb(":memory:");
  try {
    db.prepare(
      `INSERT INTO apps (app_id, name, subdomain, service_key_hash, service_key_prefix,
        jwt_secret, created_at) VALUES ('app_x', 'x', 'x', 'h', 'p', 's', 'now')`,
    ).run();
    const meter = new UsageMeter(db);
    meter.countRequest("app_x", "chat", "ab".repeat(32), "room");
    meter.countMessages("app_x", "chat", "ab".repeat(32), 3, 5);
    meter.countMessages("app_x", "chat", "ab".repeat(32), 1, 0);
    meter.countRequest("app_gone", "chat", "cd".repeat(32));
    const report = meter.report(
      "app_x",
      "chat",
      new Map([["chat", new Map([["ab".repeat(32), 4096]])]]),
    );
    assert.deepEqual(report.instances, [{
      id: "ab".repeat(32),
      name: "room",
      month: { requests: 1, cpu_ms: 0, ws_messages_in: 4, ws_messages_out: 5 },
      total: { requests: 1, cpu_ms: 0, ws_messages_in: 4, ws_messages_out: 5 },
      storage_bytes: 4096,
    }]);
    assert.equal(report.class.storage_bytes, 4096);
    assert.deepEqual(meter.month("app_x"), { do_requests: 1, do_cpu_ms: 0 });
  } finally {
    db.close();
  }
});
