/**
 * The servers the suite measures, each started fresh as a child process on a loopback port:
 *
 * - `dohost`: this repository's `main.ts`, run with the flags of the `start` task, the bench
 *   classes deployed through the control API;
 * - `workerd`: the workerd binary from the peers' npm install, run directly from a generated
 *   config (the router worker in front of the same class files, SQLite-backed, on local disk);
 * - `miniflare`: miniflare (node + the same workerd) with the same router and classes;
 * - `deno-bare`: `Deno.serve(() => new Response("ok"))`, the physical limit of the HTTP path.
 */

import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { startTask } from "../../tests/reliability/_child_server.ts";
import { request } from "./load.ts";

/** The bench classes: URL name, exported class, env binding of the peers' router. */
export const CLASSES = [
  { name: "echo", className: "Echo", binding: "ECHO" },
  { name: "counter", className: "Counter", binding: "COUNTER" },
  { name: "kv", className: "Kv", binding: "KV" },
  { name: "sql", className: "Sql", binding: "SQL" },
  { name: "chat", className: "Chat", binding: "CHAT" },
] as const;

/** Every target name, in the default run order. */
export const TARGETS = ["dohost", "workerd", "miniflare", "deno-bare"] as const;
export type TargetName = typeof TARGETS[number];

const BENCH_DIR = dirname(dirname(fileURLToPath(import.meta.url)));
const REPO_DIR = dirname(BENCH_DIR);
const PEERS_DIR = join(BENCH_DIR, "peers");
const WORKERD_BIN = join(PEERS_DIR, "node_modules/@cloudflare/workerd-linux-64/bin/workerd");
const READY_TIMEOUT_MS = 60_000;

/** A started server. */
export interface RunningTarget {
  name: TargetName;
  port: number;
  /** The root process whose tree is measured (RSS, CPU). */
  pid: number;
  /** Extra facts for the report (flags, versions). */
  describe: string;
  stop(): Promise<void>;
}

/** Options shared by every target. */
export interface StartOptions {
  port: number;
  /** Where the server keeps its data (removed by `stop`). */
  workDir: string;
  /** Where the server's stdout/stderr go. */
  logPath: string;
  /** Extra flags for dohost (e.g. `--warm-workers 4`). */
  dohostFlags: string[];
  /** The dohost checkout to run (default: this repository), for before/after comparisons. */
  dohostDir?: string;
}

/** Starts `name` and resolves once it serves the bench classes. */
export async function startTarget(name: TargetName, options: StartOptions): Promise<RunningTarget> {
  switch (name) {
    case "dohost":
      return await startDohost(options);
    case "workerd":
      return await startWorkerd(options);
    case "miniflare":
      return await startMiniflare(options);
    case "deno-bare":
      return await startBare(options);
  }
}

async function startDohost(options: StartOptions): Promise<RunningTarget> {
  const token = `bench-${crypto.randomUUID()}`;
  const repoDir = options.dohostDir ?? REPO_DIR;
  const task = await startTask(pathToFileURL(join(repoDir, "/")));
  const args = [
    ...task.args,
    "--port",
    String(options.port),
    "--data-dir",
    join(options.workDir, "data"),
    "--log-level",
    "warn",
    ...options.dohostFlags,
  ];
  const child = await spawn(Deno.execPath(), args, {
    cwd: repoDir,
    env: { ...task.env, DOHOST_ADMIN_TOKEN: token },
    logPath: options.logPath,
  });
  try {
    await waitReady(options.port, "/healthz");
    for (const cls of CLASSES) {
      const code = await Deno.readTextFile(join(BENCH_DIR, "do", `${cls.name}.js`));
      const res = await fetch(`http://127.0.0.1:${options.port}/v1/app_default/durable-objects`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify({ name: cls.name, code, access_mode: "public" }),
      });
      const body = await res.text();
      if (res.status !== 200) throw new Error(`deploy ${cls.name}: ${res.status} ${body}`);
    }
    await waitReady(options.port, "/_do/echo/ready");
  } catch (error) {
    await child.stop();
    throw error;
  }
  return {
    name: "dohost",
    port: options.port,
    pid: child.pid,
    describe: `deno ${args.join(" ")}`,
    stop: async () => {
      await child.stop();
      await removeDir(options.workDir);
    },
  };
}

