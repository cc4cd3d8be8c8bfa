import assert from "node:assert/strict";
import { join } from "node:path";
import { fixture, getJson, startServer } from "../_helpers.ts";

/** The value of one sample line (`name{labels} value`) of a metrics text, or undefined. */
function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

Deno.test("GET /metrics needs the admin token and counts requests, latency, errors and instances", async () => {
  await using server = await startServer();
  await server.deploy("counter", await fixture("counter.ts"));
  await server.deploy("conformance-do", await fixture("conformance_do.ts"));
  const anonymous = await server.fetch("/metrics");
  assert.equal(anonymous.status, 401);
  await anonymous.body?.cancel();

  for (let i = 0; i < 2; i++) {
    assert.equal((await getJson(server, "/_do/counter/a", { method: "POST" })).status, 200);
  }
  assert.equal((await getJson(server, "/_do/nope/a")).status, 404);
  assert.equal((await getJson(server, "/_do/conformance-do/e/throw")).status, 500);

  const res = await server.api("GET", "/metrics");
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  const counter = 'app="app_default",class="counter"';
  assert.equal(sample(text, `dohost_requests_total{${counter},status="200"}`), 2);
  assert.equal(sample(text, 'dohost_requests_total{app="app_default",class="",status="404"}'), 1);
  assert.equal(sample(text, `dohost_request_duration_seconds_count{${counter}}`), 2);
  assert.equal(sample(text, `dohost_request_duration_seconds_bucket{${counter},le="+Inf"}`), 2);
  assert.ok((sample(text, `dohost_request_duration_seconds_sum{${counter}}`) ?? -1) > 0);
  assert.equal(sample(text, 'dohost_errors_total{code="HTTP_404"}'), 1);
  assert.equal(sample(text, 'dohost_errors_total{code="USER_EXCEPTION"}'), 1);
  assert.equal(sample(text, `dohost_instance_starts_total{${counter}}`), 1);
  assert.equal(sample(text, 'dohost_instances{state="live"}'), 2);
  assert.equal(sample(text, 'dohost_instances{state="hibernated"}'), 0);
  assert.equal(sample(text, "dohost_websockets"), 0);
  assert.ok((sample(text, `dohost_storage_bytes{${counter}}`) ?? 0) > 0);
  assert.match(text, /# TYPE dohost_request_duration_seconds histogram/);
});

Deno.test("--metrics-public serves /metrics without a token", async () => {
  await using server = await startServer({ flags: ["--metrics-public"] });
  const res = await server.fetch("/metrics");
  assert.equal(res.status, 200);
  assert.match(await res.text(), /dohost_uptime_seconds \d/);
});

Deno.test("POST /v1/backups copies the data dir while serving; a server starts from the copy", async () => {
  const root = await Deno.makeTempDir({ prefix: "dohost-backup-" });
  try {
    const dir = join(root, "copy");
    {
      await using server = await startServer();
      await server.deploy("counter", await fixture("counter.ts"));
      for (let i = 0; i < 3; i++) await getJson(server, "/_do/counter/kept", { method: "POST" });
      const res = await server.api("POST", "/v1/backups", { dir });
      assert.equal(res.status, 200);
      const report = await res.json();
      assert.equal(report.dir, dir);
      assert.ok(report.files >= 3, "meta.sqlite, the instance database and more");
      await getJson(server, "/_do/counter/kept", { method: "POST" }); // after the backup
      assert.deepEqual((await getJson(server, "/_do/counter/kept")).body, { value: 4 });

      const again = await server.api("POST", "/v1/backups", { dir });
      assert.equal(again.status, 409, "a non-empty target is refused");
      await again.body?.cancel();
      const inside = await server.api("POST", "/v1/backups", {
        dir: join(server.dataDir, "b"),
      });
      assert.equal(inside.status, 400);
      await inside.body?.cancel();
      const relative = await server.api("POST", "/v1/backups", { dir: "relative/dir" });
      assert.equal(relative.status, 400);
      await relative.body?.cancel();
      const key = server.server.firstStart.defaultApp?.service_key;
      const app = await server.api("POST", "/v1/backups", { dir: join(root, "x") }, key);
      assert.equal(app.status, 403, "backups need the admin token");
      await app.body?.cancel();
    }
    await using restored = await startServer({ dataDir: dir });
    assert.deepEqual((await getJson(restored, "/_do/counter/kept")).body, { value: 3 });
    const classes = await (await restored.api("GET", "/v1/app_default/durable-objects")).json();
    assert.deepEqual(classes.durable_objects.map((item: { name: string }) => item.name), [
      "counter",
    ]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
