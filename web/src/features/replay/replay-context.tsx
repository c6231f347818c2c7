"use client";

// Makes the page's ReplayController available: it opens the replay a link asks for, keeps the
// page's URL equal to the replay on screen (so the address bar is always a working link), and
// sets the page clock to the replay's time while one runs.
import { createContext, useContext, useEffect, useMemo, useState, useSyncExternalStore, type ReactNode } from "react";
import { useFeed } from "@/features/live/feed-context";
import { useClock, useNow } from "@/lib/use-now";
import { socketUrl } from "@/lib/ws-protocol";
import { ReplayController, socketChannels, type ReplaySnapshot } from "./replay-controller";
import { gapAt, type Gap } from "./replay-gaps";
import type { ReplayView } from "./replay-session";
import { withReplaySearch, type ReplayParams } from "./replay-url";

export interface ReplayApi {
  start(params: ReplayParams): void;
  exit(): void;
  dismissInvalidLink(): void;
  /** The replay clock, or null while live. */
  clock(): number | null;
}

const ReplayContext = createContext<{ controller: ReplayController; api: ReplayApi } | null>(null);

const EMPTY: ReplaySnapshot = { view: null, invalidLink: null, ids: [], coverage: new Map() };

function setUrl(params: ReplayParams | null): void {
  const url = new URL(window.location.href);
  const search = withReplaySearch(url.search, params);
  if (search === url.search) return;
  url.search = search;
  window.history.replaceState(window.history.state, "", url);
}

export function ReplayProvider({ children }: { children: ReactNode }) {
  const feed = useFeed();
  const clock = useClock();
  const [controller] = useState(
    () =>
      new ReplayController({
        feed,
        channels: socketChannels(typeof window === "undefined" ? "" : socketUrl(window.location)),
      }),
  );
  const api = useMemo<ReplayApi>(
    () => ({
      start: (params) => {
        controller.start(params);
        clock.setSource(() => controller.clock() ?? Date.now());
        setUrl(params);
      },
      exit: () => {
        controller.exit();
        clock.setSource(null);
        setUrl(null);
      },
      dismissInvalidLink: () => controller.dismissInvalidLink(),
      clock: () => controller.clock(),
    }),
    [controller, clock],
  );

  useEffect(() => {
    if (controller.openLink(window.location.search)) {
      clock.setSource(() => controller.clock() ?? Date.now());
    }
    return () => {
      controller.exit();
      clock.setSource(null);
    };
  }, [controller, clock]);

  const value = useMemo(() => ({ controller, api }), [controller, api]);
  return <ReplayContext.Provider value={value}>{children}</ReplayContext.Provider>;
}

function useReplayContext() {
  const c = useContext(ReplayContext);
  if (!c) throw new Error("replay hooks outside ReplayProvider");
  return c;
}

/** Replay controls (start, exit). */
export function useReplayApi(): ReplayApi {
  return useReplayContext().api;
}

/** The replay and link state (re-renders on replay state changes, not on every tick). */
export function useReplaySnapshot(): ReplaySnapshot {
  const { controller } = useReplayContext();
  return useSyncExternalStore(controller.subscribe, controller.getSnapshot, () => EMPTY);
}

/** The replay on screen, or null while live. */
export function useReplayView(): ReplayView | null {
  return useReplaySnapshot().view;
}

/** Whether instrument `id` has no recorded price at the replay clock (null: live, or it has). */
export function useReplayGap(id: string): Gap | null {
  const { view, coverage } = useReplaySnapshot();
  const now = useNow();
  return view ? gapAt(coverage.get(id), now) : null;
}
