/**
 * `dohost dev <dir>`: a local server for writing classes. It starts on a temporary data dir
 * (or `--data-dir`), deploys every class file of `<dir>` into `app_default` as `public`, then
 * watches the directory and redeploys a file each time it changes, printing each result, or
 * the error with file, line and column. Object `console.*` output is printed with the
 * instance's name. Interrupt (Ctrl-C) to stop; a temporary data dir is removed.
 */

import { join } from "node:path";
import { ConfigError, loadConfig } from "../config.ts";
import type { LogFields, Logger } from "../log.ts";
import { createServer } from "../server.ts";
import type { LogLevel } from "../../workers/protocol.ts";
import { ApiClient } from "./client.ts";
import { deployFile } from "./deploy.ts";
import { type CliIo, type Command, UsageError } from "./io.ts";

/** A file change is deployed once no further change to it came for this long. */
const SETTLE_MS = 100;
const RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

/** `dohost dev <dir> [serve flags]`. */
export const devCommand: Command = {
  name: "dev",
  summary: "Serve a directory of classes, redeploying each file when it changes",
  help: `Usage: dohost dev <dir> [serve flags]

Starts a server (on a temporary data dir unless --data-dir is given), deploys every .ts/.js
file in <dir> to app_default as a public class named after the file (chat_room.ts →
chat-room), and redeploys a file each time it changes. Deploy errors are printed as
file:line:column. Objects' console output is printed with the instance name. Ctrl-C stops.
Any flag of \`dohost serve\` is accepted (e.g. --port 0 for a free port).`,
  run: dev,
};

async function dev(args: string[], io: CliIo): Promise<number> {
  if (args.includes("--help")) {
    io.out(devCommand.help);
    return 0;
  }
  const [dir, ...flags] = args;
  if (!dir || dir.startsWith("-")) throw new UsageError("expected a directory first");
  if (!(await Deno.stat(dir).catch(() => null))?.isDirectory) {
    throw new UsageError(`"${dir}" is not a directory`);
  }
  const temporary = flags.some((flag) => flag === "--data-dir" || flag.startsWith("--data-dir="))
    ? null
    : await Deno.makeTempDir({ prefix: "dohost-dev-" });
  try {
    let config;
    try {
      config = loadConfig(temporary ? [...flags, "--data-dir", temporary] : flags, io.env);
    } catch (error) {
      if (error instanceof ConfigError) throw new UsageError(error.message);
      throw error;
    }
    if (!config) throw new UsageError("--help comes alone");
    const server = await createServer(config, devLogger(io, config.logLevel));
    const listening = Promise.withResolvers<string>();
    const http = Deno.serve({
      port: config.port,
      hostname: config.hostname,
      onListen: ({ hostname, port }) => {
        listening.resolve(`http://${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}`);
      },
    }, server.handler);
    const url = await listening.promise;
    io.out(`dohost dev server on ${url} (data: ${config.dataDir})`);
    io.out(`  admin token: ${server.adminToken}`);
    const client = new ApiClient(
      url,
      server.adminToken,
      (request) => Promise.resolve(server.handler(request)),
    );
    try {
      await watchAndDeploy(dir, client, io);
    } finally {
      server.endStreams();
      await http.shutdown();
      await server.close();
    }
    return 0;
  } finally {
    if (temporary) await Deno.remove(temporary, { recursive: true });
  }
}

/** Deploys every class file, then redeploys changed ones until the signal fires. */
async function watchAndDeploy(dir: string, client: ApiClient, io: CliIo): Promise<void> {
  const signal = io.signal;
  const watcher = Deno.watchFs(dir, { recursive: false });
  const stop = () => watcher.close();
  signal.addEventListener("abort", stop, { once: true });
  let queue = Promise.resolve();
  const deploy = (file: string) => {
    queue = queue.then(async () => {
      if (signal.aborted) return;
      const outcome = await deployFile(client, file, { app: "app_default", accessMode: "public" })
        .catch((error) => ({ ok: false, line: `${file}: error: ${String(error)}` }));
      if (outcome.ok) io.out(outcome.line);
      else io.err(outcome.line);
    });
    return queue;
  };
  try {
    const files: string[] = [];
    for await (const entry of Deno.readDir(dir)) {
      if (entry.isFile && isClassFile(entry.name)) files.push(join(dir, entry.name));
    }
    for (const file of files.sort()) await deploy(file);
    io.out(`watching ${dir} for changes (Ctrl-C to stop)`);
    const timers = new Map<string, ReturnType<typeof setTimeout>>();
    try {
      for await (const event of watcher) {
        if (event.kind !== "create" && event.kind !== "modify") continue;
        for (const path of event.paths) {
          if (!isClassFile(path)) continue;
          clearTimeout(timers.get(path));
          timers.set(
            path,
            setTimeout(() => {
              timers.delete(path);
              deploy(path);
            }, SETTLE_MS),
          );
        }
      }
    } finally {
      for (const timer of timers.values()) clearTimeout(timer);
    }
    await queue;
  } finally {
    signal.removeEventListener("abort", stop);
    stop();
  }
}

function isClassFile(path: string): boolean {
  return /\.(ts|js|mts|mjs)$/.test(path) && !/(_test|\.test|\.d)\.[mc]?[tj]s$/.test(path) &&
    !path.split(/[/\\]/).pop()?.startsWith(".");
}

/** Object output as `[class/instance] message`; server messages at warn and above. */
function devLogger(io: CliIo, level: LogLevel): Logger {
  return {
    log(messageLevel: LogLevel, message: string, fields: LogFields = {}) {
      if (RANK[messageLevel] < RANK[level]) return;
      if (fields.source === "object") {
        io.err(`[${fields.class}/${fields.instance}] ${message}`);
      } else if (RANK[messageLevel] >= RANK.warn) {
        io.err(`${messageLevel}: ${message}`);
      }
    },
  };
}
