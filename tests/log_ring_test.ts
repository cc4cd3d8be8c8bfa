import assert from "node:assert/strict";
import { type LogEntry, LogRing } from "../src/log_ring.ts";

function line(message: string, className = "chat"): Omit<LogEntry, "seq" | "time"> {
  return { level: "info", app: "app_default", class: className, instance: "lobby", message };
}

Deno.test("LogRing keeps the last lines of each class, oldest first", () => {
  const ring = new LogRing(3);
  for (const message of ["a", "b", "c", "d", "e"]) ring.push(line(message));
  ring.push(line("other", "counter"));
  const messages = (entries: LogEntry[]) => entries.map((entry) => entry.message);
  assert.deepEqual(messages(ring.recent("app_default", "chat")), ["c", "d", "e"]);
  assert.deepEqual(messages(ring.recent("app_default", "chat", 2)), ["d", "e"]);
  assert.deepEqual(messages(ring.recent("app_default", "chat", 0)), []);
  assert.deepEqual(messages(ring.recent("app_default", "counter")), ["other"]);
  assert.deepEqual(ring.recent("app_default", "nobody"), []);
  const seqs = ring.recent("app_default", "chat").map((entry) => entry.seq);
  assert.deepEqual(seqs, [3, 4, 5]);
});

Deno.test("LogRing.follow() hands new lines of its class to a follower until unsubscribed", async () => {
  const ring = new LogRing();
  const seen: string[] = [];
  const stop = ring.follow("app_default", "chat", (entry) => seen.push(entry.message));
  ring.push(line("one"));
  ring.push(line("elsewhere", "counter"));
  stop();
  ring.push(line("two"));
  assert.deepEqual(seen, ["one"]);
  let closed = false;
  const waiting = ring.closed.then(() => closed = true);
  ring.close();
  await waiting;
  assert.equal(closed, true);
});