async function startWorkerd(options: StartOptions): Promise<RunningTarget> {
  await assertPeersInstalled();
  const storage = join(options.workDir, "storage");
  await Deno.mkdir(storage, { recursive: true });
  await Deno.copyFile(join(PEERS_DIR, "router.js"), join(options.workDir, "router.js"));
  for (const cls of CLASSES) {
    await Deno.copyFile(
      join(BENCH_DIR, "do", `${cls.name}.js`),
      join(options.workDir, `${cls.name}.js`),
    );
  }
  await Deno.writeTextFile(
    join(options.workDir, "config.capnp"),
    workerdConfig(options.port, storage),
  );
  const args = ["serve", "config.capnp", "--experimental"];
  const child = await spawn(WORKERD_BIN, args, {
    cwd: options.workDir,
    env: {},
    logPath: options.logPath,
  });
  try {
    await waitReady(options.port, "/_do/echo/ready");
  } catch (error) {
    await child.stop();
    throw error;
  }
  return {
    name: "workerd",
    port: options.port,
    pid: child.pid,
    describe: `workerd ${
      args.join(" ")
    } (generated config: router + 5 classes, enableSql, localDisk)`,
    stop: async () => {
      await child.stop();
      await removeDir(options.workDir);
    },
  };
}

/** A workerd config: the router worker, the 5 classes SQLite-backed on local disk. */
function workerdConfig(port: number, storage: string): string {
  const modules = [
    `(name = "router.js", esModule = embed "router.js")`,
    ...CLASSES.map((c) => `(name = "${c.name}.js", esModule = embed "${c.name}.js")`),
  ];
  const namespaces = CLASSES.map((c) =>
    `(className = "${c.className}", uniqueKey = "dohost-bench-${c.name}", enableSql = true)`
  );
  const bindings = CLASSES.map((c) =>
    `(name = "${c.binding}", durableObjectNamespace = "${c.className}")`
  );
  return [
    `using Workerd = import "/workerd/workerd.capnp";`,
    `const config :Workerd.Config = (`,
    `  services = [`,
    `    (name = "main", worker = .bench),`,
    `    (name = "storage", disk = (path = ${JSON.stringify(storage)}, writable = true)),`,
    `  ],`,
    `  sockets = [(name = "http", address = "127.0.0.1:${port}", http = (), service = "main")],`,
    `);`,
    `const bench :Workerd.Worker = (`,
    `  compatibilityDate = "2026-04-01",`,
    `  modules = [${modules.join(", ")}],`,
    `  durableObjectNamespaces = [${namespaces.join(", ")}],`,
    `  durableObjectStorage = (localDisk = "storage"),`,
    `  bindings = [${bindings.join(", ")}],`,
    `);`,
    ``,
  ].join("\n");
}

async function startMiniflare(options: StartOptions): Promise<RunningTarget> {
  await assertPeersInstalled();
  const persist = join(options.workDir, "persist");
  await Deno.mkdir(persist, { recursive: true });
  const args = [
    join(PEERS_DIR, "miniflare.mjs"),
    "--port",
    String(options.port),
    "--persist",
    persist,
    "--classes",
    join(BENCH_DIR, "do"),
  ];
  const child = await spawn("node", args, {
    cwd: PEERS_DIR,
    env: {},
    logPath: options.logPath,
  });
  try {
    await waitReady(options.port, "/_do/echo/ready");
  } catch (error) {
    await child.stop();
    throw error;
  }
  return {
    name: "miniflare",
    port: options.port,
    pid: child.pid,
    describe: `node ${args.join(" ")}`,
    stop: async () => {
      await child.stop();
      await removeDir(options.workDir);
    },
  };
}

async function startBare(options: StartOptions): Promise<RunningTarget> {
  const args = ["run", "--allow-net", join(PEERS_DIR, "bare.ts"), String(options.port)];
  const child = await spawn(Deno.execPath(), args, {
    cwd: BENCH_DIR,
    env: {},
    logPath: options.logPath,
  });
  try {
    await waitReady(options.port, "/");
  } catch (error) {
    await child.stop();
    throw error;
  }
  return {
    name: "deno-bare",
    port: options.port,
    pid: child.pid,
    describe: `deno ${args.join(" ")}`,
    stop: async () => {
      await child.stop();
      await removeDir(options.workDir);
    },
  };
}

