/**
 * Listens to a `node:worker_threads` port through its web `onmessage` handler.
 *
 * In Deno 2.9.6, `port.on("message")` walks every received message property by property (each
 * index of a typed array included) looking for ports to give Node's shape: 6 % of the main
 * thread's CPU under the echo load (`--cpu-prof`). Messages between the host and an instance
 * never carry ports, so the walk is skipped. Like the first `on("message")`, setting `onmessage`
 * starts the port and keeps the thread alive while it is open.
 */

import type { MessagePort } from "node:worker_threads";

/** Calls `handle` with the data of each message `port` receives. */
export function listen<M>(port: MessagePort, handle: (message: M) => void): void {
  const web = port as unknown as { onmessage: ((event: MessageEvent<M>) => void) | null };
  web.onmessage = (event) => handle(event.data);
}
