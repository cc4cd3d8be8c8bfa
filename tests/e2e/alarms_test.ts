/**
 * Conformance section H (alarms) through real instance workers and the host's scheduler,
 * plus persistence: an alarm survives a restart and wakes a stopped object. Runs are started
 * with the operator endpoint (`POST …/instances/:id/alarm`) where the case is not about
 * timing, and the retry ladder is shortened with the hidden `--alarm-retry-base-ms` flag.
 */

import assert from "node:assert/strict";
import { fixture, getJson, startServer, type TestServer } from "../_helpers.ts";
import { waitFor } from "./_wait.ts";

const B = "/_do/alarm-do";
/** The retry base of the fast server: retries after 20, 40, 80, 160, 320, 640 ms. */
const FAST_BASE_MS = 20;

interface LogEntry {
  inHandler: number | null;
  retryCount: number;
  isRetry: boolean;
  scheduled: number;
  now: number;
  name: string | null;
  ctor: number;
  inst: string;
  next?: number;
  got?: number | null;
}

async function body(server: TestServer, path: string, init?: RequestInit): Promise<unknown> {
  const { status, body } = await getJson(server, path, init);
  assert.equal(status, 200, `${path}: ${JSON.stringify(body)}`);
  return body;
}

function log(server: TestServer, uid: string): Promise<LogEntry[]> {
  return body(server, `${B}/${uid}/log`) as Promise<LogEntry[]>;
}

/** A read while alarms run: a request that meets an object resetting itself fails, so retry. */
async function poll(server: TestServer, path: string): Promise<unknown> {
  const { status, body } = await getJson(server, path);
  return status === 200 ? body : { failed: status };
}

function waitForLog(server: TestServer, uid: string, count: number): Promise<LogEntry[]> {
  return waitFor(
    () => poll(server, `${B}/${uid}/log`),
    (entries) => Array.isArray(entries) && entries.length >= count,
    { what: `${count} alarm runs of "${uid}"` },
  ) as Promise<LogEntry[]>;
}

function waitForNoAlarm(server: TestServer, uid: string): Promise<unknown> {
  return waitFor(() => poll(server, `${B}/${uid}/get-alarm`), (at) => at === null, {
    what: `the alarm of "${uid}" to be gone`,
  });
}

async function setMode(server: TestServer, uid: string, mode: string): Promise<void> {
  await body(server, `${B}/${uid}/mode?m=${mode}`, { method: "PUT" });
}

async function setAlarm(server: TestServer, uid: string, ms: number): Promise<number> {
  return (await body(server, `${B}/${uid}/set-alarm?ms=${ms}`) as { t: number }).t;
}

/** The operator endpoint: runs the pending alarm now. */
async function runAlarm(
  server: TestServer,
  uid: string,
  className = "alarm-do",
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await server.api(
    "POST",
    `/v1/app_default/durable-objects/${className}/instances/${encodeURIComponent(uid)}/alarm`,
  );
  return { status: res.status, body: await res.json() };
}

type Case = [string, (server: TestServer) => Promise<void>];

/** Cases on a server with the fast retry ladder. */
const FAST: Case[] = [];

FAST.push(["H78: an alarm runs once at its time with retryCount 0, then is cleared", async (s) => {
  const { t, got } = await body(s, `${B}/h78/set-alarm?ms=50`) as { t: number; got: number };
  assert.equal(got, t);
  const [entry, ...rest] = await waitForLog(s, "h78", 1);
  assert.deepEqual(rest, []);
  assert.equal(entry?.inHandler, null);
  assert.equal(entry?.retryCount, 0);
  assert.equal(entry?.isRetry, false);
  assert.equal(entry?.scheduled, t);
  assert.ok((entry?.now ?? 0) >= t, "not before its time");
  assert.equal(await body(s, `${B}/h78/get-alarm`), null);
  assert.equal((await runAlarm(s, "h78")).status, 404);
}]);

FAST.push(["H78: setAlarm() accepts a Date and getAlarm() gives a number", async (s) => {
  const result = await body(s, `${B}/h78d/set-alarm?ms=60000&date=1`) as {
    t: number;
    got: number;
  };
  assert.equal(result.got, result.t);
  assert.equal(await body(s, `${B}/h78d/delete-alarm`), null);
}]);

FAST.push(["H80: deleteAlarm() cancels the pending alarm", async (s) => {
  await setAlarm(s, "h80", 60_000);
  assert.equal(await body(s, `${B}/h80/delete-alarm`), null);
  assert.equal(await body(s, `${B}/h80/get-alarm`), null);
  const run = await runAlarm(s, "h80");
  assert.equal(run.status, 404);
  assert.equal((run.body.error as { reason: string }).reason, "NO_ALARM");
  assert.deepEqual(await log(s, "h80"), []);
}]);

