import { fixture } from "../_helpers.ts";
import { spawnServer } from "./_child_server.ts";
const server = await spawnServer({ dataDir: await Deno.makeTempDir() });
try {
  await server.deploy("echo", await fixture("echo_do.ts"));
  async function openSocket(id: string) {
    const ws = new WebSocket(server.url.replace("http", "ws") + "/_do/echo/" + id);
    await new Promise((res, rej) => {
      ws.onopen = res;
      ws.onerror = (e) => rej(new Error((e as ErrorEvent).message));
    });
    console.log("open", id);
    const closed = new Promise<[number, string]>((res) =>
      ws.onclose = (e) => res([e.code, e.reason])
    );
    return closed;
  }
  const ops: [string, () => Promise<Response>][] = [
    ["env put", () => server.api("PUT", "/v1/app_default/durable-objects/env/X", { value: "1" })],
    ["env delete", () => server.api("DELETE", "/v1/app_default/durable-objects/env/X")],
    ["redeploy", async () =>
      server.api("POST", "/v1/app_default/durable-objects", {
        name: "echo",
        code: await fixture("echo_do.ts"),
        access_mode: "public",
      })],
  ];
  for (const [label, op] of ops) {
    try {
      const closed = await openSocket("s-" + label.replace(" ", ""));
      const res = await op();
      await res.body?.cancel();
      console.log(
        label,
        res.status,
        await Promise.race([
          closed,
          new Promise((r) => setTimeout(() => r("not closed after 5s"), 5000)),
        ]),
      );
    } catch (e) {
      console.log(label, "error", String(e));
    }
  }
} finally {
  await server.kill("SIGTERM");
  console.log(server.logs().split("\n").filter((l) => !l.startsWith(" ")).slice(0, 20).join("\n"));
}
