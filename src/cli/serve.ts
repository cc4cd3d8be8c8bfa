/**
 * `dohost serve` (the default command, and all of `deno task start`): reads the configuration,
 * builds the server, serves it, and shuts it down gracefully when the signal fires (SIGINT or
 * SIGTERM): stop accepting, let in-flight requests finish for a bounded time, commit every
 * instance's storage, exit 0.
 */

import { ConfigError, loadConfig, usage } from "../config.ts";
import { consoleLogger } from "../log.ts";
import { createServer } from "../server.ts";
import type { CliIo, Command } from "./io.ts";

/** How long in-flight requests get to finish on shutdown. */
const DRAIN_MS = 10_000;

/** `dohost serve [flags]`. */
export const serveCommand: Command = {
  name: "serve",
  summary: "Run the server (the default command)",
  get help(): string {
    return usage();
  },
  run: serve,
};

async function serve(args: string[], io: CliIo): Promise<number> {
  let config;
  try {
    config = loadConfig(args, io.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    io.err(`error: ${error.message}\n\n${usage()}`);
    return 2;
  }
  if (config === null) {
    io.out(usage());
    return 0;
  }
  const logger = consoleLogger({ format: config.logFormat, level: config.logLevel });
  const server = await createServer(config, logger);
  const { adminToken, defaultApp } = server.firstStart;
  if (adminToken || defaultApp) {
    io.out("First start: keep these secrets, they are not shown again.");
    if (adminToken) io.out(`  admin token:               ${adminToken}`);
    if (defaultApp) {
      io.out(`  app_default service key:   ${defaultApp.service_key}`);
      io.out(`  app_default JWT secret:    ${defaultApp.jwt_secret}`);
    }
  }
  const http = Deno.serve({
    port: config.port,
    hostname: config.hostname,
    onListen: ({ hostname, port }) => {
      const shown = hostname.includes(":") ? `[${hostname}]` : hostname;
      io.out(`dohost listening on http://${shown}:${port}`);
    },
  }, server.handler);
  const signal = io.signal;
  if (!signal.aborted) {
    await new Promise((resolve) => signal.addEventListener("abort", resolve, { once: true }));
  }
  logger.log("info", "Shutting down: draining requests and committing storage");
  server.endStreams();
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    http.shutdown(),
    new Promise<void>((resolve) => timer = setTimeout(resolve, DRAIN_MS)),
  ]);
  clearTimeout(timer);
  await server.close();
  logger.log("info", "Stopped");
  return 0;
}
