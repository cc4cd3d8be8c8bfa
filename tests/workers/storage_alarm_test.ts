import assert from "node:assert/strict";
import { openStorage } from "./_storage_fixture.ts";

Deno.test("storage.setAlarm() stores a number or a Date and tells the host", async () => {
  await using f = openStorage();
  assert.equal(await f.storage.getAlarm(), null);
  const t = Date.now() + 60_000;
  assert.equal(await f.storage.setAlarm(t), undefined);
  assert.equal(await f.storage.getAlarm(), t);
  await f.storage.setAlarm(new Date(t + 1));
  assert.equal(await f.storage.getAlarm(), t + 1);
  assert.deepEqual(f.alarmEvents, [t, t + 1]);
  assert.equal(f.db.dirty, true);
});

Deno.test("storage.setAlarm() rejects times <= 0 and clamps past times to now", async () => {
  await using f = openStorage();
  for (const time of [0, -5, Number.NaN, new Date(0)]) {
    assert.throws(() => f.storage.setAlarm(time), {
      name: "TypeError",
      message: "setAlarm() cannot be called with an alarm time <= 0",
    });
  }
  const before = Date.now();
  await f.storage.setAlarm(1);
  const at = await f.storage.getAlarm();
  assert.ok(at !== null && at >= before && at <= Date.now());
});

Deno.test("storage.setAlarm() requires an alarm() handler", async () => {
  await using f = openStorage({ hasAlarmHandler: false });
  assert.throws(() => f.storage.setAlarm(Date.now() + 1000), {
    name: "TypeError",
    message: "Your Durable Object class must have an alarm() handler in order to call setAlarm()",
  });
  assert.equal(await f.storage.getAlarm(), null);
  assert.deepEqual(f.alarmEvents, []);
});

Deno.test("storage.deleteAlarm() deletes the alarm and is a no-op when none is set", async () => {
  await using f = openStorage();
  await f.storage.deleteAlarm();
  assert.deepEqual(f.alarmEvents, []);
  const t = Date.now() + 500;
  await f.storage.setAlarm(t);
  await f.storage.deleteAlarm();
  assert.equal(await f.storage.getAlarm(), null);
  assert.deepEqual(f.alarmEvents, [t, null]);
});

Deno.test("storage alarm run: getAlarm() is null during the handler and cleared on success", async () => {
  await using f = openStorage();
  const t = Date.now() + 10;
  await f.storage.setAlarm(t);
  assert.equal(f.storage.beginAlarmRun(), t);
  assert.equal(await f.storage.getAlarm(), null);
  assert.equal(f.storage.endAlarmRun(t, true), null);
  assert.equal(await f.storage.getAlarm(), null);
  assert.equal(f.storage.beginAlarmRun(), null);
});

Deno.test("storage alarm run: a failure keeps the scheduled time visible for the retry", async () => {
  await using f = openStorage();
  const t = Date.now() + 10;
  await f.storage.setAlarm(t);
  f.storage.beginAlarmRun();
  assert.equal(f.storage.endAlarmRun(t, false), t);
  assert.equal(await f.storage.getAlarm(), t);
  assert.equal(f.storage.beginAlarmRun(), t);
  assert.equal(f.storage.endAlarmRun(t, true), null);
  assert.deepEqual(f.alarmEvents, [t]);
});

Deno.test("storage alarm run: an alarm set by the handler replaces the retry", async () => {
  await using f = openStorage();
  const t = Date.now() + 10;
  await f.storage.setAlarm(t);
  f.storage.beginAlarmRun();
  const t2 = Date.now() + 500;
  await f.storage.setAlarm(t2);
  assert.equal(await f.storage.getAlarm(), t2);
  assert.equal(f.storage.endAlarmRun(t, false), t2);
  assert.equal(await f.storage.getAlarm(), t2);
  f.storage.beginAlarmRun();
  await f.storage.setAlarm(t2 + 1);
  assert.equal(f.storage.endAlarmRun(t2, true), t2 + 1);
});

Deno.test("storage alarm run: deleteAlarm() in the handler stops the retry", async () => {
  await using f = openStorage();
  const t = Date.now() + 10;
  await f.storage.setAlarm(t);
  f.storage.beginAlarmRun();
  await f.storage.setAlarm(Date.now() + 50);
  await f.storage.deleteAlarm();
  assert.equal(f.storage.endAlarmRun(t, false), null);
  assert.equal(await f.storage.getAlarm(), null);
});

Deno.test("storage alarm run: a process that died mid-run leaves the alarm due", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/instance.sqlite`;
    const t = Date.now() + 60_000;
    {
      await using f = openStorage({ path });
      await f.storage.setAlarm(t);
      assert.equal(f.storage.beginAlarmRun(), t);
      await f.storage.sync();
    }
    await using f = openStorage({ path });
    assert.equal(await f.storage.getAlarm(), t);
    assert.equal(f.storage.beginAlarmRun(), t);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
