/**
 * The server as a child process, started exactly like `deno task start` (the flags are read
 * from the `start` task in deno.json) plus `--port 0 --data-dir <dir>`. Crash tests need a
 * real process: SIGKILL has to take the main thread, every instance worker and every open
 * SQLite handle down at once, with nothing flushed on the way out.
 */

const ROOT = new URL("../../", import.meta.url);
const ADMIN = "reliability-admin-token";
const LISTENING = /listening on (http:\/\/\S+)/;
const START_TIMEOUT_MS = 60_000;

/** A server process started for a test. */
export interface ChildServer extends AsyncDisposable {
  url: string;
  pid: number;
  dataDir: string;
  adminToken: string;
  /** A control-API call with the admin token. */
  api(method: string, path: string, body?: unknown): Promise<Response>;
  /** Deploys `code` as `name` (public access) into app_default; throws unless READY. */
  deploy(name: string, code: string): Promise<void>;
  /** `fetch` relative to the server's URL, aborted after `timeoutMs` (default 30 s). */
  fetch(path: string, init?: RequestInit & { timeoutMs?: number }): Promise<Response>;
  /** Everything the process wrote to stderr (its log) so far. */
  logs(): string;
  /** Resolves once a log line matches `pattern`; rejects after `timeoutMs`. */
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Sends `signal` and waits for the process to exit. */
  kill(signal?: Deno.Signal): Promise<Deno.CommandStatus>;
  /** Settles when the process exits. */
  status: Promise<Deno.CommandStatus>;
}

/** Options for {@linkcode spawnServer}. */
export interface SpawnOptions {
  dataDir: string;
  /** Extra server flags, e.g. `["--cpu-limit-ms", "200"]`. */
  flags?: string[];
  /** Extra environment variables for the process (e.g. allocator tuning). */
  env?: Record<string, string>;
}

/** The `start` task of a checkout's deno.json, split for `Deno.Command`. */
export interface StartTask {
  /** The task as written. */
  line: string;
  /** Its environment assignments (`NAME=value` before `deno`). */
  env: Record<string, string>;
  /** Its `deno` arguments, with `main.ts` made absolute. */
  args: string[];
}

/** Reads the `start` task of the checkout at `root` (this one by default). */
export async function startTask(root: URL = ROOT): Promise<StartTask> {
  const config = JSON.parse(await Deno.readTextFile(new URL("deno.json", root)));
  const line = String(config.tasks?.start ?? "");
  const words = line.split(/\s+/).filter(Boolean);
  const at = words.indexOf("deno");
  const assignments = words.splice(0, Math.max(at, 0));
  if (
    words[0] !== "deno" || words[1] !== "run" ||
    assignments.some((word) => !/^[A-Z_][A-Z0-9_]*=/.test(word))
  ) {
    throw new Error(`Cannot parse the start task "${line}": expected "[NAME=value …] deno run …"`);
  }
  const env = Object.fromEntries(assignments.map((word) => {
    const eq = word.indexOf("=");
    return [word.slice(0, eq), word.slice(eq + 1)];
  }));
  const args = words.slice(1).map((word) =>
    word.endsWith(".ts") && !word.startsWith("-") ? new URL(word, root).pathname : word
  );
  return { line, env, args };
}

/** Server processes started and not yet exited (see {@linkcode killChildrenOnSignal}). */
const children = new Set<Deno.ChildProcess>();

/**
 * For the long-run scripts: on Ctrl-C or SIGTERM, kill every server they started before
 * exiting, so an interrupted run leaves no orphan server behind.
 */
export function killChildrenOnSignal(): void {
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => {
      for (const child of children) {
        try {
          child.kill("SIGKILL");
        } catch {
          // already gone
        }
      }
      Deno.exit(130);
    });
  }
}