FAST.push(["H80: setAlarm() then deleteAlarm() inside the handler leaves no alarm", async (s) => {
  await setMode(s, "h80b", "reset-inner");
  await setAlarm(s, "h80b", 60_000);
  const run = await runAlarm(s, "h80b");
  assert.equal(run.status, 200);
  assert.deepEqual(run.body, { outcome: "ok", error: null, retry_count: 0, next_alarm: null });
  assert.equal((await log(s, "h80b")).length, 1);
  assert.equal(await body(s, `${B}/h80b/get-alarm`), null);
  assert.equal((await runAlarm(s, "h80b")).status, 404);
}]);

FAST.push(["H82: setAlarm() without an alarm() handler throws TypeError", async (s) => {
  assert.deepEqual(await body(s, "/_do/no-alarm/x"), {
    err: {
      name: "TypeError",
      message: "Your Durable Object class must have an alarm() handler in order to call setAlarm()",
    },
  });
}]);

FAST.push([
  "H84: a handler that always throws runs 7 times (retryCount 0…6), then stops",
  async (s) => {
    await setMode(s, "h84", "throw-always");
    const t = await setAlarm(s, "h84", 10);
    const entries = await waitForLog(s, "h84", 7);
    assert.deepEqual(entries.map((e) => e.retryCount), [0, 1, 2, 3, 4, 5, 6]);
    assert.deepEqual(entries.map((e) => e.isRetry), [false, true, true, true, true, true, true]);
    assert.ok(entries.every((e) => e.scheduled === t), "every retry reports the original time");
    for (let i = 1; i < entries.length; i++) {
      const gap = (entries[i]?.now ?? 0) - (entries[i - 1]?.now ?? 0);
      assert.ok(gap >= FAST_BASE_MS * 2 ** (i - 1), `retry ${i} came after ${gap} ms`);
    }
    await waitForNoAlarm(s, "h84");
    assert.equal((await runAlarm(s, "h84")).status, 404, "no retry is pending");
    assert.equal((await log(s, "h84")).length, 7);
  },
]);

FAST.push(["H86: getAlarm() inside the handler shows a new alarm it set", async (s) => {
  await setMode(s, "h86", "set-new");
  await setAlarm(s, "h86", 60_000);
  const run = await runAlarm(s, "h86");
  assert.equal(run.body.outcome, "ok");
  const [first] = await log(s, "h86");
  assert.equal(first?.inHandler, null);
  assert.equal(first?.got, first?.next);
  assert.equal(run.body.next_alarm, first?.next);
  const entries = await waitForLog(s, "h86", 2);
  assert.ok((entries[1]?.now ?? 0) >= (first?.next ?? Infinity), "the new alarm ran at its time");
  assert.equal(entries[1]?.retryCount, 0);
}]);

FAST.push(["A new setAlarm() in a failing handler replaces the retry", async (s) => {
  await setMode(s, "repl", "throw-after-set");
  await setAlarm(s, "repl", 60_000);
  const run = await runAlarm(s, "repl");
  assert.equal(run.body.outcome, "error");
  assert.deepEqual(run.body.error, {
    name: "Error",
    message: "fails after setting a new alarm",
  });
  const replaced = await body(s, `${B}/repl/get-alarm`) as number;
  assert.ok(replaced > Date.now() + 30_000, "the new alarm is pending, not a retry");
  assert.equal(run.body.next_alarm, replaced);
  const again = await runAlarm(s, "repl");
  assert.equal(again.body.outcome, "ok");
  assert.equal(again.body.retry_count, 0, "a fresh alarm, not a retry");
  const entries = await log(s, "repl");
  assert.deepEqual(entries.map((e) => [e.retryCount, e.scheduled === replaced]), [
    [0, false],
    [0, true],
  ]);
}]);

FAST.push(["H89a: ctx.abort(…, { retryAlarm: false }) in the handler stops retries", async (s) => {
  await setMode(s, "h89a", "abort-noretry");
  await setAlarm(s, "h89a", 60_000);
  const run = await runAlarm(s, "h89a");
  assert.equal(run.body.outcome, "error");
  assert.equal(run.body.next_alarm, null);
  assert.equal(await body(s, `${B}/h89a/get-alarm`), null);
  assert.equal((await runAlarm(s, "h89a")).status, 404);
  assert.equal((await log(s, "h89a")).length, 1);
}]);

