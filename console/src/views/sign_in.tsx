/** @jsxImportSource preact */
/// <reference lib="dom" />
/**
 * Sign-in: the admin token or an app's service key, checked against `GET /v1/apps` before it
 * is kept (in this tab's session only).
 */

import type { JSX } from "preact";
import { useState } from "preact/hooks";
import { Api } from "../api.ts";
import { ErrorBox, PageTitle } from "./ui.tsx";

/** The sign-in form. */
export function SignIn(props: { onSignIn: (token: string) => void }): JSX.Element {
  const [token, setToken] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (event: Event) => {
    event.preventDefault();
    const value = token.trim();
    if (!value) return;
    setBusy(true);
    setError(null);
    try {
      await new Api(value, () => {}).get("/v1/apps");
      props.onSignIn(value);
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy(false);
    }
  };
  return (
    <section class="narrow">
      <PageTitle>Sign in</PageTitle>
      <p class="muted">
        Use the admin token (printed on the first start, kept in{" "}
        <code>data/admin_token</code>) or an app's service key. It is kept in this browser tab only.
      </p>
      <form onSubmit={submit} class="stack">
        <label for="token">Admin token or service key</label>
        <input
          id="token"
          type="password"
          autocomplete="current-password"
          value={token}
          onInput={(event) => setToken(event.currentTarget.value)}
          required
        />
        <ErrorBox error={error} title="Sign-in failed" />
        <div>
          <button type="submit" class="primary" disabled={busy}>
            {busy ? "Checking…" : "Sign in"}
          </button>
        </div>
      </form>
    </section>
  );
}
