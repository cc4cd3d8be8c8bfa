/** @jsxImportSource preact */
/// <reference lib="dom" />
/**
 * The overview: every app the token can see, each with its classes (status and the error of a
 * failed deploy, access mode, last deploy, usage this month, storage). The admin can create
 * apps here; the new app's secrets are shown once.
 */

import type { JSX } from "preact";
import { useState } from "preact/hooks";
import { type Api, classPath } from "../api.ts";
import { bytes, count, dateTime } from "../format.ts";
import { useLoad } from "../hooks.ts";
import { href } from "../route.ts";
import { isServiceKey } from "../session.ts";
import type { AppInfo, ClassInfo, UsageReport } from "../types.ts";
import { Badge, ErrorBox, Loading, PageTitle } from "./ui.tsx";

/** The apps overview. */
export function AppsView(props: { api: Api }): JSX.Element {
  const { api } = props;
  const apps = useLoad(() => api.get<{ apps: AppInfo[] }>("/v1/apps"), [api]);
  return (
    <>
      <PageTitle>Apps and classes</PageTitle>
      <Loading loading={apps.loading && !apps.data} />
      <ErrorBox error={apps.error} />
      {apps.data?.apps.map((app) => <AppSection key={app.app_id} api={api} app={app} />)}
      {!isServiceKey(api.token) && <CreateApp api={api} onCreated={apps.reload} />}
    </>
  );
}

function AppSection(props: { api: Api; app: AppInfo }): JSX.Element {
  const { api, app } = props;
  const classes = useLoad(async () => {
    const base = `/v1/${encodeURIComponent(app.app_id)}/durable-objects`;
    const list = (await api.get<{ durable_objects: ClassInfo[] }>(base)).durable_objects;
    const first = list[0];
    const usage = first
      ? await api.get<UsageReport>(`${classPath(app.app_id, first.name)}/usage`)
      : null;
    return { list, usage };
  }, [api, app.app_id]);
  const headingId = `app-${app.app_id}`;
  return (
    <section class="card" aria-labelledby={headingId}>
      <div class="row spread">
        <h2 id={headingId}>
          {app.name} <span class="muted mono small">{app.app_id}</span>
        </h2>
        <div class="row">
          <a class="button" href={href({ view: "deploy", app: app.app_id, name: null })}>
            Deploy a class
          </a>
          <a class="button" href={href({ view: "env", app: app.app_id })}>Env vars</a>
        </div>
      </div>
      <p class="muted small">
        Subdomain <code>{app.subdomain}</code>
        {app.service_key_prefix && (
          <>
            {" "}· service key <code>{app.service_key_prefix}…</code>
          </>
        )}
      </p>
      <Loading loading={classes.loading && !classes.data} />
      <ErrorBox error={classes.error} />
      {classes.data && classes.data.list.length === 0 && <p class="muted">No classes yet.</p>}
      {classes.data && classes.data.list.length > 0 && (
        <ClassTable app={app.app_id} list={classes.data.list} usage={classes.data.usage} />
      )}
    </section>
  );
}

function ClassTable(
  props: { app: string; list: ClassInfo[]; usage: UsageReport | null },
): JSX.Element {
  const usageOf = (name: string) => props.usage?.classes.find((row) => row.name === name);
  return (
    <div class="table-wrap">
      <table>
        <caption class="sr-only">Classes of {props.app}</caption>
        <thead>
          <tr>
            <th scope="col">Class</th>
            <th scope="col">Status</th>
            <th scope="col">Access</th>
            <th scope="col">Last deploy</th>
            <th scope="col" class="num">Requests (month)</th>
            <th scope="col" class="num">CPU ms (month)</th>
            <th scope="col" class="num">Storage</th>
          </tr>
        </thead>
        <tbody>
          {props.list.map((item) => {
            const usage = usageOf(item.name);
            return (
              <tr key={item.name}>
                <th scope="row">
                  <a href={href({ view: "instances", app: props.app, name: item.name })}>
                    {item.name}
                  </a>
                  {item.class_name && <div class="muted small mono">{item.class_name}</div>}
                </th>
                <td>
                  <Badge value={item.status} />
                  {item.error_message && <div class="error-text small">{item.error_message}</div>}
                </td>
                <td>{item.access_mode}</td>
                <td>{dateTime(item.last_deployed_at)}</td>
                <td class="num">{count(usage?.month.requests ?? 0)}</td>
                <td class="num">{count(usage?.month.cpu_ms ?? 0)}</td>
                <td class="num">{bytes(usage?.storage_bytes ?? 0)}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

interface CreatedApp {
  app_id: string;
  name: string;
  subdomain: string;
  service_key: string;
  jwt_secret: string;
}

function CreateApp(props: { api: Api; onCreated: () => void }): JSX.Element {
  const [name, setName] = useState("");
  const [created, setCreated] = useState<CreatedApp | null>(null);
  const [error, setError] = useState<unknown>(null);
  const submit = async (event: Event) => {
    event.preventDefault();
    setError(null);
    try {
      setCreated(await props.api.json<CreatedApp>("POST", "/v1/apps", { name }));
      setName("");
      props.onCreated();
    } catch (failure) {
      setError(failure);
    }
  };
  return (
    <section class="card" aria-labelledby="create-app">
      <h2 id="create-app">Create an app</h2>
      <form class="row" onSubmit={submit}>
        <label for="app-name">Name</label>
        <input
          id="app-name"
          value={name}
          required
          onInput={(event) => setName(event.currentTarget.value)}
        />
        <button type="submit">Create</button>
      </form>
      <ErrorBox error={error} />
      {created && (
        <div class="box notice" role="status">
          <p>
            Created <strong>{created.name}</strong> (<code>{created.app_id}</code>, subdomain{" "}
            <code>{created.subdomain}</code>). Copy these now: they are not shown again.
          </p>
          <dl>
            <dt>Service key</dt>
            <dd class="mono break">{created.service_key}</dd>
            <dt>JWT secret</dt>
            <dd class="mono break">{created.jwt_secret}</dd>
          </dl>
        </div>
      )}
    </section>
  );
}
