import { loadConfig } from "/work/main/src/config.ts";
import { consoleLogger } from "/work/main/src/log.ts";
import { createServer } from "/work/main/src/server.ts";
const dataDir = await Deno.makeTempDir();
const config = loadConfig(["--port", "0", "--data-dir", dataDir], { DOHOST_ADMIN_TOKEN: "t" })!;
const server = await createServer(config, consoleLogger({ format: "text", level: "debug" } as never));
const h = server.handler;
const code = await Deno.readTextFile("/work/main/tests/fixtures/" + Deno.args[0]);
let r = await h(new Request("http://localhost/v1/app_default/durable-objects", { method: "POST", headers: { authorization: "Bearer t" }, body: JSON.stringify({ name: Deno.args[1], code, access_mode: "public" }) }));
console.log(r.status, (await r.text()).slice(0, 200));
for (const path of Deno.args.slice(2)) {
  r = await h(new Request("http://localhost" + path));
  console.log(path, r.status, await r.text());
}
await server.close();
