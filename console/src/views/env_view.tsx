/** @jsxImportSource preact */
/// <reference lib="dom" />
/**
 * An app's env vars: the keys (values are never returned by the server, so never shown), a
 * form to set one and a delete button per key. Both stop the app's live instances, which the
 * page says before anything is changed.
 */

import type { JSX } from "preact";
import { useState } from "preact/hooks";
import type { Api } from "../api.ts";
import { useLoad } from "../hooks.ts";
import { ConfirmDialog, ErrorBox, Loading, PageTitle } from "./ui.tsx";

/** The env vars page. */
export function EnvView(props: { api: Api; app: string }): JSX.Element {
  const { api, app } = props;
  const base = `/v1/${encodeURIComponent(app)}/durable-objects/env`;
  const keys = useLoad(() => api.get<{ keys: string[] }>(base), [api, base]);
  const [key, setKey] = useState("");
  const [value, setValue] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [removing, setRemoving] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const set = async (event: Event) => {
    event.preventDefault();
    setError(null);
    setNotice(null);
    setBusy(true);
    try {
      await api.json("PUT", `${base}/${encodeURIComponent(key)}`, { value });
      setNotice(`Saved ${key}. Live instances of the app were stopped.`);
      setKey("");
      setValue("");
      keys.reload();
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy(false);
    }
  };
  const remove = async () => {
    if (!removing) return;
    setBusy(true);
    try {
      await api.json("DELETE", `${base}/${encodeURIComponent(removing)}`);
      setNotice(`Deleted ${removing}. Live instances of the app were stopped.`);
      setRemoving(null);
      keys.reload();
    } catch (failure) {
      setError(failure);
      setRemoving(null);
    } finally {
      setBusy(false);
    }
  };

  return (
    <>
      <PageTitle>Env vars of {app}</PageTitle>
      <div class="box warn">
        Setting or deleting a variable <strong>stops every live instance of this app</strong>{" "}
        (like a redeploy): in-memory state and open WebSockets are lost, storage is kept, and the
        next request starts the object with the new values. Values are write-only: they are never
        shown again.
      </div>
      <Loading loading={keys.loading && !keys.data} />
      <ErrorBox error={keys.error} />
      {keys.data && (
        keys.data.keys.length === 0
          ? <p class="muted">No env vars.</p>
          : (
            <ul class="plain" aria-label="Env var keys">
              {keys.data.keys.map((name) => (
                <li key={name} class="row spread line">
                  <code>{name}</code>
                  <button type="button" class="danger" onClick={() => setRemoving(name)}>
                    Delete <span class="sr-only">{name}</span>
                  </button>
                </li>
              ))}
            </ul>
          )
      )}
      <h2>Set a variable</h2>
      <form class="grid2" onSubmit={set}>
        <div class="stack">
          <label for="env-key">Key</label>
          <input
            id="env-key"
            value={key}
            required
            pattern="[A-Z_][A-Z0-9_]*"
            autocomplete="off"
            onInput={(event) => setKey(event.currentTarget.value)}
          />
        </div>
        <div class="stack">
          <label for="env-value">Value</label>
          <input
            id="env-value"
            type="password"
            value={value}
            autocomplete="new-password"
            onInput={(event) => setValue(event.currentTarget.value)}
          />
        </div>
        <div>
          <button type="submit" class="primary" disabled={busy}>Set and restart instances</button>
        </div>
      </form>
      <ErrorBox error={error} />
      {notice && <p class="box notice" role="status">{notice}</p>}
      <ConfirmDialog
        open={removing !== null}
        title={`Delete ${removing ?? ""}?`}
        confirm="Delete and restart instances"
        busy={busy}
        onConfirm={remove}
        onCancel={() => setRemoving(null)}
      >
        <p>
          The variable is removed and every live instance of {app}{" "}
          is stopped; the next request starts them without it.
        </p>
      </ConfirmDialog>
    </>
  );
}
