/**
 * The chat load: N WebSocket clients in one room. Each client sends M messages, one at a time
 * (it sends its next message when its own previous one comes back), and every client must
 * receive every message exactly once, in each sender's order. Bounded by a timeout.
 */

import { assertLoopback } from "./http_client.ts";
import { percentile } from "./stats.ts";

/** Options for {@linkcode runChat}. */
export interface ChatOptions {
  url: string;
  clients: number;
  messagesPerClient: number;
  timeoutMs: number;
}

/** What a chat run measured. */
export interface ChatResult {
  connect_ms: number;
  delivered: number;
  expected: number;
  delivered_per_s: number;
  p50_ms: number;
  p99_ms: number;
  lost: number;
  duplicates: number;
  out_of_order: number;
  correct: boolean;
}

/** Runs one chat phase; rejects if the sockets cannot connect. */
export async function runChat(options: ChatOptions): Promise<ChatResult> {
  assertLoopback(new URL(options.url).hostname);
  const { clients, messagesPerClient } = options;
  const expected = clients * clients * messagesPerClient;
  const latencies: number[] = [];
  // lastSeq[receiver * clients + sender]: the last sequence number seen.
  const lastSeq = new Int32Array(clients * clients).fill(-1);
  let delivered = 0;
  let duplicates = 0;
  let outOfOrder = 0;
  let firstSendAt = 0;
  let lastReceiveAt = 0;
  const done = Promise.withResolvers<void>();

  const connectStart = performance.now();
  const sockets = await Promise.all(
    Array.from({ length: clients }, () =>
      new Promise<WebSocket>((resolve, reject) => {
        const socket = new WebSocket(options.url);
        socket.onopen = () => resolve(socket);
        socket.onerror = () => reject(new Error(`WebSocket to ${options.url} failed`));
      })),
  ).catch((error) => {
    done.resolve();
    throw error;
  });
  const connectMs = performance.now() - connectStart;

  const send = (index: number, seq: number) => {
    sockets[index]?.send(`${index}:${seq}:${performance.now()}`);
  };
  sockets.forEach((socket, receiver) => {
    socket.onerror = null;
    socket.onmessage = (event: MessageEvent) => {
      const now = performance.now();
      const [sender = -1, seq = -1, sentAt = 0] = String(event.data).split(":").map(Number);
      const slot = receiver * clients + sender;
      const previous = lastSeq[slot] ?? -1;
      if (seq <= previous) {
        duplicates++;
        return;
      }
      if (seq !== previous + 1) outOfOrder++;
      lastSeq[slot] = seq;
      delivered++;
      lastReceiveAt = now;
      latencies.push(now - sentAt);
      if (sender === receiver && seq + 1 < messagesPerClient) send(receiver, seq + 1);
      if (delivered === expected) done.resolve();
    };
  });
  firstSendAt = performance.now();
  for (let i = 0; i < clients; i++) send(i, 0);
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    done.promise,
    new Promise<void>((resolve) => timer = setTimeout(resolve, options.timeoutMs)),
  ]);
  clearTimeout(timer);
  await Promise.all(sockets.map((socket) =>
    new Promise<void>((resolve) => {
      if (socket.readyState === WebSocket.CLOSED) return resolve();
      const fallback = setTimeout(resolve, 2_000);
      socket.onclose = () => {
        clearTimeout(fallback);
        resolve();
      };
      socket.close(1000, "done");
    })
  ));
  latencies.sort((a, b) => a - b);
  const seconds = Math.max(1e-6, (lastReceiveAt - firstSendAt) / 1000);
  const lost = expected - delivered;
  return {
    connect_ms: connectMs,
    delivered,
    expected,
    delivered_per_s: delivered / seconds,
    p50_ms: percentile(latencies, 0.5),
    p99_ms: percentile(latencies, 0.99),
    lost,
    duplicates,
    out_of_order: outOfOrder,
    correct: lost === 0 && duplicates === 0 && outOfOrder === 0,
  };
}
