import assert from "node:assert/strict";
import { setImmediate } from "node:timers";
import { type Batch, Outbox, unbatch } from "../../workers/outbox.ts";

type Message = { type: "one"; n: number };
type Sent = { message: Message | Batch<Message>; transfer: Transferable[] };

function turn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function outbox(): { box: Outbox<Message>; sent: Sent[] } {
  const sent: Sent[] = [];
  const box = new Outbox<Message>((message, transfer) => sent.push({ message, transfer }));
  return { box, sent };
}

Deno.test("Outbox sends the messages of one turn as one batch, in order, after the turn", async () => {
  const { box, sent } = outbox();
  const a = new ArrayBuffer(8);
  const b = new ArrayBuffer(8);
  box.post({ type: "one", n: 1 }, [a]);
  await Promise.resolve();
  box.post({ type: "one", n: 2 });
  box.post({ type: "one", n: 3 }, [b]);
  assert.equal(sent.length, 0, "nothing leaves during the turn");
  await turn();
  assert.deepEqual(sent, [{
    message: {
      type: "batch",
      messages: [{ type: "one", n: 1 }, { type: "one", n: 2 }, { type: "one", n: 3 }],
    },
    transfer: [a, b],
  }]);
  box.post({ type: "one", n: 4 });
  await turn();
  assert.deepEqual(sent[1], { message: { type: "one", n: 4 }, transfer: [] }, "one goes alone");
});

Deno.test("Outbox sends a full batch at once, the rest after the turn", async () => {
  const { box, sent } = outbox();
  for (let n = 0; n < 65; n++) box.post({ type: "one", n });
  assert.equal(sent.length, 1);
  const batch = sent[0]?.message;
  assert.ok(batch?.type === "batch" && batch.messages.length === 64);
  await turn();
  assert.deepEqual(sent[1], { message: { type: "one", n: 64 }, transfer: [] });
  await turn();
  assert.equal(sent.length, 2, "nothing more");
});

Deno.test("unbatch() hands over each message of a batch, or the message itself", () => {
  const seen: number[] = [];
  unbatch<Message>(
    { type: "batch", messages: [{ type: "one", n: 1 }, { type: "one", n: 2 }] },
    (m) => seen.push(m.n),
  );
  unbatch<Message>({ type: "one", n: 3 }, (m) => seen.push(m.n));
  assert.deepEqual(seen, [1, 2, 3]);
});
