/**
 * dohost's entry point: reads the configuration, builds the server, serves it, and shuts it
 * down gracefully on SIGINT/SIGTERM (stop accepting, let in-flight requests finish for a
 * bounded time, commit every instance's storage, exit 0).
 */

import { ConfigError, loadConfig, usage } from "./src/config.ts";
import { consoleLogger, print } from "./src/log.ts";
import { createServer } from "./src/server.ts";

/** How long in-flight requests get to finish on shutdown. */
const DRAIN_MS = 10_000;

async function main(args: string[]): Promise<number> {
  let config;
  try {
    config = loadConfig(args, {
      DOHOST_ADMIN_TOKEN: Deno.env.get("DOHOST_ADMIN_TOKEN"),
    });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    print(`error: ${error.message}\n\n${usage()}`);
    return 2;
  }
  if (config === null) {
    print(usage());
    return 0;
  }
  const logger = consoleLogger({ format: config.logFormat, level: config.logLevel });
  const server = await createServer(config, logger);
  const { adminToken, defaultApp } = server.firstStart;
  if (adminToken || defaultApp) {
    print("First start: keep these secrets, they are not shown again.");
    if (adminToken) print(`  admin token:               ${adminToken}`);
    if (defaultApp) {
      print(`  app_default service key:   ${defaultApp.service_key}`);
      print(`  app_default JWT secret:    ${defaultApp.jwt_secret}`);
    }
  }
  const done = Promise.withResolvers<void>();
  const http = Deno.serve({
    port: config.port,
    hostname: config.hostname,
    onListen: ({ hostname, port }) => {
      const shown = hostname.includes(":") ? `[${hostname}]` : hostname;
      print(`dohost listening on http://${shown}:${port}`);
    },
  }, server.handler);
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    logger.log("info", "Shutting down: draining requests and committing storage");
    const drained = Promise.race([
      http.shutdown(),
      new Promise<void>((resolve) => setTimeout(resolve, DRAIN_MS)),
    ]);
    drained.then(() => server.close()).then(() => done.resolve(), done.reject);
  };
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  await done.promise;
  logger.log("info", "Stopped");
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
