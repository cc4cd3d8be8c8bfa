import assert from "node:assert/strict";
import { EgressProxy } from "../src/egress_proxy.ts";
import { silentLogger } from "../src/log.ts";
import { parseOutbound } from "../src/outbound_policy.ts";

/** A local HTTP server; `/to/<port>` redirects to another local port. */
function localServer(): Deno.HttpServer<Deno.NetAddr> & { hits: number } {
  const state = { hits: 0 };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
    state.hits++;
    const redirect = /^\/to\/(\d+)$/.exec(new URL(request.url).pathname);
    if (redirect) return Response.redirect(`http://127.0.0.1:${redirect[1]}/`, 302);
    return new Response(`hello from ${new URL(request.url).host}`);
  });
  return Object.assign(server, {
    get hits() {
      return state.hits;
    },
  });
}

function clientFor(proxy: EgressProxy): Deno.HttpClient {
  const endpoint = proxy.endpoint;
  if (!endpoint) throw new Error("no endpoint");
  return Deno.createHttpClient({
    proxy: {
      url: endpoint.url,
      basicAuth: { username: endpoint.username, password: endpoint.password },
    },
  });
}

Deno.test("EgressProxy connects to the address it checked: a name resolving to loopback is refused", async () => {
  await using target = localServer();
  const resolved: string[] = [];
  const proxy = EgressProxy.start({
    policy: parseOutbound("public"),
    logger: silentLogger,
    resolve: (host) => {
      resolved.push(host);
      return Promise.resolve(["127.0.0.1"]);
    },
  });
  const client = clientFor(proxy);
  try {
    await assert.rejects(
      fetch(`http://looks-public.example:${target.addr.port}/`, { client }),
      TypeError,
    );
    assert.deepEqual(resolved, ["looks-public.example"]);
    assert.equal(target.hits, 0, "nothing reached the loopback server");
  } finally {
    client.close();
    proxy.close();
  }
});

Deno.test("EgressProxy applies an allow-list to every redirect hop and needs its password", async () => {
  await using allowed = localServer();
  await using forbidden = localServer();
  const proxy = EgressProxy.start({
    policy: parseOutbound(`127.0.0.1:${allowed.addr.port}`),
    logger: silentLogger,
  });
  const client = clientFor(proxy);
  const stranger = Deno.createHttpClient({
    proxy: {
      url: proxy.endpoint?.url ?? "",
      basicAuth: { username: "dohost", password: "guess" },
    },
  });
  try {
    const ok = await fetch(`http://127.0.0.1:${allowed.addr.port}/`, { client });
    assert.equal(await ok.text(), `hello from 127.0.0.1:${allowed.addr.port}`);
    await assert.rejects(
      fetch(`http://127.0.0.1:${allowed.addr.port}/to/${forbidden.addr.port}`, { client }),
      TypeError,
    );
    assert.equal(forbidden.hits, 0);
    await assert.rejects(
      fetch(`http://127.0.0.1:${allowed.addr.port}/`, { client: stranger }),
      TypeError,
    );
  } finally {
    client.close();
    stranger.close();
    proxy.close();
  }
});

Deno.test("EgressProxy with --outbound none has no listener and its fetch refuses", async () => {
  const proxy = EgressProxy.start({ policy: parseOutbound("none"), logger: silentLogger });
  assert.equal(proxy.endpoint, null);
  await assert.rejects(proxy.fetch("http://127.0.0.1:1/", {} as never), /disabled/);
  proxy.close();
});
