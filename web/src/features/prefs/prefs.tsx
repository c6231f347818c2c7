"use client";

// User preferences kept in this browser: UI language (Korean first) and theme (follow the
// system, or forced light/dark). Read with useSyncExternalStore so the static HTML renders the
// defaults and the client switches without a hydration mismatch.
import { createContext, useCallback, useContext, useEffect, useMemo, useSyncExternalStore, type ReactNode } from "react";
import type { Lang } from "@/lib/format";
import { translate, type MessageKey } from "@/lib/i18n";

export type ThemePref = "system" | "light" | "dark";

const LANG_KEY = "sise.lang";
const THEME_KEY = "sise.theme";
const listeners = new Set<() => void>();

function read(key: string): string | null {
  try {
    return window.localStorage.getItem(key);
  } catch {
    return null;
  }
}

function write(key: string, value: string): void {
  try {
    window.localStorage.setItem(key, value);
  } catch {
    // private mode: the choice lasts for this page only
  }
  for (const l of listeners) l();
}

function subscribe(listener: () => void): () => void {
  listeners.add(listener);
  window.addEventListener("storage", listener);
  const mq = window.matchMedia("(prefers-color-scheme: dark)");
  mq.addEventListener("change", listener);
  return () => {
    listeners.delete(listener);
    window.removeEventListener("storage", listener);
    mq.removeEventListener("change", listener);
  };
}

const getLang = (): Lang => (read(LANG_KEY) === "en" ? "en" : "ko");
const getTheme = (): ThemePref => {
  const v = read(THEME_KEY);
  return v === "light" || v === "dark" ? v : "system";
};
const getSystemDark = (): boolean => window.matchMedia("(prefers-color-scheme: dark)").matches;

interface Prefs {
  lang: Lang;
  theme: ThemePref;
  dark: boolean;
  setLang: (lang: Lang) => void;
  setTheme: (theme: ThemePref) => void;
  t: (key: MessageKey) => string;
}

const PrefsContext = createContext<Prefs | null>(null);

export function PrefsProvider({ children }: { children: ReactNode }) {
  const lang = useSyncExternalStore(subscribe, getLang, () => "ko" as const);
  const theme = useSyncExternalStore(subscribe, getTheme, () => "system" as const);
  const systemDark = useSyncExternalStore(subscribe, getSystemDark, () => false);
  const dark = theme === "dark" || (theme === "system" && systemDark);

  // Keep <html> in sync (the inline script in layout.tsx did it before the first paint).
  useEffect(() => {
    document.documentElement.classList.toggle("dark", dark);
    document.documentElement.style.colorScheme = dark ? "dark" : "light";
    document.documentElement.lang = lang;
  }, [dark, lang]);

  const setLang = useCallback((l: Lang) => write(LANG_KEY, l), []);
  const setTheme = useCallback((t: ThemePref) => write(THEME_KEY, t), []);
  const t = useCallback((key: MessageKey) => translate(lang, key), [lang]);
  const value = useMemo(() => ({ lang, theme, dark, setLang, setTheme, t }), [lang, theme, dark, setLang, setTheme, t]);
  return <PrefsContext.Provider value={value}>{children}</PrefsContext.Provider>;
}

export function usePrefs(): Prefs {
  const p = useContext(PrefsContext);
  if (!p) throw new Error("usePrefs outside PrefsProvider");
  return p;
}

/** Runs before the first paint (inlined in <head>) so a dark-mode page never flashes white. */
export const THEME_BOOT_SCRIPT = `(function(){try{var t=localStorage.getItem("${THEME_KEY}");var d=t==="dark"||(t!=="light"&&matchMedia("(prefers-color-scheme: dark)").matches);var e=document.documentElement;if(d)e.classList.add("dark");e.style.colorScheme=d?"dark":"light";if(localStorage.getItem("${LANG_KEY}")==="en")e.lang="en";}catch(_){}})();`;
