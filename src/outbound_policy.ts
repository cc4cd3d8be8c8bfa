/**
 * Where objects may open network connections (`--outbound`).
 *
 * - `public` (default): any address on the public internet; never loopback, private
 *   (RFC 1918, ULA), link-local, carrier-grade NAT, multicast, documentation or other
 *   special-purpose ranges, including IPv4 addresses embedded in IPv6 (`::ffff:127.0.0.1`,
 *   NAT64, 6to4).
 * - `all`: anywhere (for trusted code on a private network).
 * - `none`: nowhere.
 * - an allow-list, comma separated: `api.example.com`, `*.example.com`, `10.1.2.3`,
 *   `10.0.0.0/8`, `[fd00::1]:8443`, each with an optional `:port`. Only listed destinations are
 *   reachable, public or not.
 *
 * The decision is taken on the addresses a connection will actually use, after name
 * resolution, by the egress proxy (`egress_proxy.ts`), so a name that resolves to a private
 * address is refused like the address itself.
 */

/** A parsed `--outbound` value. */
export type OutboundPolicy =
  | { mode: "public" }
  | { mode: "all" }
  | { mode: "none" }
  | { mode: "list"; rules: AllowRule[]; source: string };

/** One allow-list entry. */
export type AllowRule =
  | { kind: "host"; host: string; port: number | null }
  | { kind: "suffix"; suffix: string; port: number | null }
  | { kind: "cidr"; bytes: Uint8Array; bits: number; port: number | null };

/** Thrown for a malformed `--outbound` value. */
export class OutboundPolicyError extends Error {
  override name = "OutboundPolicyError";
}

/** Parses an `--outbound` value. */
export function parseOutbound(text: string): OutboundPolicy {
  const value = text.trim();
  if (value === "public" || value === "all" || value === "none") return { mode: value };
  const rules = value.split(",").map((entry) => entry.trim()).filter(Boolean).map(parseRule);
  if (rules.length === 0) throw new OutboundPolicyError("The allow-list is empty");
  return { mode: "list", rules, source: value };
}

/**
 * Whether a connection to `host` (a name or an address literal) on `port` may go ahead when
 * `host` resolved to `addresses`.
 */
export function outboundAllowed(
  policy: OutboundPolicy,
  target: { host: string; port: number; addresses: string[] },
): boolean {
  if (target.addresses.length === 0) return false;
  switch (policy.mode) {
    case "none":
      return false;
    case "all":
      return true;
    case "public":
      return target.addresses.every(isPublicAddress);
    case "list": {
      const host = normalizeHost(target.host);
      const portOk = (rule: AllowRule) => rule.port === null || rule.port === target.port;
      const byName = policy.rules.some((rule) =>
        portOk(rule) &&
        ((rule.kind === "host" && rule.host === host) ||
          (rule.kind === "suffix" && host.endsWith(rule.suffix)))
      );
      if (byName) return true;
      return target.addresses.every((address) => {
        const bytes = parseAddress(address);
        return bytes !== null &&
          policy.rules.some((rule) =>
            rule.kind === "cidr" && portOk(rule) && inCidr(bytes, rule.bytes, rule.bits)
          );
      });
    }
    default: {
      const unknown: never = policy;
      throw new Error(`Unknown outbound policy ${JSON.stringify(unknown)}`);
    }
  }
}

/** Whether `address` (an IPv4 or IPv6 literal) is a public unicast address. */
export function isPublicAddress(address: string): boolean {
  const bytes = parseAddress(address);
  if (bytes === null) return false;
  if (bytes.length === 4) return isPublicV4(bytes);
  const embedded = embeddedV4(bytes);
  if (embedded) return isPublicV4(embedded);
  return !BLOCKED_V6.some(([prefix, bits]) => inCidr(bytes, prefix, bits));
}

/** The 4 or 16 bytes of an address literal (brackets and zone ids allowed), or null. */
export function parseAddress(text: string): Uint8Array | null {
  const literal = text.replace(/^\[|\]$/g, "").replace(/%.*$/, "");
  return parseV4(literal) ?? parseV6(literal);
}

const BLOCKED_V4: [Uint8Array, number][] = [
  ["0.0.0.0", 8],
  ["10.0.0.0", 8],
  ["100.64.0.0", 10],
  ["127.0.0.0", 8],
  ["169.254.0.0", 16],
  ["172.16.0.0", 12],
  ["192.0.0.0", 24],
  ["192.0.2.0", 24],
  ["192.88.99.0", 24],
  ["192.168.0.0", 16],
  ["198.18.0.0", 15],
  ["198.51.100.0", 24],
  ["203.0.113.0", 24],
  ["224.0.0.0", 4],
  ["240.0.0.0", 4],
].map(([address, bits]) => [parseV4(String(address)) ?? new Uint8Array(4), Number(bits)]);

const BLOCKED_V6: [Uint8Array, number][] = [
  ["::", 96], // unspecified, loopback and the deprecated IPv4-compatible range
  ["64:ff9b:1::", 48],
  ["100::", 64],
  ["2001::", 23],
  ["2001:db8::", 32],
  ["fc00::", 7],
  ["fe80::", 10],
  ["fec0::", 10],
  ["ff00::", 8],
].map(([address, bits]) => [parseV6(String(address)) ?? new Uint8Array(16), Number(bits)]);