/** Whether `npm install --prefix bench/peers` has run. */
export async function peersInstalled(): Promise<boolean> {
  try {
    await Deno.stat(WORKERD_BIN);
    await Deno.stat(join(PEERS_DIR, "node_modules/miniflare/package.json"));
    return true;
  } catch {
    return false;
  }
}

/** Installs the peers from the committed lock file (`npm ci`), unless they are there. */
export async function installPeers(log: (line: string) => void): Promise<void> {
  if (await peersInstalled()) return;
  log("installing peers: npm ci --prefix bench/peers");
  const out = await new Deno.Command("npm", {
    args: ["ci", "--prefix", PEERS_DIR, "--no-audit", "--no-fund"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(`npm ci failed:\n${new TextDecoder().decode(out.stderr)}`);
  }
  await assertPeersInstalled();
}

async function assertPeersInstalled(): Promise<void> {
  if (!await peersInstalled()) {
    throw new Error("Peers are not installed: run npm ci --prefix bench/peers");
  }
}

/** The versions of the peers, for the report. */
export async function peerVersions(): Promise<Record<string, string>> {
  const versions: Record<string, string> = {};
  const read = async (path: string) =>
    JSON.parse(await Deno.readTextFile(join(PEERS_DIR, "node_modules", path))).version;
  try {
    versions.miniflare = await read("miniflare/package.json");
    versions.workerd = await read("workerd/package.json");
    const out = await new Deno.Command(WORKERD_BIN, { args: ["--version"], stdout: "piped" })
      .output();
    versions.workerd_binary = new TextDecoder().decode(out.stdout).trim();
  } catch {
    // not installed
  }
  const node = await new Deno.Command("node", { args: ["--version"], stdout: "piped" }).output();
  versions.node = new TextDecoder().decode(node.stdout).trim();
  versions.deno = Deno.version.deno;
  versions.v8 = Deno.version.v8;
  return versions;
}

interface Child {
  pid: number;
  stop(): Promise<void>;
}

async function spawn(
  command: string,
  args: string[],
  options: { cwd: string; env: Record<string, string>; logPath: string },
): Promise<Child> {
  const log = await Deno.open(options.logPath, { write: true, create: true, append: true });
  const child = new Deno.Command(command, {
    args,
    cwd: options.cwd,
    env: options.env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const encoder = new TextEncoder();
  const writer = log.writable.getWriter();
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) await writer.write(chunk);
  };
  await writer.write(encoder.encode(`$ ${command} ${args.join(" ")}\n`));
  const pumped = Promise.allSettled([pump(child.stdout), pump(child.stderr)]);
  let stopped: Promise<void> | null = null;
  return {
    pid: child.pid,
    stop() {
      stopped ??= (async () => {
        try {
          child.kill("SIGTERM");
        } catch {
          // already gone
        }
        let timer: ReturnType<typeof setTimeout> | undefined;
        const exited = await Promise.race([
          child.status.then(() => true),
          new Promise<boolean>((resolve) => timer = setTimeout(() => resolve(false), 15_000)),
        ]);
        clearTimeout(timer);
        if (!exited) {
          try {
            child.kill("SIGKILL");
          } catch {
            // already gone
          }
          await child.status;
        }
        await pumped;
        await writer.close().catch(() => {});
      })();
      return stopped;
    },
  };
}

async function waitReady(port: number, path: string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let last = "";
  while (Date.now() < deadline) {
    try {
      const res = await request(port, "GET", path);
      if (res.status === 200) return;
      last = `${res.status} ${res.text}`;
    } catch (error) {
      last = error instanceof Error ? error.message : String(error);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`server on port ${port} not ready after ${READY_TIMEOUT_MS} ms: ${last}`);
}

async function removeDir(path: string): Promise<void> {
  await Deno.remove(path, { recursive: true }).catch(() => {});
}