/** Starts the server and resolves once it printed its URL. */
export async function spawnServer(options: SpawnOptions): Promise<ChildServer> {
  const task = await startTask();
  const args = [
    ...task.args,
    "--port",
    "0",
    "--data-dir",
    options.dataDir,
    ...(options.flags ?? []),
  ];
  const child = new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT.pathname,
    env: { ...task.env, ...options.env, DOHOST_ADMIN_TOKEN: ADMIN, NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  children.add(child);
  child.status.finally(() => children.delete(child));
  let stdout = "";
  let stderr = "";
  const listeners = new Set<() => void>();
  const listening = Promise.withResolvers<string>();
  const pump = async (stream: ReadableStream<Uint8Array>, append: (text: string) => void) => {
    for await (const text of stream.pipeThrough(new TextDecoderStream())) {
      append(text);
      for (const listener of listeners) listener();
    }
  };
  const pumps = Promise.all([
    pump(child.stdout, (text) => {
      stdout += text;
      const match = LISTENING.exec(stdout);
      if (match?.[1]) listening.resolve(match[1]);
    }),
    pump(child.stderr, (text) => stderr += text),
  ]);
  const status = pumps.then(() => child.status);
  status.then(
    (result) => listening.reject(new Error(`Server exited with ${result.code}:\n${stderr}`)),
    listening.reject,
  );
  let timer: ReturnType<typeof setTimeout> | undefined;
  let url: string;
  try {
    url = await Promise.race([
      listening.promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`Server did not start in ${START_TIMEOUT_MS} ms:\n${stderr}`)),
          START_TIMEOUT_MS,
        );
      }),
    ]);
  } catch (error) {
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
    await status;
    throw error;
  } finally {
    clearTimeout(timer);
  }
  const fetchWithTimeout = async (
    path: string,
    init: RequestInit & { timeoutMs?: number } = {},
  ) => {
    const controller = new AbortController();
    const abort = setTimeout(() => controller.abort(), init.timeoutMs ?? 30_000);
    try {
      const res = await fetch(`${url}${path}`, { ...init, signal: controller.signal });
      const body = new Uint8Array(await res.arrayBuffer());
      const empty = [204, 205, 304].includes(res.status) || init.method === "HEAD";
      return new Response(empty ? null : body, {
        status: res.status,
        headers: res.headers,
      });
    } finally {
      clearTimeout(abort);
    }
  };
  const api = (method: string, path: string, body?: unknown) =>
    fetchWithTimeout(path, {
      method,
      headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  const kill = async (signal: Deno.Signal = "SIGKILL") => {
    try {
      child.kill(signal);
    } catch {
      // already exited
    }
    return await status;
  };
  return {
    url,
    pid: child.pid,
    dataDir: options.dataDir,
    adminToken: ADMIN,
    api,
    async deploy(name, code) {
      const res = await api("POST", "/v1/app_default/durable-objects", {
        name,
        code,
        access_mode: "public",
      });
      const body = await res.json();
      if (res.status !== 200 || body.status !== "READY") {
        throw new Error(`deploy ${name} failed: ${res.status} ${JSON.stringify(body)}`);
      }
    },
    fetch: fetchWithTimeout,
    logs: () => stderr,
    waitForLog(pattern, timeoutMs = 10_000) {
      return new Promise<string>((resolve, reject) => {
        const check = () => {
          const line = stderr.split("\n").find((candidate) => pattern.test(candidate));
          if (line === undefined) return;
          cleanup();
          resolve(line);
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`No log line matched ${pattern} in ${timeoutMs} ms:\n${stderr}`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          listeners.delete(check);
        };
        listeners.add(check);
        check();
      });
    },
    kill,
    status,
    async [Symbol.asyncDispose]() {
      await kill("SIGKILL");
    },
  };
}

/** Resource figures of a process, from Linux `/proc`; null where unavailable. */
export interface ProcessStats {
  threads: number | null;
  fds: number | null;
  sockets: number | null;
  rssMib: number | null;
}

/**
 * Threads, descriptors, sockets and resident memory of `pid`. Deno lets only `--allow-all`
 * read `/proc`, so without it the figures come from `ls` and `cat` (`--allow-run` is enough).
 */
export async function processStats(pid: number): Promise<ProcessStats> {
  const [fdList, status] = await Promise.all([
    run("ls", ["-l", `/proc/${pid}/fd`]),
    run("cat", [`/proc/${pid}/status`]),
  ]);
  const field = (name: string) => {
    const match = status === null ? null : new RegExp(`^${name}:\\s+(\\d+)`, "m").exec(status);
    return match?.[1] ? Number(match[1]) : null;
  };
  const links = fdList?.split("\n").filter((line) => line.includes(" -> ")) ?? null;
  const rssKib = field("VmRSS");
  return {
    threads: field("Threads"),
    fds: links?.length ?? null,
    sockets: links?.filter((line) => line.includes("socket:")).length ?? null,
    rssMib: rssKib === null ? null : Math.round(rssKib / 1024),
  };
}

async function run(command: string, args: string[]): Promise<string | null> {
  try {
    const output = await new Deno.Command(command, { args, stdout: "piped", stderr: "null" })
      .output();
    return output.success ? new TextDecoder().decode(output.stdout) : null;
  } catch {
    return null;
  }
}

/** A fresh temporary data dir, removed on dispose. */
export async function tempDataDir(): Promise<{ path: string } & AsyncDisposable> {
  const path = await Deno.makeTempDir({ prefix: "dohost-rel-" });
  return {
    path,
    async [Symbol.asyncDispose]() {
      await Deno.remove(path, { recursive: true }).catch(() => {});
    },
  };
}
