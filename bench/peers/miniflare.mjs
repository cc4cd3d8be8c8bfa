// Starts the miniflare peer for `deno task bench`: the router worker plus the benchmark classes,
// every class SQLite-backed, storage persisted under --persist. Runs until SIGTERM or SIGINT.
//
//   node miniflare.mjs --port 8787 --persist /tmp/dir --classes ../do
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { Miniflare } from "miniflare";

const { values } = parseArgs({
  options: {
    port: { type: "string", default: "8787" },
    persist: { type: "string" },
    classes: {
      type: "string",
      default: new URL("../do", import.meta.url).pathname,
    },
  },
});
const here = new URL(".", import.meta.url).pathname;
const classesDir = resolve(values.classes);
const classes = [
  ["echo", "Echo", "ECHO"],
  ["counter", "Counter", "COUNTER"],
  ["kv", "Kv", "KV"],
  ["sql", "Sql", "SQL"],
  ["chat", "Chat", "CHAT"],
];

const mf = new Miniflare({
  host: "127.0.0.1",
  port: Number(values.port),
  compatibilityDate: "2026-04-01",
  modulesRoot: here,
  modules: [
    {
      type: "ESModule",
      path: join(here, "router.js"),
      contents: read(join(here, "router.js")),
    },
    ...classes.map(([file]) => ({
      type: "ESModule",
      path: join(here, `${file}.js`),
      contents: read(join(classesDir, `${file}.js`)),
    })),
  ],
  durableObjects: Object.fromEntries(
    classes.map((
      [, className, binding],
    ) => [binding, { className, useSQLite: true }]),
  ),
  durableObjectsPersist: values.persist ?? false,
});
const url = await mf.ready;
process.stdout.write(`miniflare listening on ${url}\n`);

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  await mf.dispose();
  process.exit(0);
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);

function read(path) {
  return readFileSync(path, "utf8");
}
