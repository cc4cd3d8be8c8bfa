/** @jsxImportSource preact */
/// <reference lib="dom" />
/**
 * The instances of a class (live, hibernated, stopped), with sockets, storage size, pending
 * alarm and last activity; sortable by any column and filterable by name and state. Each row
 * links to its storage, logs and "try it", exports its SQLite file, or purges it.
 */

import type { JSX } from "preact";
import { useState } from "preact/hooks";
import { type Api, classPath, instancePath } from "../api.ts";
import { ago, bytes, dateTime } from "../format.ts";
import { useInterval, useLoad } from "../hooks.ts";
import { href } from "../route.ts";
import type { InstanceInfo } from "../types.ts";
import { Badge, ConfirmDialog, ErrorBox, Loading } from "./ui.tsx";

type Column = "name" | "state" | "sockets" | "storage_bytes" | "alarm" | "last_active";

const COLUMNS: [Column, string][] = [
  ["name", "Instance"],
  ["state", "State"],
  ["sockets", "Sockets"],
  ["storage_bytes", "Storage"],
  ["alarm", "Alarm"],
  ["last_active", "Last active"],
];

const REFRESH_MS = 5000;

/** The instances tab of a class. */
export function InstancesView(props: { api: Api; app: string; name: string }): JSX.Element {
  const { api, app, name } = props;
  const list = useLoad(
    () => api.get<{ instances: InstanceInfo[] }>(`${classPath(app, name)}/instances`),
    [api, app, name],
  );
  useInterval(list.reload, REFRESH_MS);
  const [filter, setFilter] = useState("");
  const [state, setState] = useState("all");
  const [sort, setSort] = useState<{ column: Column; ascending: boolean }>({
    column: "last_active",
    ascending: false,
  });
  const [purging, setPurging] = useState<InstanceInfo | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);

  const needle = filter.trim().toLowerCase();
  const rows = (list.data?.instances ?? [])
    .filter((item) => state === "all" || item.state === state)
    .filter((item) =>
      !needle || label(item).toLowerCase().includes(needle) || item.id.includes(needle)
    )
    .sort((a, b) => compare(a, b, sort.column) * (sort.ascending ? 1 : -1));

  const purge = async () => {
    if (!purging) return;
    setBusy(true);
    try {
      await api.json("DELETE", instancePath(app, name, purging.id));
      setPurging(null);
      list.reload();
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy(false);
    }
  };
  const exportFile = async (item: InstanceInfo) => {
    setError(null);
    try {
      const response = await api.raw(`${instancePath(app, name, item.id)}/export`);
      const link = document.createElement("a");
      link.href = URL.createObjectURL(await response.blob());
      link.download = `${name}-${item.name ?? item.id}.sqlite`;
      link.click();
      setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
    } catch (failure) {
      setError(failure);
    }
  };

  return (
    <section aria-label="Instances">
      <div class="row filters">
        <label for="instance-filter">Filter</label>
        <input
          id="instance-filter"
          type="search"
          placeholder="name or id"
          value={filter}
          onInput={(event) => setFilter(event.currentTarget.value)}
        />
        <label for="instance-state">State</label>
        <select
          id="instance-state"
          value={state}
          onChange={(event) => setState(event.currentTarget.value)}
        >
          <option value="all">all</option>
          <option value="live">live</option>
          <option value="hibernated">hibernated</option>
          <option value="stopped">stopped</option>
        </select>
        <button type="button" onClick={list.reload}>Refresh</button>
      </div>
      <Loading loading={list.loading && !list.data} />
      <ErrorBox error={list.error ?? error} />
      {list.data && (
        <div class="table-wrap">
          <table>
            <caption class="sr-only">
              Instances of {name}, sorted by {sort.column}{" "}
              {sort.ascending ? "ascending" : "descending"}
            </caption>
            <thead>
              <tr>
                {COLUMNS.map(([column, title]) => (
                  <th
                    key={column}
                    scope="col"
                    class={column === "sockets" || column === "storage_bytes" ? "num" : undefined}
                    aria-sort={sort.column === column
                      ? (sort.ascending ? "ascending" : "descending")
                      : "none"}
                  >
                    <button
                      type="button"
                      class="sort"
                      onClick={() =>
                        setSort({
                          column,
                          ascending: sort.column === column ? !sort.ascending : true,
                        })}
                    >
                      {title}
                      <span aria-hidden="true">
                        {sort.column === column ? (sort.ascending ? " ▲" : " ▼") : ""}
                      </span>
                    </button>
                  </th>
                ))}
                <th scope="col">Actions</th>
              </tr>
            </thead>
            <tbody>
              {rows.length === 0 && (
                <tr>
                  <td colSpan={COLUMNS.length + 1} class="muted">No instances.</td>
                </tr>
              )}
              {rows.map((item) => (
                <tr key={item.id}>
                  <th scope="row">
                    <a href={href({ view: "storage", app, name, id: item.name ?? item.id })}>
                      {label(item)}
                    </a>
                    <div class="muted small mono" title={item.id}>{item.id.slice(0, 16)}…</div>
                  </th>
                  <td>
                    <Badge value={item.state} />
                  </td>
                  <td class="num">{item.sockets}</td>
                  <td class="num">{bytes(item.storage_bytes)}</td>
                  <td title={dateTime(item.alarm)}>{ago(item.alarm)}</td>
                  <td title={dateTime(item.last_active)}>{ago(item.last_active)}</td>
                  <td>
                    <div class="row nowrap">
                      <a href={href({ view: "logs", app, name, instance: item.name ?? item.id })}>
                        Logs
                      </a>
                      <a href={href({ view: "try", app, name, instance: item.name ?? item.id })}>
                        Try
                      </a>
                      <button type="button" onClick={() => exportFile(item)}>
                        Export <span class="sr-only">{label(item)}</span>
                      </button>
                      <button type="button" class="danger" onClick={() => setPurging(item)}>
                        Purge <span class="sr-only">{label(item)}</span>
                      </button>
                    </div>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <ConfirmDialog
        open={purging !== null}
        title={`Purge ${purging ? label(purging) : ""}?`}
        confirm="Purge instance"
        busy={busy}
        error={error}
        onConfirm={purge}
        onCancel={() => setPurging(null)}
      >
        <p>
          This stops the instance if it runs, closes its {purging?.sockets ?? 0}{" "}
          WebSocket(s) and deletes its storage ({bytes(purging?.storage_bytes ?? 0)}: KV data, SQL
          tables and its alarm). The next request starts it empty. This cannot be undone.
        </p>
      </ConfirmDialog>
    </section>
  );
}

function label(item: InstanceInfo): string {
  return item.name ?? `${item.id.slice(0, 12)}…`;
}

function compare(a: InstanceInfo, b: InstanceInfo, column: Column): number {
  switch (column) {
    case "name":
      return label(a).localeCompare(label(b));
    case "state":
    case "alarm":
    case "last_active":
      return (a[column] ?? "").localeCompare(b[column] ?? "");
    case "sockets":
    case "storage_bytes":
      return a[column] - b[column];
    default: {
      const unknown: never = column;
      throw new Error(`unknown column ${unknown}`);
    }
  }
}
