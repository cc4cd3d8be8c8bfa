/** @jsxImportSource preact */
/// <reference lib="dom" />
/**
 * The console shell: sign-in, the header (theme, sign out), breadcrumbs and the view of the
 * current route.
 */

import type { JSX } from "preact";
import { useMemo, useState } from "preact/hooks";
import { Api } from "./api.ts";
import { href, type Route, useRoute } from "./route.ts";
import { isServiceKey, loadToken, saveToken } from "./session.ts";
import { applyTheme, loadTheme, type Theme, THEMES } from "./theme.ts";
import { AppsView } from "./views/apps_view.tsx";
import { ClassView } from "./views/class_view.tsx";
import { DeployView } from "./views/deploy_view.tsx";
import { EnvView } from "./views/env_view.tsx";
import { SignIn } from "./views/sign_in.tsx";
import { StorageView } from "./views/storage_view.tsx";

/** The whole console. */
export function App(): JSX.Element {
  const [token, setToken] = useState(loadToken);
  const route = useRoute();
  const api = useMemo(
    () =>
      token === null ? null : new Api(token, () => {
        saveToken(null);
        setToken(null);
      }),
    [token],
  );
  const signIn = (value: string) => {
    saveToken(value);
    setToken(value);
  };
  return (
    <>
      <a class="skip" href="#main">Skip to content</a>
      <header class="top">
        <a class="brand" href="#/">dohost console</a>
        <div class="top-actions">
          {token && <span class="muted who">{isServiceKey(token) ? "service key" : "admin"}</span>}
          <ThemeToggle />
          {api && (
            <button
              type="button"
              onClick={() => {
                saveToken(null);
                setToken(null);
              }}
            >
              Sign out
            </button>
          )}
        </div>
      </header>
      <main id="main">
        {api ? <View api={api} route={route} /> : <SignIn onSignIn={signIn} />}
      </main>
    </>
  );
}

function View(props: { api: Api; route: Route }): JSX.Element {
  const { api, route } = props;
  switch (route.view) {
    case "apps":
      return <AppsView api={api} />;
    case "deploy":
      return (
        <Page trail={[[route.app, null], [route.name ?? "new class", null]]}>
          <DeployView api={api} app={route.app} name={route.name} />
        </Page>
      );
    case "env":
      return (
        <Page trail={[[route.app, null], ["env", null]]}>
          <EnvView api={api} app={route.app} />
        </Page>
      );
    case "storage":
      return (
        <Page
          trail={[[route.app, null], [route.name, {
            view: "instances",
            app: route.app,
            name: route.name,
          }], [route.id, null]]}
        >
          <StorageView api={api} app={route.app} name={route.name} id={route.id} />
        </Page>
      );
    case "instances":
    case "logs":
    case "try":
      return (
        <Page trail={[[route.app, null], [route.name, null]]}>
          <ClassView api={api} route={route} />
        </Page>
      );
    default: {
      const unknown: never = route;
      throw new Error(`unknown route ${JSON.stringify(unknown)}`);
    }
  }
}

/** A view under the breadcrumb trail `Apps / <app> / …` (`null` links are plain text). */
function Page(
  props: { trail: [string, Route | null][]; children: JSX.Element },
): JSX.Element {
  return (
    <>
      <nav aria-label="Breadcrumb" class="crumbs">
        <ol>
          <li>
            <a href="#/">Apps</a>
          </li>
          {props.trail.map(([label, route], i) => (
            <li key={i}>
              {route ? <a href={href(route)}>{label}</a> : <span>{label}</span>}
            </li>
          ))}
        </ol>
      </nav>
      {props.children}
    </>
  );
}

function ThemeToggle(): JSX.Element {
  const [theme, setTheme] = useState<Theme>(loadTheme);
  const next = THEMES[(THEMES.indexOf(theme) + 1) % THEMES.length] ?? "auto";
  return (
    <button
      type="button"
      aria-label={`Theme: ${theme}. Switch to ${next}`}
      title={`Theme: ${theme}`}
      onClick={() => {
        applyTheme(next);
        setTheme(next);
      }}
    >
      {theme === "dark" ? "Dark" : theme === "light" ? "Light" : "Auto"} theme
    </button>
  );
}
