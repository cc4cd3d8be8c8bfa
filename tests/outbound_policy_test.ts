import assert from "node:assert/strict";
import { ConfigError, loadConfig } from "../src/config.ts";
import {
  isPublicAddress,
  outboundAllowed,
  OutboundPolicyError,
  parseAddress,
  parseOutbound,
} from "../src/outbound_policy.ts";

Deno.test("isPublicAddress() refuses loopback, private, link-local and special ranges", () => {
  const blocked = [
    "127.0.0.1",
    "127.255.0.9",
    "0.0.0.0",
    "10.0.0.1",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "169.254.169.254",
    "100.64.0.1",
    "192.0.2.5",
    "198.18.0.1",
    "224.0.0.1",
    "255.255.255.255",
    "::",
    "::1",
    "::ffff:127.0.0.1",
    "::ffff:7f00:1",
    "::ffff:10.0.0.1",
    "64:ff9b::7f00:1",
    "2002:7f00:1::",
    "fc00::1",
    "fd12:3456::1",
    "fe80::1%eth0",
    "ff02::1",
    "2001:db8::1",
    "[::1]",
    "not an address",
  ];
  for (const address of blocked) assert.equal(isPublicAddress(address), false, address);
  const allowed = ["1.1.1.1", "8.8.8.8", "172.32.0.1", "2606:4700::1111", "::ffff:8.8.8.8"];
  for (const address of allowed) assert.equal(isPublicAddress(address), true, address);
});

Deno.test("parseAddress() reads IPv4, IPv6 and IPv4-in-IPv6 literals", () => {
  assert.deepEqual(parseAddress("1.2.3.4"), new Uint8Array([1, 2, 3, 4]));
  assert.deepEqual(
    parseAddress("::ffff:1.2.3.4"),
    new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4]),
  );
  assert.equal(parseAddress("1.2.3.256"), null);
  assert.equal(parseAddress("01.2.3.4"), null);
  assert.equal(parseAddress("1::2::3"), null);
  assert.equal(parseAddress("example.com"), null);
});

Deno.test("parseOutbound() takes the three modes and allow-lists, and rejects bad entries", () => {
  assert.deepEqual(parseOutbound("public"), { mode: "public" });
  assert.deepEqual(parseOutbound("none"), { mode: "none" });
  assert.deepEqual(parseOutbound("all"), { mode: "all" });
  const list = parseOutbound("api.example.com, *.example.org:443, 10.0.0.0/8, [fd00::1]:8443");
  assert.equal(list.mode, "list");
  for (const bad of ["", "http://x", "a b", "10.0.0.0/33", "host:0", "host:99999", "1.2.3.4/x"]) {
    assert.throws(() => parseOutbound(bad), OutboundPolicyError, bad);
  }
});

Deno.test("outboundAllowed() checks every resolved address, so a public name on a private address is refused", () => {
  const pub = parseOutbound("public");
  const target = (host: string, addresses: string[], port = 443) => ({ host, port, addresses });
  assert.equal(outboundAllowed(pub, target("example.com", ["93.184.216.34"])), true);
  assert.equal(outboundAllowed(pub, target("rebind.example", ["127.0.0.1"])), false);
  assert.equal(outboundAllowed(pub, target("mixed.example", ["93.184.216.34", "10.0.0.1"])), false);
  assert.equal(outboundAllowed(pub, target("nothing.example", [])), false);
  assert.equal(outboundAllowed(parseOutbound("none"), target("example.com", ["1.1.1.1"])), false);
  assert.equal(outboundAllowed(parseOutbound("all"), target("localhost", ["127.0.0.1"])), true);

  const list = parseOutbound("api.example.com,*.example.org:443,10.0.0.0/8,127.0.0.1:8080");
  assert.equal(outboundAllowed(list, target("API.example.com.", ["10.9.9.9"], 80)), true);
  assert.equal(outboundAllowed(list, target("a.b.example.org", ["1.1.1.1"])), true);
  assert.equal(outboundAllowed(list, target("a.b.example.org", ["1.1.1.1"], 80)), false);
  assert.equal(outboundAllowed(list, target("example.org", ["1.1.1.1"])), false);
  assert.equal(outboundAllowed(list, target("internal", ["10.2.3.4"], 5432)), true);
  assert.equal(outboundAllowed(list, target("127.0.0.1", ["127.0.0.1"], 8080)), true);
  assert.equal(outboundAllowed(list, target("127.0.0.1", ["127.0.0.1"], 8081)), false);
  assert.equal(outboundAllowed(list, target("other.com", ["1.1.1.1"])), false);
});

Deno.test("loadConfig() parses --outbound and names the flag when it is malformed", () => {
  const config = loadConfig(["--outbound", "api.example.com:443,10.0.0.0/8"], {});
  assert.equal(config?.outbound.mode, "list");
  assert.equal(loadConfig([], {})?.outbound.mode, "public");
  assert.throws(() => loadConfig(["--outbound", "http://x"], {}), ConfigError);
  assert.throws(
    () => loadConfig(["--outbound", "http://x"], {}),
    /Invalid --outbound "http:\/\/x"/,
  );
});
