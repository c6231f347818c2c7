"use client";

// The header's 시점 재생 control: a button that opens a small panel to pick a past KST time
// (with quick picks), an optional end, and the speed, then starts the replay.
import { useEffect, useRef, useState } from "react";
import { usePrefs } from "@/features/prefs/prefs";
import { replayText, type ReplayMessageKey } from "../messages";
import { ReplayIcon } from "./replay-icon";
import { useReplayApi, useReplayView } from "../replay-context";
import { DEFAULT_SPEED, fromKstInput, REPLAY_SPEEDS, toKstInput, type ReplaySpeed } from "../replay-url";

const KST_OFFSET_MS = 9 * 3600_000;

/** Today's KRX open (09:00 KST), or yesterday's when it is not 09:00 yet. */
function lastKrxOpen(now: number): number {
  const day = Math.floor((now + KST_OFFSET_MS) / 86_400_000) * 86_400_000 - KST_OFFSET_MS;
  const open = day + 9 * 3600_000;
  return open <= now ? open : open - 86_400_000;
}

const PRESETS: { key: ReplayMessageKey; at: (now: number) => number }[] = [
  { key: "ago5m", at: (n) => n - 5 * 60_000 },
  { key: "ago30m", at: (n) => n - 30 * 60_000 },
  { key: "ago1h", at: (n) => n - 3600_000 },
  { key: "ago1d", at: (n) => n - 86_400_000 },
  { key: "krxOpen", at: lastKrxOpen },
];

const minuteFloor = (t: number) => Math.floor(t / 60_000) * 60_000;

export function SpeedPicker({ value, onChange, testid }: { value: ReplaySpeed; onChange: (s: ReplaySpeed) => void; testid: string }) {
  const { lang } = usePrefs();
  return (
    <div role="group" aria-label={replayText(lang, "speed")} className="flex overflow-hidden rounded-md border border-violet-300 text-xs dark:border-violet-500/50">
      {REPLAY_SPEEDS.map((s) => (
        <button
          key={s}
          type="button"
          data-testid={`${testid}-${s}`}
          aria-pressed={s === value}
          onClick={() => onChange(s)}
          className={`px-2 py-1 tabular-nums outline-none focus-visible:ring-2 focus-visible:ring-violet-500 focus-visible:ring-inset ${s === value ? "bg-violet-700 text-white" : "hover:bg-violet-100 dark:hover:bg-violet-500/20"}`}
        >
          {s}×
        </button>
      ))}
    </div>
  );
}

