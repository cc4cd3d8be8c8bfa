/** @jsxImportSource preact */
/// <reference lib="dom" />
/**
 * One class: its status (with the error of a failed deploy), tabs for its instances, live logs
 * and the "try it" panel, and the redeploy and delete actions. Deleting asks first and says
 * what goes with it (instances, their storage, live connections).
 */

import type { JSX } from "preact";
import { useState } from "preact/hooks";
import { type Api, classPath } from "../api.ts";
import { bytes, dateTime } from "../format.ts";
import { useLoad } from "../hooks.ts";
import { href, navigate, type Route } from "../route.ts";
import type { AppInfo, ClassInfo, InstanceInfo } from "../types.ts";
import { InstancesView } from "./instances_view.tsx";
import { LogsView } from "./logs_view.tsx";
import { TryView } from "./try_view.tsx";
import { Badge, ConfirmDialog, ErrorBox, Loading, PageTitle } from "./ui.tsx";

type ClassRoute = Extract<Route, { view: "instances" | "logs" | "try" }>;

/** The class page and its current tab. */
export function ClassView(props: { api: Api; route: ClassRoute }): JSX.Element {
  const { api, route } = props;
  const info = useLoad(async () => {
    const [record, apps] = await Promise.all([
      api.get<ClassInfo>(classPath(route.app, route.name)),
      api.get<{ apps: AppInfo[] }>("/v1/apps"),
    ]);
    return { record, app: apps.apps.find((app) => app.app_id === route.app) ?? null };
  }, [api, route.app, route.name]);
  const record = info.data?.record;
  const tabs: [ClassRoute["view"], string][] = [
    ["instances", "Instances"],
    ["logs", "Logs"],
    ["try", "Try it"],
  ];
  return (
    <>
      <div class="row spread">
        <PageTitle>
          {route.name} {record && <Badge value={record.status} />}
        </PageTitle>
        <div class="row">
          <a class="button" href={href({ view: "deploy", app: route.app, name: route.name })}>
            Redeploy
          </a>
          <DeleteClass api={api} app={route.app} name={route.name} />
        </div>
      </div>
      <Loading loading={info.loading && !info.data} />
      <ErrorBox error={info.error} />
      {record && (
        <p class="muted small">
          <code>{record.class_name ?? "no class"}</code> · access {record.access_mode} · deployed
          {" "}
          {dateTime(record.last_deployed_at)}
        </p>
      )}
      {record?.error_message && (
        <div class="box error" role="alert">
          <strong>Deploy failed:</strong> {record.error_message}
        </div>
      )}
      <nav aria-label="Class views" class="tabs">
        {tabs.map(([view, label]) => (
          <a
            key={view}
            href={href({ view, app: route.app, name: route.name, instance: null })}
            aria-current={route.view === view ? "page" : undefined}
          >
            {label}
          </a>
        ))}
      </nav>
      {route.view === "instances" && <InstancesView api={api} app={route.app} name={route.name} />}
      {route.view === "logs" && (
        <LogsView api={api} app={route.app} name={route.name} instance={route.instance} />
      )}
      {route.view === "try" && (
        <TryView
          api={api}
          app={info.data?.app ?? null}
          appId={route.app}
          name={route.name}
          instance={route.instance}
          accessMode={record?.access_mode ?? null}
        />
      )}
    </>
  );
}

function DeleteClass(props: { api: Api; app: string; name: string }): JSX.Element {
  const { api, app, name } = props;
  const [open, setOpen] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [instances, setInstances] = useState<InstanceInfo[] | null>(null);
  const show = () => {
    setOpen(true);
    setError(null);
    setInstances(null);
    api.get<{ instances: InstanceInfo[] }>(`${classPath(app, name)}/instances`).then(
      (answer) => setInstances(answer.instances),
      () => setInstances([]),
    );
  };
  const remove = async () => {
    setBusy(true);
    try {
      await api.json("DELETE", classPath(app, name));
      setOpen(false);
      navigate({ view: "apps" });
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy(false);
    }
  };
  const stored = instances?.reduce((sum, item) => sum + item.storage_bytes, 0) ?? 0;
  const live = instances?.filter((item) => item.state !== "stopped").length ?? 0;
  const sockets = instances?.reduce((sum, item) => sum + item.sockets, 0) ?? 0;
  return (
    <>
      <button type="button" class="danger" onClick={show}>Delete class</button>
      <ConfirmDialog
        open={open}
        title={`Delete ${name}?`}
        confirm="Delete class and purge storage"
        busy={busy}
        error={error}
        onConfirm={remove}
        onCancel={() => setOpen(false)}
      >
        <p>This cannot be undone. Deleting the class:</p>
        {instances === null ? <p role="status">Counting instances…</p> : (
          <ul>
            <li>
              purges <strong>{instances.length}</strong> instance{instances.length === 1 ? "" : "s"}
              {" "}
              and all their storage ({bytes(stored)}: KV data, SQL tables, alarms);
            </li>
            <li>
              stops <strong>{live}</strong> running instance{live === 1 ? "" : "s"} and closes{" "}
              <strong>{sockets}</strong> WebSocket{sockets === 1 ? "" : "s"};
            </li>
            <li>removes the class's code; the app's env vars stay.</li>
          </ul>
        )}
      </ConfirmDialog>
    </>
  );
}
