/** @jsxImportSource preact */
/// <reference lib="dom" />
/**
 * One instance's storage, read from its SQLite file by the server without running the
 * object's code: the KV entries (paged, searchable by prefix) and a read-only SQL box.
 */

import type { JSX } from "preact";
import { useState } from "preact/hooks";
import { type Api, instancePath } from "../api.ts";
import { bytes } from "../format.ts";
import { useLoad } from "../hooks.ts";
import { href } from "../route.ts";
import type { KvPage } from "../types.ts";
import { SqlBox } from "./sql_box.tsx";
import { ErrorBox, Loading, PageTitle } from "./ui.tsx";

const PAGE_SIZE = 50;

/** The storage browser of one instance (`id` is its name or 64-hex id). */
export function StorageView(
  props: { api: Api; app: string; name: string; id: string },
): JSX.Element {
  const { api, app, name, id } = props;
  return (
    <>
      <PageTitle>Instance {id}</PageTitle>
      <p class="row">
        <a href={href({ view: "logs", app, name, instance: id })}>Logs</a>
        <a href={href({ view: "try", app, name, instance: id })}>Try it</a>
      </p>
      <KvBrowser api={api} path={instancePath(app, name, id)} />
      <SqlBox api={api} path={`${instancePath(app, name, id)}/sql`} />
    </>
  );
}

function KvBrowser(props: { api: Api; path: string }): JSX.Element {
  const { api, path } = props;
  const [prefix, setPrefix] = useState("");
  const [query, setQuery] = useState({ prefix: "", start: "" });
  /** The `start` of every page before the current one, for "Previous". */
  const [history, setHistory] = useState<string[]>([]);
  const page = useLoad(() => {
    const params = new URLSearchParams({ ...query, limit: String(PAGE_SIZE) });
    return api.get<KvPage>(`${path}/storage?${params}`);
  }, [api, path, query.prefix, query.start]);

  const search = (event: Event) => {
    event.preventDefault();
    setHistory([]);
    setQuery({ prefix, start: "" });
  };
  const next = () => {
    if (!page.data?.next) return;
    setHistory([...history, query.start]);
    setQuery({ ...query, start: page.data.next });
  };
  const previous = () => {
    setQuery({ ...query, start: history.at(-1) ?? "" });
    setHistory(history.slice(0, -1));
  };

  return (
    <section aria-labelledby="kv-title" class="card">
      <h2 id="kv-title">Key-value storage</h2>
      <form class="row" onSubmit={search} role="search">
        <label for="kv-prefix">Key prefix</label>
        <input
          id="kv-prefix"
          type="search"
          value={prefix}
          onInput={(event) => setPrefix(event.currentTarget.value)}
        />
        <button type="submit">Search</button>
        <button type="button" onClick={page.reload}>Refresh</button>
      </form>
      <Loading loading={page.loading && !page.data} />
      <ErrorBox error={page.error} />
      {page.data && (
        <>
          <div class="table-wrap">
            <table class="kv">
              <caption class="sr-only">
                Keys {query.prefix && `starting with ${query.prefix}`}
              </caption>
              <thead>
                <tr>
                  <th scope="col">Key</th>
                  <th scope="col">Type</th>
                  <th scope="col" class="num">Size</th>
                  <th scope="col">Value</th>
                </tr>
              </thead>
              <tbody>
                {page.data.items.length === 0 && (
                  <tr>
                    <td colSpan={4} class="muted">No keys.</td>
                  </tr>
                )}
                {page.data.items.map((item) => (
                  <tr key={item.key}>
                    <th scope="row" class="mono break">{item.key}</th>
                    <td>{item.type}</td>
                    <td class="num">{bytes(item.size)}</td>
                    <td>
                      <pre class="value">{item.type === "json" ? JSON.stringify(item.value, null, 2) : String(item.value)}</pre>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <div class="row">
            <button type="button" disabled={history.length === 0} onClick={previous}>
              Previous page
            </button>
            <button type="button" disabled={!page.data.next} onClick={next}>Next page</button>
          </div>
        </>
      )}
    </section>
  );
}