export function ReplayControl() {
  const { lang } = usePrefs();
  const t = (k: ReplayMessageKey) => replayText(lang, k);
  const api = useReplayApi();
  const view = useReplayView();
  const [open, setOpen] = useState(false);
  const [from, setFrom] = useState("");
  const [until, setUntil] = useState("");
  const [speed, setSpeed] = useState<ReplaySpeed>(DEFAULT_SPEED);
  const [problem, setProblem] = useState<ReplayMessageKey | null>(null);
  const [openedAt, setOpenedAt] = useState(0);
  const panel = useRef<HTMLDivElement>(null);

  useEffect(() => {
    if (!open) return;
    const onKey = (e: KeyboardEvent) => {
      if (e.key === "Escape") setOpen(false);
    };
    const onDown = (e: MouseEvent) => {
      if (panel.current && !panel.current.contains(e.target as Node)) setOpen(false);
    };
    window.addEventListener("keydown", onKey);
    window.addEventListener("mousedown", onDown);
    return () => {
      window.removeEventListener("keydown", onKey);
      window.removeEventListener("mousedown", onDown);
    };
  }, [open]);

  const toggle = () => {
    if (!open) {
      const now = Date.now();
      setFrom(toKstInput(minuteFloor(view ? view.params.from : now - 3600_000)));
      setUntil(view?.params.to != null ? toKstInput(view.params.to) : "");
      setSpeed(view ? view.params.speed : DEFAULT_SPEED);
      setProblem(null);
      setOpenedAt(now);
    }
    setOpen((o) => !o);
  };

  const submit = () => {
    const now = Date.now();
    const f = fromKstInput(from);
    if (f === null || f >= now) {
      setProblem("badFrom");
      return;
    }
    const u = until ? fromKstInput(until) : null;
    if (until && (u === null || u <= f)) {
      setProblem("badUntil");
      return;
    }
    api.start({ from: f, to: u, speed });
    setOpen(false);
  };

  return (
    <div className="relative" ref={panel}>
      <button
        type="button"
        data-testid="replay-open"
        aria-expanded={open}
        aria-haspopup="dialog"
        onClick={toggle}
        className={`flex items-center gap-1 rounded-md border px-2 py-1 text-xs font-semibold outline-none focus-visible:ring-2 focus-visible:ring-violet-500 ${view ? "border-violet-600 bg-violet-700 text-white" : "border-violet-300 text-violet-800 hover:bg-violet-50 dark:border-violet-500/50 dark:text-violet-200 dark:hover:bg-violet-500/15"}`}
      >
        <ReplayIcon />
        {t("replay")}
      </button>
      {open ? (
        <div
          role="dialog"
          aria-label={t("replayTitle")}
          data-testid="replay-panel"
          className="absolute right-0 z-40 mt-1 w-[19rem] rounded-lg border border-slate-200 bg-white p-3 text-sm shadow-xl dark:border-slate-700 dark:bg-slate-900"
        >
          <p className="mb-2 font-semibold">{t("replayTitle")}</p>
          <label className="mb-1 block text-xs text-slate-500" htmlFor="replay-from">
            {t("from")}
          </label>
          <input
            id="replay-from"
            data-testid="replay-from"
            type="datetime-local"
            step={1}
            value={from}
            max={openedAt > 0 ? toKstInput(openedAt) : undefined}
            onChange={(e) => setFrom(e.target.value)}
            className="mb-2 w-full rounded-md border border-slate-300 bg-transparent px-2 py-1 font-mono text-xs tabular-nums dark:border-slate-600"
          />
          <div className="mb-2 flex flex-wrap gap-1" aria-label={t("presets")}>
            {PRESETS.map((p) => (
              <button
                key={p.key}
                type="button"
                data-testid={`replay-preset-${p.key}`}
                onClick={() => setFrom(toKstInput(minuteFloor(p.at(Date.now()))))}
                className="rounded border border-slate-200 px-1.5 py-0.5 text-[11px] hover:bg-slate-100 dark:border-slate-700 dark:hover:bg-slate-800"
              >
                {t(p.key)}
              </button>
            ))}
          </div>
          <label className="mb-1 block text-xs text-slate-500" htmlFor="replay-until">
            {t("until")}
          </label>
          <input
            id="replay-until"
            data-testid="replay-until"
            type="datetime-local"
            step={1}
            value={until}
            placeholder={t("untilNone")}
            onChange={(e) => setUntil(e.target.value)}
            className="mb-2 w-full rounded-md border border-slate-300 bg-transparent px-2 py-1 font-mono text-xs tabular-nums dark:border-slate-600"
          />
          <div className="mb-3 flex items-center justify-between gap-2">
            <span className="text-xs text-slate-500">{t("speed")}</span>
            <SpeedPicker value={speed} onChange={setSpeed} testid="replay-speed" />
          </div>
          {problem ? (
            <p role="alert" data-testid="replay-problem" className="mb-2 text-xs text-orange-700 dark:text-orange-300">
              {t(problem)}
            </p>
          ) : null}
          <div className="flex justify-end gap-2">
            <button type="button" onClick={() => setOpen(false)} className="rounded-md px-2 py-1 text-xs hover:bg-slate-100 dark:hover:bg-slate-800">
              {t("cancel")}
            </button>
            <button
              type="button"
              data-testid="replay-start"
              onClick={submit}
              className="rounded-md bg-violet-700 px-3 py-1 text-xs font-semibold text-white outline-none hover:bg-violet-800 focus-visible:ring-2 focus-visible:ring-violet-400"
            >
              {t("start")}
            </button>
          </div>
        </div>
      ) : null}
    </div>
  );
}
