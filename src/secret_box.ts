/**
 * Encryption at rest for the secrets kept in `meta.sqlite` (env values, app JWT secrets).
 *
 * Values are sealed with AES-256-GCM under the server's master key: `DOHOST_MASTER_KEY` when
 * set, otherwise 32 random bytes kept in `<data-dir>/master_key` (mode 0600, made on the first
 * start). Each value is bound to where it is stored (its "context", e.g. `env:<app>:<key>`) as
 * GCM additional data, so a sealed value copied into another row does not open. A check value
 * in the `settings` table makes a start with the wrong key fail loudly instead of serving
 * garbage. Rows written before encryption existed (plain text) are sealed on the next start.
 */

import { Buffer } from "node:buffer";
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from "node:crypto";
import { join } from "node:path";
import type { DatabaseSync } from "node:sqlite";

const PREFIX = "enc:v1:";
const IV_BYTES = 12;
const TAG_BYTES = 16;
const CHECK_CONTEXT = "settings:key_check";
const CHECK_PLAIN = "dohost master key check";

/** Seals and opens secrets with the master key. */
export class SecretBox {
  readonly #key: Uint8Array;

  constructor(key: Uint8Array) {
    if (key.length !== 32) throw new RangeError("The master key must be 32 bytes");
    this.#key = key;
  }

  /** Encrypts `plain` for storage at `context`. */
  seal(plain: string, context: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv("aes-256-gcm", this.#key, iv);
    cipher.setAAD(new TextEncoder().encode(context));
    const body = Buffer.concat([cipher.update(plain, "utf8"), cipher.final(), cipher.getAuthTag()]);
    return PREFIX + Buffer.concat([iv, body]).toString("base64");
  }

  /** Decrypts a value sealed for `context`; throws when the key or context does not match. */
  open(sealed: string, context: string): string {
    if (!isSealed(sealed)) throw new TypeError(`Value at "${context}" is not sealed`);
    const bytes = Buffer.from(sealed.slice(PREFIX.length), "base64");
    const iv = bytes.subarray(0, IV_BYTES);
    const tag = bytes.subarray(bytes.length - TAG_BYTES);
    const body = bytes.subarray(IV_BYTES, bytes.length - TAG_BYTES);
    const decipher = createDecipheriv("aes-256-gcm", this.#key, iv);
    decipher.setAAD(new TextEncoder().encode(context));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(body), decipher.final()]).toString("utf8");
  }

  /** Opens `value` if sealed, or returns it as is (rows from before encryption). */
  openOrPlain(value: string, context: string): string {
    return isSealed(value) ? this.open(value, context) : value;
  }
}

/** Whether a stored value is sealed. */
export function isSealed(value: string): boolean {
  return value.startsWith(PREFIX);
}

/**
 * The master key: derived from `configured` (`DOHOST_MASTER_KEY`) or read from (or created
 * in) `<dataDir>/master_key`.
 */
export async function loadMasterKey(
  dataDir: string,
  configured: string | undefined,
): Promise<{ key: Uint8Array; generated: boolean }> {
  if (configured !== undefined) {
    if (configured.length < 16) {
      throw new Error("DOHOST_MASTER_KEY must be at least 16 characters long");
    }
    return { key: derive(configured), generated: false };
  }
  const path = join(dataDir, "master_key");
  try {
    return { key: derive((await Deno.readTextFile(path)).trim()), generated: false };
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  const secret = randomBytes(32).toString("hex");
  await Deno.writeTextFile(path, secret + "\n", { mode: 0o600, createNew: true });
  return { key: derive(secret), generated: true };
}

/**
 * Makes sure `box` opens what this data dir holds: stores a check value on the first start and
 * verifies it on later ones. Throws a clear error when the key changed.
 */
export function verifyMasterKey(db: DatabaseSync, box: SecretBox): void {
  const row = db.prepare("SELECT value FROM settings WHERE key = 'key_check'").get();
  if (!row) {
    db.prepare("INSERT INTO settings (key, value) VALUES ('key_check', ?)")
      .run(box.seal(CHECK_PLAIN, CHECK_CONTEXT));
    return;
  }
  let opened: string | null = null;
  try {
    opened = box.open(String(row.value), CHECK_CONTEXT);
  } catch {
    opened = null;
  }
  if (opened !== CHECK_PLAIN) {
    throw new Error(
      "Cannot open the secrets of this data dir: the master key differs from the one that " +
        "encrypted them (set the original DOHOST_MASTER_KEY or restore <data-dir>/master_key)",
    );
  }
}

function derive(secret: string): Uint8Array {
  return new Uint8Array(hkdfSync("sha256", secret, "dohost", "dohost master key v1", 32));
}
