/**
 * End-user JWTs for `authenticated` classes, per app.
 *
 * By default a token must be signed HS256 with the app's `jwt_secret`. An app can instead name
 * the public keys of its identity provider: an inline JWKS or a JWKS URL (RS256, ES256 and
 * EdDSA), and optionally require an issuer and an audience. Verification is jose's: the
 * signature, `exp` and `nbf` are checked, `alg: none` and algorithms outside the mode's list are
 * refused, and any failure (malformed, expired, wrong key, unreachable JWKS) is simply "not
 * authenticated", so the caller gets a 401 before any instance is woken.
 */

import {
  createLocalJWKSet,
  createRemoteJWKSet,
  customFetch,
  type FetchImplementation,
  importJWK,
  type JSONWebKeySet,
  type JWK,
  jwtVerify,
  type JWTVerifyGetKey,
} from "jose";
import type { DatabaseSync } from "node:sqlite";
import { ServerError } from "./errors.ts";

/** Algorithms accepted with a JWKS (inline or URL). */
const ASYMMETRIC_ALGS = ["RS256", "ES256", "EdDSA", "Ed25519"];
const KEY_TYPES = new Set(["RSA", "EC", "OKP"]);
/** JWK members that only private or symmetric keys have: such keys are refused. */
const PRIVATE_MEMBERS = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];
const MAX_KEYS = 20;
const MAX_FIELD_CHARS = 2048;

/** How an app's end-user tokens are verified. */
export interface JwtSettings {
  /** Inline public keys; null means none. */
  jwks: JSONWebKeySet | null;
  /** Where the public keys are fetched from; null means none. */
  jwksUrl: string | null;
  /** Required `iss`, or null. */
  issuer: string | null;
  /** Accepted `aud` values (any one must match), or null. */
  audience: string[] | null;
}

/** A change to {@linkcode JwtSettings}: present fields are set, `null` clears. */
export type JwtSettingsPatch = { [K in keyof JwtSettings]?: JwtSettings[K] };

/** Options for {@linkcode AppAuthStore}. */
export interface AppAuthOptions {
  /** The fetch used for JWKS URLs (the server's outbound policy applies to it). */
  fetch: FetchImplementation;
}

const NONE: JwtSettings = { jwks: null, jwksUrl: null, issuer: null, audience: null };

/** The `app_auth` table and token verification. */
export class AppAuthStore {
  readonly #db: DatabaseSync;
  readonly #options: AppAuthOptions;
  readonly #settings = new Map<string, JwtSettings>();
  readonly #keySets = new Map<string, JWTVerifyGetKey>();

  constructor(db: DatabaseSync, options: AppAuthOptions) {
    this.#db = db;
    this.#options = options;
    for (const row of db.prepare("SELECT * FROM app_auth").all()) {
      this.#settings.set(String(row.app_id), fromRow(row));
    }
  }

  /** The app's settings (HS256 with its secret when nothing is configured). */
  settings(appId: string): JwtSettings {
    return this.#settings.get(appId) ?? NONE;
  }

  /** Applies `patch` after validating it; returns the new settings. */
  async update(appId: string, patch: JwtSettingsPatch): Promise<JwtSettings> {
    const next: JwtSettings = { ...this.settings(appId), ...patch };
    await validate(next);
    this.#db.prepare(
      `INSERT INTO app_auth (app_id, jwks, jwks_url, issuer, audience, updated_at)
       VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (app_id) DO UPDATE SET jwks = excluded.jwks, jwks_url = excluded.jwks_url,
         issuer = excluded.issuer, audience = excluded.audience, updated_at = excluded.updated_at`,
    ).run(
      appId,
      next.jwks ? JSON.stringify(next.jwks) : null,
      next.jwksUrl,
      next.issuer,
      next.audience ? JSON.stringify(next.audience) : null,
      new Date().toISOString(),
    );
    this.#settings.set(appId, next);
    this.#keySets.delete(appId);
    return next;
  }

  /** Whether `token` is a valid end-user JWT of the app whose HS256 secret is `secret`. */
  async verify(appId: string, secret: string, token: string): Promise<boolean> {
    const settings = this.settings(appId);
    const claims = {
      issuer: settings.issuer ?? undefined,
      audience: settings.audience ?? undefined,
    };
    try {
      if (settings.jwks || settings.jwksUrl) {
        await jwtVerify(token, this.#keySet(appId, settings), {
          ...claims,
          algorithms: ASYMMETRIC_ALGS,
        });
      } else {
        await jwtVerify(token, new TextEncoder().encode(secret), {
          ...claims,
          algorithms: ["HS256"],
        });
      }
      return true;
    } catch {
      return false;
    }
  }

  /** Forgets a deleted app (its row cascades with the app row). */
  forgetApp(appId: string): void {
    this.#settings.delete(appId);
    this.#keySets.delete(appId);
  }

  #keySet(appId: string, settings: JwtSettings): JWTVerifyGetKey {
    let keySet = this.#keySets.get(appId);
    if (!keySet) {
      keySet = settings.jwks ? createLocalJWKSet(settings.jwks) : createRemoteJWKSet(
        new URL(settings.jwksUrl ?? ""),
        {
          timeoutDuration: 5_000,
          cooldownDuration: 30_000,
          cacheMaxAge: 10 * 60_000,
          [customFetch]: this.#options.fetch,
        },
      );
      this.#keySets.set(appId, keySet);
    }
    return keySet;
  }
}