FAST.push(["H89b: plain ctx.abort() in the handler is retried", async (s) => {
  await setMode(s, "h89b", "abort");
  await setAlarm(s, "h89b", 60_000);
  const run = await runAlarm(s, "h89b");
  assert.equal(run.body.outcome, "error");
  assert.equal(run.body.retry_count, 0);
  const entries = await waitForLog(s, "h89b", 2);
  assert.equal(entries[1]?.isRetry, true);
  assert.equal(entries[1]?.retryCount, 1);
  assert.notEqual(entries[1]?.inst, entries[0]?.inst, "the retry runs on a fresh instance");
  await waitForNoAlarm(s, "h89b");
}]);

FAST.push(["H87: an alarm wakes an evicted object, which keeps its name", async (s) => {
  const t = await setAlarm(s, "evicted one", 300);
  const evict = await s.api(
    "POST",
    `/v1/app_default/durable-objects/alarm-do/instances/${encodeURIComponent("evicted one")}/evict`,
  );
  assert.equal(evict.status, 200);
  assert.equal((await evict.json()).evicted, true);
  const [entry] = await waitForLog(s, "evicted one", 1);
  assert.equal(entry?.name, "evicted one");
  assert.equal(entry?.ctor, 2, "the constructor ran again before the handler");
  assert.equal(entry?.scheduled, t);
}]);

FAST.push(["A handler that resets its object every time also stops after 7 runs", async (s) => {
  await setMode(s, "resets", "abort-always");
  await setAlarm(s, "resets", 10);
  const entries = await waitForLog(s, "resets", 7);
  assert.deepEqual(entries.map((e) => e.retryCount), [0, 1, 2, 3, 4, 5, 6]);
  assert.equal(new Set(entries.map((e) => e.inst)).size, 7, "each run on a fresh instance");
  await waitForNoAlarm(s, "resets");
  assert.equal((await runAlarm(s, "resets")).status, 404);
  assert.equal((await log(s, "resets")).length, 7);
}]);

Deno.test("alarms: conformance H on a server with a fast retry ladder", async (t) => {
  await using server = await startServer({
    flags: ["--alarm-retry-base-ms", String(FAST_BASE_MS)],
  });
  await server.deploy("alarm-do", await fixture("alarm_do.ts"));
  await server.deploy("no-alarm", await fixture("no_alarm_do.ts"));
  for (const [name, run] of FAST) await t.step(name, () => run(server));
});

Deno.test("alarms: H83 a failed run is retried about 2 s later, the time visible meanwhile", async () => {
  await using s = await startServer();
  await s.deploy("alarm-do", await fixture("alarm_do.ts"));
  await setMode(s, "h83", "throw-first");
  const t = await setAlarm(s, "h83", 10);
  const [first] = await waitForLog(s, "h83", 1);
  assert.equal(await body(s, `${B}/h83/get-alarm`), t, "visible between the runs");
  const entries = await waitForLog(s, "h83", 2);
  const gap = (entries[1]?.now ?? 0) - (first?.now ?? 0);
  assert.ok(gap >= 2000 && gap <= 3500, `the retry came ${gap} ms later`);
  assert.equal(entries[1]?.retryCount, 1);
  assert.equal(entries[1]?.isRetry, true);
  assert.equal(entries[1]?.scheduled, t);
  await waitForNoAlarm(s, "h83");
});

Deno.test("alarms: an alarm that came due while the server was down fires after the restart", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "dohost-test-" });
  try {
    let t: number;
    {
      await using first = await startServer({ dataDir });
      await first.deploy("alarm-do", await fixture("alarm_do.ts"));
      t = await setAlarm(first, "restart", 1000);
      await first.stop();
    }
    // The case: the alarm comes due while no server runs.
    await waitFor(() => Promise.resolve(Date.now()), (now) => now > t, { what: "the alarm time" });
    await using second = await startServer({ dataDir });
    const [entry] = await waitForLog(second, "restart", 1);
    assert.equal(entry?.scheduled, t);
    assert.equal(entry?.retryCount, 0);
    assert.ok((entry?.now ?? 0) >= t);
    assert.equal(await body(second, `${B}/restart/get-alarm`), null);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("alarms: H87 an alarm wakes a stopped object, which keeps its name", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "dohost-test-" });
  try {
    {
      await using first = await startServer({ dataDir });
      await first.deploy("alarm-do", await fixture("alarm_do.ts"));
      await setAlarm(first, "wake me", 60_000);
      await first.stop();
    }
    await using second = await startServer({ dataDir });
    const run = await runAlarm(second, "wake me");
    assert.equal(run.status, 200);
    assert.equal(run.body.outcome, "ok");
    const [entry] = await log(second, "wake me");
    assert.equal(entry?.name, "wake me");
    assert.equal(entry?.ctor, 2, "the constructor ran again before the handler");
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});
