/**
 * Seeing inside a class: its instances, their storage, read-only SQL, export/import of an
 * instance's database, purging one instance, and the class's console output.
 *
 * None of these runs user code or needs the instance to be live: storage is read from the
 * instance's SQLite file by the host (`instance_files.ts`). Reads go straight to the file (WAL
 * gives them the last committed state); replacing or purging a database first stops the live
 * instance and holds new events until the file is in place (`InstanceManager.withStopped`).
 * `:id` is the instance name as used in `/_do/<class>/<id>`, or its 64-hex id.
 */

import { dirname, join } from "node:path";
import type { Context } from "hono";
import type { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { streamSSE } from "hono/streaming";
import { z } from "zod";
import { isObjectIdOf, objectIdFromName } from "../workers/protocol.ts";
import type { App, AppStore } from "./apps.ts";
import { appOf, controlApp, type ControlEnv, json, parse } from "./control.ts";
import { ServerError } from "./errors.ts";
import type { InstanceIndex } from "./instance_index.ts";
import {
  checkDatabase,
  copyDatabase,
  QueryError,
  querySql,
  readAlarm,
  readKv,
} from "./instance_files.ts";
import type { InstanceStorage } from "./instance_storage.ts";
import { instanceKey, type InstanceManager, type InstanceTarget } from "./instances.ts";
import type { LogEntry, LogRing } from "./log_ring.ts";
import type { ClassRecord, Registry } from "./registry.ts";
import type { SocketView } from "./socket_view.ts";

/** What the inspection routes need. */
export interface InspectDeps {
  adminToken: string;
  apps: AppStore;
  registry: Registry;
  instances: InstanceManager;
  storage: InstanceStorage;
  index: InstanceIndex;
  logs: LogRing;
  sockets: SocketView;
  /** Export copies are staged here (hidden files, removed once streamed). */
  dataDir: string;
  /** Largest database an import accepts. */
  maxImportBytes: number;
}

/** One row of the instance list. */
export interface InstanceSummary {
  id: string;
  name: string | null;
  state: "live" | "hibernated" | "stopped";
  storage_bytes: number;
  /** ISO time of the pending alarm, or null. */
  alarm: string | null;
  sockets: number;
  /** ISO time of the last event (live) or of the last write to its file. */
  last_active: string | null;
}

const SqlBody = z.object({
  query: z.string().min(1, '"query" is required'),
  params: z.array(z.union([z.string(), z.number(), z.boolean(), z.null()])).default([]),
});

const DEFAULT_KV_LIMIT = 100;
const MAX_KV_LIMIT = 1000;
const DEFAULT_LOG_LIMIT = 100;
const PING_MS = 15_000;
/** These routes come before the control API's body limit (imports are larger): SQL has its own. */
const MAX_SQL_BODY = 1024 * 1024;

function onError(): never {
  throw new ServerError("PAYLOAD_TOO_LARGE", "Request body is too large", {
    remediation: `Send at most ${MAX_SQL_BODY} bytes.`,
  });
}

/** The inspection routes, mounted under `/v1`. */
export function inspectRoutes(deps: InspectDeps): Hono<ControlEnv> {
  const api = controlApp(deps);
  const base = "/:appId/durable-objects/:name";

  api.get(`${base}/instances`, async (c) => {
    const { app, record } = classOf(c, deps);
    return c.json({ instances: await listInstances(deps, app, record) });
  });

  api.get(`${base}/instances/:id/storage`, async (c) => {
    const target = targetOf(c, deps);
    const file = await deps.storage.file(target.app.appId, target.record.name, target.idHex);
    const query = {
      prefix: c.req.query("prefix") ?? "",
      start: c.req.query("start") ?? "",
      limit: intParam(c.req.query("limit"), DEFAULT_KV_LIMIT, { min: 1, max: MAX_KV_LIMIT }),
    };
    const page = file ? readKv(file.path, query) : { items: [], next: null };
    return c.json({ id: target.idHex, name: target.name, ...page });
  });

  api.post(
    `${base}/instances/:id/sql`,
    bodyLimit({ maxSize: MAX_SQL_BODY, onError }),
    async (c) => {
      const target = targetOf(c, deps);
      const body = parse(SqlBody, await json(c.req.raw));
      const path = await existingFile(deps, target);
      try {
        return c.json(querySql(path, body.query, body.params));
      } catch (error) {
        if (!(error instanceof QueryError)) throw error;
        throw new ServerError("REQUEST_ERROR", error.message, {
          reason: error.reason,
          remediation: "Only read-only statements (SELECT, read-only PRAGMAs) can run here.",
        });
      }
    },
  );

  api.get(`${base}/instances/:id/export`, async (c) => {
    const target = targetOf(c, deps);
    const path = await existingFile(deps, target);
    const copy = await Deno.makeTempFile({ dir: deps.dataDir, prefix: ".export-" });
    let file: Deno.FsFile;
    try {
      await copyDatabase(path, copy);
      file = await Deno.open(copy);
    } finally {
      await Deno.remove(copy); // the open handle keeps the bytes readable
    }
    return new Response(file.readable, {
      headers: {
        "content-type": "application/vnd.sqlite3",
        "content-disposition": `attachment; filename="${target.idHex}.sqlite"`,
      },
    });
  });

  api.put(`${base}/instances/:id/export`, async (c) => {
    const target = targetOf(c, deps);
    const { appId } = target.app;
    const path = await deps.storage.dbPath(appId, target.record.name, target.idHex);
    // A hidden name beside the target: backups skip it, and the rename stays on one filesystem.
    const staged = join(dirname(path), `.import-${crypto.randomUUID()}`);
    try {
      const bytes = await receiveFile(c.req.raw, staged, deps.maxImportBytes);
      await checkDatabase(staged);
      await deps.instances.withStopped(instanceKey(target), async () => {
        for (const suffix of ["-wal", "-shm"]) await Deno.remove(path + suffix).catch(ignore);
        await Deno.rename(staged, path);
      });
      deps.index.record(appId, target.record.name, target.idHex, target.name);
      return c.json({ imported: true, id: target.idHex, name: target.name, bytes });
    } catch (error) {
      if (error instanceof QueryError) {
        throw new ServerError("VALIDATION_INVALID_SCHEMA", error.message, {
          reason: "INVALID_DATABASE",
          remediation: "Send a file written by GET …/export (an SQLite database).",
        });
      }
      throw error;
    } finally {
      await Deno.remove(staged).catch(ignore);
    }
  });

  api.delete(`${base}/instances/:id`, async (c) => {
    const target = targetOf(c, deps);
    const { appId } = target.app;
    await deps.instances.withStopped(instanceKey(target), async () => {
      await deps.storage.purgeInstance(appId, target.record.name, target.idHex);
    });
    deps.index.forget(appId, target.record.name, target.idHex);
    return c.json({ deleted: true, id: target.idHex, name: target.name });
  });

  api.get(`${base}/logs`, (c) => {
    const { app, record } = classOf(c, deps);
    const limit = intParam(c.req.query("limit"), DEFAULT_LOG_LIMIT, {
      min: 0,
      max: Number.MAX_SAFE_INTEGER,
    });
    const follow = ["1", "true"].includes(c.req.query("follow") ?? "");
    if (!follow) return c.json({ logs: deps.logs.recent(app.appId, record.name, limit) });
    return followLogs(c, deps.logs, { appId: app.appId, className: record.name, limit });
  });

  return api;
}

/** Every live instance, instance with a database file and socket holder, sorted by id. */
async function listInstances(
  deps: InspectDeps,
  app: App,
  record: ClassRecord,
): Promise<InstanceSummary[]> {
  const live = new Map(
    [...deps.instances.live]
      .filter((instance) =>
        instance.target.app.appId === app.appId && instance.target.record.name === record.name
      )
      .map((instance) => [instance.target.idHex, instance]),
  );
  const files = new Map(
    (await deps.storage.files(app.appId, record.name)).map((file) => [file.idHex, file]),
  );
  const names = deps.index.names(app.appId, record.name);
  const holders = deps.sockets.holders(app.appId, record.name);
  for (const holder of holders) names.set(holder.idHex, holder.name);
  const ids = [
    ...new Set([...live.keys(), ...files.keys(), ...holders.map((holder) => holder.idHex)]),
  ].sort();
  return ids.map((idHex) => {
    const instance = live.get(idHex);
    const file = files.get(idHex);
    const key = instanceKey({ app, record, idHex, name: null });
    const alarm = file ? readAlarm(file.path) : null;
    const lastActive = instance ? new Date(instance.lastActive) : file?.modified ?? null;
    return {
      id: idHex,
      name: instance?.target.name ?? names.get(idHex) ?? null,
      state: instance ? "live" : deps.sockets.hibernated(key) ? "hibernated" : "stopped",
      storage_bytes: file?.bytes ?? 0,
      alarm: alarm === null ? null : new Date(alarm).toISOString(),
      sockets: deps.sockets.count(key),
      last_active: lastActive?.toISOString() ?? null,
    };
  });
}

/** Streams a class's console output as server-sent events: the backlog, then new lines. */
function followLogs(
  c: Context,
  logs: LogRing,
  options: { appId: string; className: string; limit: number },
): Response {
  return streamSSE(c, async (stream) => {
    const queue = logs.recent(options.appId, options.className, options.limit);
    let wake: (() => void) | null = null;
    let ended = false;
    const end = () => {
      ended = true;
      wake?.();
    };
    const unsubscribe = logs.follow(options.appId, options.className, (entry) => {
      if (queue.length >= 10_000) queue.shift(); // a stalled reader loses the oldest lines
      queue.push(entry);
      wake?.();
    });
    stream.onAbort(end);
    logs.closed.then(end);
    try {
      while (!ended) {
        let entry: LogEntry | undefined;
        while (!ended && (entry = queue.shift())) {
          await stream.writeSSE({
            event: "log",
            id: String(entry.seq),
            data: JSON.stringify(entry),
          });
        }
        if (ended) break;
        let timer: ReturnType<typeof setTimeout> | undefined;
        const pinged = await new Promise<boolean>((resolve) => {
          wake = () => resolve(false);
          timer = setTimeout(() => resolve(true), PING_MS);
        });
        clearTimeout(timer);
        wake = null;
        if (pinged && !ended) await stream.write(": ping\n\n");
      }
    } finally {
      unsubscribe();
    }
  });
}

function classOf(c: Context<ControlEnv>, deps: InspectDeps): { app: App; record: ClassRecord } {
  const app = appOf(c, deps.apps, c.req.param("appId") ?? "");
  const record = deps.registry.get(app.appId, c.req.param("name") ?? "");
  if (!record) {
    throw new ServerError("RESOURCE_NOT_FOUND", "Durable Object not found", {
      remediation: "Use list_durable_objects to see registered DOs.",
    });
  }
  return { app, record };
}

/** The instance `:id` names: a 64-hex id of this class, or an instance name. */
function targetOf(c: Context<ControlEnv>, deps: InspectDeps): InstanceTarget {
  const { app, record } = classOf(c, deps);
  const id = c.req.param("id") ?? "";
  const namespace = `${app.appId}/${record.name}`;
  if (isObjectIdOf(namespace, id)) {
    const name = deps.index.names(app.appId, record.name).get(id) ?? null;
    return { app, record, idHex: id, name };
  }
  return { app, record, idHex: objectIdFromName(namespace, id), name: id };
}

async function existingFile(deps: InspectDeps, target: InstanceTarget): Promise<string> {
  const file = await deps.storage.file(target.app.appId, target.record.name, target.idHex);
  if (!file) {
    throw new ServerError("RESOURCE_NOT_FOUND", "Instance has no storage", {
      reason: "NO_STORAGE",
      remediation:
        "The instance has never written anything; list instances to see those that have.",
    });
  }
  return file.path;
}

/** Writes a request body to `path`, refusing more than `limit` bytes; returns the size. */
async function receiveFile(request: Request, path: string, limit: number): Promise<number> {
  const tooLarge = () =>
    new ServerError("PAYLOAD_TOO_LARGE", "Request body is too large", {
      remediation: `Send at most ${limit} bytes (--max-body-bytes).`,
    });
  if (Number(request.headers.get("content-length") ?? "0") > limit) throw tooLarge();
  if (!request.body) {
    throw new ServerError("VALIDATION_INVALID_SCHEMA", "The request has no body", {
      reason: "INVALID_DATABASE",
      remediation: "Send the SQLite file as the request body.",
    });
  }
  const file = await Deno.open(path, { write: true, createNew: true });
  let size = 0;
  try {
    for await (const chunk of request.body) {
      size += chunk.byteLength;
      if (size > limit) throw tooLarge();
      let written = 0;
      while (written < chunk.byteLength) written += await file.write(chunk.subarray(written));
    }
  } finally {
    file.close();
  }
  return size;
}

function intParam(
  text: string | undefined,
  fallback: number,
  range: { min: number; max: number },
): number {
  if (text === undefined || text === "") return fallback;
  const value = /^[0-9]+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(value) || value < range.min) {
    throw new ServerError("VALIDATION_INVALID_SCHEMA", `Invalid limit "${text}"`, {
      reason: "INVALID_LIMIT",
      remediation: `Send an integer >= ${range.min}.`,
    });
  }
  const max = range.max;
  return Math.min(value, max);
}

function ignore(): void {}