/** The public view of the settings (what `PATCH /v1/apps/:appId` answers). */
export function publicSettings(settings: JwtSettings): Record<string, unknown> {
  return {
    mode: settings.jwks ? "jwks" : settings.jwksUrl ? "jwks_url" : "hs256",
    jwks: settings.jwks,
    jwks_url: settings.jwksUrl,
    issuer: settings.issuer,
    audience: settings.audience,
  };
}

async function validate(settings: JwtSettings): Promise<void> {
  if (settings.jwks && settings.jwksUrl) {
    throw invalid("Set either jwks or jwks_url, not both");
  }
  if (settings.jwksUrl !== null) {
    let url: URL;
    try {
      url = new URL(settings.jwksUrl);
    } catch {
      throw invalid(`Invalid jwks_url "${settings.jwksUrl}": not a URL`);
    }
    if (url.protocol !== "https:" && url.protocol !== "http:") {
      throw invalid(`Invalid jwks_url "${settings.jwksUrl}": only http(s) URLs are fetched`);
    }
  }
  for (const text of [settings.jwksUrl, settings.issuer, ...(settings.audience ?? [])]) {
    if (text !== null && (text.length === 0 || text.length > MAX_FIELD_CHARS)) {
      throw invalid(`Invalid value "${text.slice(0, 40)}": expected 1 to 2048 characters`);
    }
  }
  if (settings.audience !== null && settings.audience.length === 0) {
    throw invalid("Invalid audience: give at least one value or null");
  }
  if (settings.jwks) await validateJwks(settings.jwks);
}

async function validateJwks(jwks: JSONWebKeySet): Promise<void> {
  const keys: unknown = (jwks as { keys?: unknown }).keys;
  if (!Array.isArray(keys) || keys.length === 0 || keys.length > MAX_KEYS) {
    throw invalid(`Invalid jwks: expected {"keys": [...]} with 1 to ${MAX_KEYS} keys`);
  }
  for (const [index, key] of keys.entries()) {
    if (typeof key !== "object" || key === null) throw invalid(`Invalid jwks key ${index}`);
    const jwk = key as JWK;
    if (!KEY_TYPES.has(String(jwk.kty))) {
      throw invalid(`Invalid jwks key ${index}: kty must be RSA, EC or OKP`);
    }
    if (PRIVATE_MEMBERS.some((member) => member in jwk)) {
      throw invalid(`Invalid jwks key ${index}: give public keys only`);
    }
    if (jwk.alg !== undefined && !ASYMMETRIC_ALGS.includes(jwk.alg)) {
      throw invalid(`Invalid jwks key ${index}: alg must be RS256, ES256 or EdDSA`);
    }
    const alg = jwk.alg ?? (jwk.kty === "RSA" ? "RS256" : jwk.kty === "EC" ? "ES256" : "EdDSA");
    try {
      await importJWK(jwk, alg);
    } catch (error) {
      throw invalid(
        `Invalid jwks key ${index}: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
  }
}

function invalid(message: string): ServerError {
  return new ServerError("VALIDATION_INVALID_SCHEMA", message, {
    reason: "INVALID_JWT_SETTINGS",
    remediation: "Fix the jwt settings and retry.",
  });
}

function fromRow(row: Record<string, unknown>): JwtSettings {
  const json = (value: unknown) => (typeof value === "string" ? JSON.parse(value) : null);
  return {
    jwks: json(row.jwks),
    jwksUrl: typeof row.jwks_url === "string" ? row.jwks_url : null,
    issuer: typeof row.issuer === "string" ? row.issuer : null,
    audience: json(row.audience),
  };
}
