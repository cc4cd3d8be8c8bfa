/**
 * `dohost logs <class>`: what a class's objects printed with `console.*`, from the server's
 * per-class ring; `-f` keeps following new lines (server-sent events) until interrupted.
 */

import type { LogEntry } from "../log_ring.ts";
import { APP_FLAG, clientCommand, objectsPath } from "./client_command.ts";
import { COMMON_OPTIONS, UsageError } from "./io.ts";

/** `dohost logs <class> [-f]`. */
export const logsCommand = clientCommand({
  name: "logs",
  summary: "Show (and follow) what a class's objects print",
  usage: `Usage: dohost logs <class> [-f] [-n <lines>] [--app <app_id>]

Prints the class's last console.* lines (the server keeps 1000 per class in memory).`,
  options: {
    ...COMMON_OPTIONS,
    app: { type: "string" },
    follow: { type: "boolean", short: "f" },
    limit: { type: "string", short: "n" },
  } as const,
  flags: [
    ["-f, --follow", "Keep printing new lines until interrupted"],
    ["-n, --limit", "How many earlier lines to print first (default: 100)"],
    APP_FLAG,
  ],
  json: "One JSON object per line",
  async run({ values, positionals, io, client: connect, print }) {
    const [className, ...extra] = positionals;
    if (!className || extra.length) throw new UsageError("expected one class name");
    const client = connect();
    const query = new URLSearchParams();
    if (values.limit !== undefined) query.set("limit", values.limit);
    const path = objectsPath(values.app, className, "logs");
    const show = (entry: LogEntry) => io.out(values.json ? JSON.stringify(entry) : format(entry));
    if (!values.follow) {
      const body = await client.json("GET", `${path}?${query}`) as { logs: LogEntry[] };
      return print(body, () => body.logs.forEach(show));
    }
    query.set("follow", "1");
    const signal = io.signal;
    try {
      const response = await client.send("GET", `${path}?${query}`, {
        headers: { accept: "text/event-stream" },
        signal,
      });
      for await (const data of serverSentData(response, signal)) show(JSON.parse(data));
    } catch (error) {
      if (!signal.aborted) throw error;
    }
    return 0;
  },
});

/** `2025-01-01T00:00:00.000Z INFO  lobby: message`. */
function format(entry: LogEntry): string {
  return `${entry.time} ${entry.level.toUpperCase().padEnd(5)} ${entry.instance}: ${entry.message}`;
}

/** The `data:` payloads of a server-sent event stream. */
async function* serverSentData(response: Response, signal: AbortSignal): AsyncGenerator<string> {
  if (!response.body) return;
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  const cancel = () => reader.cancel().catch(() => {});
  signal.addEventListener("abort", cancel, { once: true });
  let buffer = "";
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let end: number;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const event = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = event.split("\n").filter((line) => line.startsWith("data:"))
          .map((line) => line.slice(5).replace(/^ /, "")).join("\n");
        if (data) yield data;
      }
    }
  } finally {
    signal.removeEventListener("abort", cancel);
    cancel();
  }
}