function isPublicV4(bytes: Uint8Array): boolean {
  return !BLOCKED_V4.some(([prefix, bits]) => inCidr(bytes, prefix, bits));
}

/** The IPv4 address inside an IPv4-mapped, NAT64 (64:ff9b::/96) or 6to4 (2002::/16) one. */
function embeddedV4(bytes: Uint8Array): Uint8Array | null {
  const zeros = (from: number, to: number) => bytes.subarray(from, to).every((b) => b === 0);
  if (zeros(0, 10) && bytes[10] === 0xff && bytes[11] === 0xff) return bytes.subarray(12);
  if (bytes[0] === 0x00 && bytes[1] === 0x64 && bytes[2] === 0xff && bytes[3] === 0x9b) {
    if (zeros(4, 12)) return bytes.subarray(12);
  }
  if (bytes[0] === 0x20 && bytes[1] === 0x02) return bytes.subarray(2, 6);
  return null;
}

function inCidr(bytes: Uint8Array, prefix: Uint8Array, bits: number): boolean {
  if (bytes.length !== prefix.length) return false;
  for (let i = 0; i < bits; i++) {
    const mask = 0x80 >> (i % 8);
    if (((bytes[i >> 3] ?? 0) & mask) !== ((prefix[i >> 3] ?? 0) & mask)) return false;
  }
  return true;
}

function parseV4(text: string): Uint8Array | null {
  const parts = text.split(".");
  if (parts.length !== 4 || !parts.every((part) => /^(0|[1-9][0-9]{0,2})$/.test(part))) {
    return null;
  }
  const bytes = parts.map(Number);
  return bytes.every((b) => b <= 255) ? new Uint8Array(bytes) : null;
}

function parseV6(text: string): Uint8Array | null {
  if (!/^[0-9a-fA-F:.]+$/.test(text) || !text.includes(":")) return null;
  let head = text;
  let tail: number[] = [];
  const lastColon = text.lastIndexOf(":");
  if (text.includes(".")) {
    const v4 = parseV4(text.slice(lastColon + 1));
    if (!v4) return null;
    tail = [(v4[0] ?? 0) << 8 | (v4[1] ?? 0), (v4[2] ?? 0) << 8 | (v4[3] ?? 0)];
    head = text.slice(0, lastColon + 1);
    if (head.endsWith(":") && !head.endsWith("::")) head = head.slice(0, -1);
  }
  const halves = head.split("::");
  if (halves.length > 2) return null;
  const groups = (part: string) => (part === "" ? [] : part.split(":"));
  const left = groups(halves[0] ?? "");
  const right = halves.length === 2 ? groups(halves[1] ?? "") : [];
  if (![...left, ...right].every((group) => /^[0-9a-fA-F]{1,4}$/.test(group))) return null;
  const missing = 8 - tail.length - left.length - right.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return null;
  const words = [
    ...left.map((g) => parseInt(g, 16)),
    ...new Array(halves.length === 2 ? missing : 0).fill(0),
    ...right.map((g) => parseInt(g, 16)),
    ...tail,
  ];
  const bytes = new Uint8Array(16);
  words.forEach((word, i) => {
    bytes[i * 2] = word >> 8;
    bytes[i * 2 + 1] = word & 0xff;
  });
  return bytes;
}

function parseRule(entry: string): AllowRule {
  let host = entry;
  let port: number | null = null;
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(entry);
  if (bracketed) {
    host = bracketed[1] ?? "";
    port = bracketed[2] === undefined ? null : parsePort(bracketed[2], entry);
  } else if ((entry.match(/:/g) ?? []).length === 1) {
    const at = entry.lastIndexOf(":");
    host = entry.slice(0, at);
    port = parsePort(entry.slice(at + 1), entry);
  }
  const cidr = /^(.+)\/(\d{1,3})$/.exec(host);
  const literal = parseAddress(cidr ? cidr[1] ?? "" : host);
  if (literal) {
    const bits = cidr ? Number(cidr[2]) : literal.length * 8;
    if (bits > literal.length * 8) throw new OutboundPolicyError(`Invalid prefix in "${entry}"`);
    return { kind: "cidr", bytes: literal, bits, port };
  }
  if (cidr) throw new OutboundPolicyError(`Invalid address range "${entry}"`);
  const name = normalizeHost(host);
  const wildcard = name.startsWith("*.");
  const bare = wildcard ? name.slice(2) : name;
  if (!/^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$/.test(bare)) {
    throw new OutboundPolicyError(
      `Invalid --outbound entry "${entry}": expected public, all, none or a comma-separated ` +
        "list of host names (*.example.com allowed), addresses or CIDR ranges, each with an " +
        "optional :port",
    );
  }
  return wildcard
    ? { kind: "suffix", suffix: `.${bare}`, port }
    : { kind: "host", host: bare, port };
}

function parsePort(text: string, entry: string): number {
  const port = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(port >= 1 && port <= 65535)) throw new OutboundPolicyError(`Invalid port in "${entry}"`);
  return port;
}

function normalizeHost(host: string): string {
  return host.toLowerCase().replace(/\.$/, "");
}
