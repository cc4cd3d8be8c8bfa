import { fixture, startServer } from "../_helpers.ts";
import { rawExchange, upgradeRequest } from "./_raw_http.ts";
await using server = await startServer();
await server.deploy("echo", await fixture("echo_do.ts"));
const port = Number(new URL(server.url).port);
for (const id of ["a", "s-envput", "a"]) {
  const r = await rawExchange(port, upgradeRequest("/_do/echo/" + id), {
    until: "\r\n\r\n",
    waitMs: 5000,
  });
  console.log(id, JSON.stringify(r.text.slice(0, 300)));
}
