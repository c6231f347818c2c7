"use client";

import { useFeedState } from "@/features/live/feed-context";
import { usePrefs, type ThemePref } from "@/features/prefs/prefs";
import { ReplayControl } from "@/features/replay/components/replay-control";
import { replayText } from "@/features/replay/messages";
import { useReplayView } from "@/features/replay/replay-context";
import type { MessageKey } from "@/lib/i18n";
import { clockText, marketSession, type MarketSession } from "@/lib/market-clock";
import { useNow } from "@/lib/use-now";

const NEXT_THEME: Record<ThemePref, ThemePref> = { system: "dark", dark: "light", light: "system" };
const THEME_ICON: Record<ThemePref, string> = { system: "◐", dark: "☾", light: "☀" };
const THEME_LABEL: Record<ThemePref, MessageKey> = { system: "themeSystem", dark: "themeDark", light: "themeLight" };

function sessionKey(s: MarketSession): MessageKey {
  if (s.state === "closed") return s.reason === "holiday" ? "holiday" : "closed";
  return s.state;
}

function MarketClock({ market, label, now, zone }: { market: string; label: MessageKey; now: number; zone?: string }) {
  const { t } = usePrefs();
  const s = now > 0 ? marketSession(market, now) : { state: "closed" as const, reason: null, note: null };
  const open = s.state === "open";
  return (
    <li
      data-testid={`market-${market}`}
      data-state={s.state}
      data-reason={s.reason ?? undefined}
      title={s.note ?? undefined}
      className="flex items-center gap-1.5 whitespace-nowrap"
    >
      <span className={`h-2 w-2 rounded-full ${open ? "bg-emerald-500" : s.state === "closed" ? "bg-slate-400" : "bg-amber-500"}`} aria-hidden />
      <span className="font-medium">{t(label)}</span>
      <span className="text-slate-500 dark:text-slate-400">
        {market === "crypto" ? t("always") : t(sessionKey(s))}
        {s.note ? <span className="ml-1 hidden xl:inline">· {s.note}</span> : null}
        {zone && now > 0 ? <span className="ml-1 hidden tabular-nums md:inline">NY {clockText(now, zone).slice(0, 5)}</span> : null}
      </span>
    </li>
  );
}

export function Header({ right }: { right?: React.ReactNode }) {
  const { t, lang, setLang, theme, setTheme } = usePrefs();
  const now = useNow();
  const conn = useFeedState();
  const connKey: MessageKey = conn.status === "open" ? "live" : conn.status === "connecting" ? "connecting" : "disconnected";
  const replay = useReplayView() !== null;
  return (
    <header className="sticky top-0 z-30 border-b border-slate-200 bg-white/90 backdrop-blur dark:border-slate-800 dark:bg-[#0b1220]/90">
      <div className="mx-auto flex max-w-[2560px] flex-wrap items-center gap-x-4 gap-y-1 px-3 py-2 sm:px-4">
        <h1 className="flex items-baseline gap-2">
          <span className="text-lg font-extrabold tracking-tight">{t("appName")}</span>
          <span className="hidden text-xs text-slate-500 lg:inline">{t("tagline")}</span>
        </h1>
        <div data-testid="kst-clock" data-replay={replay} className={`font-mono text-sm tabular-nums ${replay ? "rounded bg-violet-700 px-1.5 text-white" : ""}`} aria-label="KST">
          {replay ? <span className="mr-1 text-[10px] font-bold">{replayText(lang, "replayClock")}</span> : null}
          {now > 0 ? clockText(now, "Asia/Seoul") : "--:--:--"} <span className={`text-xs ${replay ? "text-violet-100" : "text-slate-500"}`}>KST</span>
        </div>
        <ul className="order-last flex w-full gap-4 text-xs sm:order-none sm:w-auto" aria-label="markets">
          <MarketClock market="krx" label="krx" now={now} />
          <MarketClock market="us" label="us" now={now} zone="America/New_York" />
          <MarketClock market="crypto" label="crypto" now={now} />
        </ul>
        <div className="ml-auto flex items-center gap-1.5">
          <span data-testid="ws-state" data-state={conn.status} className="flex items-center gap-1 text-xs text-slate-500 dark:text-slate-400">
            <span className={`h-2 w-2 rounded-full ${conn.status === "open" ? "bg-emerald-500" : conn.status === "connecting" ? "bg-amber-400" : "bg-red-500"}`} aria-hidden />
            <span className="hidden sm:inline">{replay && conn.status === "open" ? replayText(lang, "connected") : t(connKey)}</span>
          </span>
          <ReplayControl />
          {right}
          <button
            type="button"
            data-testid="lang-toggle"
            onClick={() => setLang(lang === "ko" ? "en" : "ko")}
            className="rounded-md border border-slate-200 px-2 py-1 text-xs outline-none hover:bg-slate-100 focus-visible:ring-2 focus-visible:ring-sky-500 dark:border-slate-700 dark:hover:bg-slate-800"
          >
            {lang === "ko" ? "EN" : "한"}
          </button>
          <button
            type="button"
            data-testid="theme-toggle"
            data-theme={theme}
            aria-label={`${t("theme")}: ${t(THEME_LABEL[theme])}`}
            title={`${t("theme")}: ${t(THEME_LABEL[theme])}`}
            onClick={() => setTheme(NEXT_THEME[theme])}
            className="rounded-md border border-slate-200 px-2 py-1 text-xs outline-none hover:bg-slate-100 focus-visible:ring-2 focus-visible:ring-sky-500 dark:border-slate-700 dark:hover:bg-slate-800"
          >
            {THEME_ICON[theme]}
          </button>
        </div>
      </div>
    </header>
  );
}
