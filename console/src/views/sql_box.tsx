/** @jsxImportSource preact */
/// <reference lib="dom" />
/**
 * A read-only SQL box: the server runs the query on a read-only handle of the instance's file
 * (writes are refused), and the rows come back as a table. Ctrl+Enter runs it.
 */

import type { JSX } from "preact";
import { useState } from "preact/hooks";
import type { Api } from "../api.ts";
import type { SqlResult } from "../types.ts";
import { ErrorBox } from "./ui.tsx";

const DEFAULT_QUERY = "SELECT type, name FROM sqlite_master ORDER BY name";

/** The SQL box posting to `path` (`…/instances/:id/sql`). */
export function SqlBox(props: { api: Api; path: string }): JSX.Element {
  const [query, setQuery] = useState(DEFAULT_QUERY);
  const [result, setResult] = useState<SqlResult | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const run = async (event?: Event) => {
    event?.preventDefault();
    setBusy(true);
    setError(null);
    try {
      setResult(await props.api.json<SqlResult>("POST", props.path, { query }));
    } catch (failure) {
      setError(failure);
      setResult(null);
    } finally {
      setBusy(false);
    }
  };
  return (
    <section aria-labelledby="sql-title" class="card">
      <h2 id="sql-title">SQL (read-only)</h2>
      <form class="stack" onSubmit={run}>
        <label for="sql-query">Query</label>
        <textarea
          id="sql-query"
          class="code"
          rows={4}
          spellcheck={false}
          value={query}
          aria-describedby="sql-help"
          onInput={(event) => setQuery(event.currentTarget.value)}
          onKeyDown={(event) => {
            if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) run(event);
          }}
        />
        <small id="sql-help" class="muted">
          SELECT and read-only PRAGMAs; the object's code does not run. Ctrl+Enter runs it.
        </small>
        <div>
          <button type="submit" class="primary" disabled={busy}>Run query</button>
        </div>
      </form>
      <ErrorBox error={error} title="Query failed" />
      {result && <ResultTable result={result} />}
    </section>
  );
}

function ResultTable(props: { result: SqlResult }): JSX.Element {
  const { columns, rows, truncated } = props.result;
  return (
    <div role="region" aria-label="Query result" aria-live="polite">
      <p class="muted small">
        {rows.length} row{rows.length === 1 ? "" : "s"}
        {truncated && " (truncated: only the first rows are shown)"}
      </p>
      {columns.length > 0 && (
        <div class="table-wrap">
          <table class="results">
            <thead>
              <tr>{columns.map((column) => <th key={column} scope="col">{column}</th>)}</tr>
            </thead>
            <tbody>
              {rows.map((row, i) => (
                <tr key={i}>
                  {columns.map((column) => <td key={column} class="mono">{cell(row[column])}</td>)}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}

function cell(value: unknown): string {
  if (value === null || value === undefined) return "NULL";
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}
