/**
 * Coalesces the messages the host posts to one worker during a turn into one `postMessage`.
 *
 * A message between threads costs far more than its content: in Deno 2.9.6 a request/answer
 * pair over a `node:worker_threads` port took ~50 µs of CPU one at a time, and ~12–20 µs each
 * when sent four to sixteen per message (measured on 64 requests in flight). Messages posted
 * in one turn are kept and sent together on the next `setImmediate` turn, after the turn's
 * microtasks, in the order they were posted. A single message travels as itself; several
 * travel as a {@linkcode Batch}, which the worker unpacks with {@linkcode unbatch}.
 *
 * Only the host batches. A worker runs user code: an answer or a log line held back for the
 * end of its turn could wait behind the next event's CPU work, or be lost when that event spins
 * until the CPU limit ends the thread.
 */

import { setImmediate } from "node:timers";

/** Several messages of one turn, to be handled in order. */
export interface Batch<M> {
  type: "batch";
  messages: M[];
}

/** Most messages one send carries. */
const MAX_BATCH = 64;

/** The sending side of one port. */
export class Outbox<M> {
  #messages: M[] = [];
  #transfer: Transferable[] = [];
  #scheduled = false;
  readonly #send: (message: M | Batch<M>, transfer: Transferable[]) => void;

  constructor(send: (message: M | Batch<M>, transfer: Transferable[]) => void) {
    this.#send = send;
  }

  /** Queues `message` for the end of this turn. */
  post(message: M, transfer?: readonly Transferable[]): void {
    this.#messages.push(message);
    if (transfer && transfer.length > 0) this.#transfer.push(...transfer);
    if (this.#messages.length >= MAX_BATCH) this.#flush();
    else if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#onTurn);
    }
  }

  #flush(): void {
    const messages = this.#messages;
    const transfer = this.#transfer;
    if (messages.length === 0) return;
    this.#messages = [];
    this.#transfer = [];
    const [first] = messages;
    this.#send(
      messages.length === 1 && first !== undefined ? first : { type: "batch", messages },
      transfer,
    );
  }

  readonly #onTurn = (): void => {
    this.#scheduled = false;
    this.#flush();
  };
}

/** Calls `handle` for each message of `message` (a batch) or for `message` itself. */
export function unbatch<M extends { type: string }>(
  message: M | Batch<M>,
  handle: (message: M) => void,
): void {
  if (isBatch(message)) { for (const one of message.messages) handle(one); }
  else handle(message);
}

function isBatch<M extends { type: string }>(message: M | Batch<M>): message is Batch<M> {
  return message.type === "batch" && "messages" in message;
}
