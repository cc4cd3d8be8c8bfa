/**
 * The physical limit of the HTTP scenarios: a Deno server that answers "ok" to everything.
 *
 *   deno run --allow-net bench/peers/bare.ts 8790
 */

const port = Number(Deno.args[0] ?? "8790");
Deno.serve({ port, hostname: "127.0.0.1", onListen() {} }, () => new Response("ok"));
