/// <reference lib="dom" />
/**
 * The sign-in token lives in `sessionStorage` only: it is gone when the tab closes and is never
 * written to `localStorage`, cookies or URLs.
 */

const KEY = "dohost.token";

/** The token of this tab's session, or null. */
export function loadToken(): string | null {
  try {
    return sessionStorage.getItem(KEY);
  } catch {
    return null;
  }
}

/** Keeps `token` for this tab, or forgets it (`null`). */
export function saveToken(token: string | null): void {
  try {
    if (token === null) sessionStorage.removeItem(KEY);
    else sessionStorage.setItem(KEY, token);
  } catch {
    // storage disabled: the session lasts as long as the page
  }
}

/** Whether a token is an app's service key (as opposed to the admin token). */
export function isServiceKey(token: string): boolean {
  return token.startsWith("bb_sk_");
}
