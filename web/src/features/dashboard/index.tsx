"use client";

// The dashboard: header with market clocks, banners, and the widget grid of the saved layout.
// The grid re-renders only when the layout changes; ticks reach the rows through their own
// per-instrument queries.
import { useCallback, useState, useSyncExternalStore } from "react";
import { ChartWidget } from "@/features/chart/chart-widget";
import { useLayoutStore, type LayoutStore } from "@/features/layout/use-layout";
import { usePrefs } from "@/features/prefs/prefs";
import { ReplayBanner } from "@/features/replay/components/replay-banner";
import { setChart } from "@/lib/layout";
import { ConnectionBanner, SourceNotice } from "./components/banners";
import { Header } from "./components/header";
import { NewsWidget } from "./components/news-widget";
import { QuotesWidget } from "./components/quotes-widget";

const noop = () => () => {};

/** Renders the dashboard only in the browser: the static HTML is the shell and a skeleton. */
export function Dashboard() {
  const client = useSyncExternalStore(noop, () => true, () => false);
  if (!client) {
    return (
      <>
        <Header />
        <main className="mx-auto max-w-[2560px] p-3 sm:p-4" aria-busy="true">
          <div className="grid grid-cols-1 gap-3 sm:grid-cols-2 xl:grid-cols-3">
            {Array.from({ length: 6 }, (_, i) => (
              <div key={i} className="h-48 animate-pulse rounded-xl bg-slate-200/60 dark:bg-slate-800/60" />
            ))}
          </div>
        </main>
      </>
    );
  }
  return <LiveDashboard />;
}

function LayoutControls({ store }: { store: LayoutStore }) {
  const { t } = usePrefs();
  const [copied, setCopied] = useState(false);
  const saveText = store.saveState === "saving" ? t("saving") : store.saveState === "saved" ? t("saved") : store.saveState === "error" ? t("saveFailed") : "";
  return (
    <>
      {saveText ? (
        <span data-testid="save-state" data-state={store.saveState} className="hidden text-xs text-slate-500 md:inline">
          {saveText}
        </span>
      ) : null}
      {store.layoutId ? (
        <button
          type="button"
          data-testid="share"
          onClick={() => {
            void navigator.clipboard?.writeText(store.shareUrl()).then(() => {
              setCopied(true);
              setTimeout(() => setCopied(false), 1500);
            });
          }}
          className="rounded-md border border-slate-200 px-2 py-1 text-xs outline-none hover:bg-slate-100 focus-visible:ring-2 focus-visible:ring-sky-500 dark:border-slate-700 dark:hover:bg-slate-800"
        >
          {copied ? t("copied") : t("share")}
        </button>
      ) : null}
    </>
  );
}

function LiveDashboard() {
  const { t } = usePrefs();
  const store = useLayoutStore();
  const { layout, editable, update } = store;
  const select = useCallback((id: string) => update((l) => setChart(l, { id })), [update]);

  return (
    <>
      <Header right={<LayoutControls store={store} />} />
      <main className="mx-auto flex max-w-[2560px] flex-col gap-3 p-3 sm:p-4" data-testid="dashboard" data-layout-id={store.layoutId ?? ""} data-editable={editable}>
        <ReplayBanner />
        <ConnectionBanner />
        {!editable ? (
          <div data-testid="readonly-banner" role="status" className="flex flex-wrap items-center gap-3 rounded-lg border border-sky-300 bg-sky-50 px-4 py-2 text-sm text-sky-900 dark:border-sky-500/40 dark:bg-sky-500/10 dark:text-sky-100">
            <span className="flex-1">🔒 {store.missing ? t("layoutMissing") : t("readOnly")}</span>
            <button
              type="button"
              data-testid="copy-layout"
              onClick={() => void store.copyToMine()}
              className="rounded-md bg-sky-600 px-3 py-1 text-xs font-semibold text-white outline-none hover:bg-sky-700 focus-visible:ring-2 focus-visible:ring-sky-400"
            >
              {t("copyMine")}
            </button>
          </div>
        ) : null}
        <SourceNotice />
        {store.ready ? (
          <div className="grid grid-flow-row-dense auto-rows-[4px] grid-cols-1 items-start gap-x-3 sm:grid-cols-2 xl:grid-cols-3 3xl:grid-cols-4 4xl:grid-cols-5">
            {layout.widgets.map((w) =>
              w.kind === "quotes" ? (
                <QuotesWidget key={w.id} widget={w} editable={editable} selectedId={layout.chart.id} onSelect={select} update={update} />
              ) : w.kind === "chart" ? (
                <ChartWidget key={w.id} widget={w} layout={layout} editable={editable} update={update} />
              ) : (
                <NewsWidget key={w.id} widget={w} editable={editable} selectedId={layout.chart.id} update={update} />
              ),
            )}
          </div>
        ) : (
          <p className="p-6 text-sm text-slate-500">…</p>
        )}
      </main>
    </>
  );
}
