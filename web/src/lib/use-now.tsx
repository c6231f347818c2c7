"use client";

// One shared clock for "3초 전" ages and the header clocks: a single interval per page, started
// when the first component listens and stopped when the last leaves. Provided by context, not
// a module global, so each page (and each test) owns its clock. During a 시점 재생 the replay sets
// a time source, and every clock, market state and age on the page reads the replayed time.
import { createContext, useContext, useState, useSyncExternalStore, type ReactNode } from "react";

export class SecondClock {
  private now = 0;
  private timer: ReturnType<typeof setInterval> | null = null;
  private readonly listeners = new Set<() => void>();
  private source: (() => number) | null = null;

  private read(): number {
    return this.source ? this.source() : Date.now();
  }

  /** Replaces wall-clock time (a replay's clock), or restores it with null; listeners hear it now. */
  setSource(source: (() => number) | null): void {
    this.source = source;
    this.now = this.read();
    for (const l of this.listeners) l();
  }

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    if (this.timer === null) {
      this.now = this.read();
      this.timer = setInterval(() => {
        this.now = this.read();
        for (const l of this.listeners) l();
      }, 1000);
    }
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0 && this.timer !== null) {
        clearInterval(this.timer);
        this.timer = null;
      }
    };
  };

  getSnapshot = (): number => {
    if (this.now === 0) this.now = this.read();
    return this.now;
  };
}

const ClockContext = createContext<SecondClock | null>(null);

export function ClockProvider({ children }: { children: ReactNode }) {
  const [clock] = useState(() => new SecondClock());
  return <ClockContext.Provider value={clock}>{children}</ClockContext.Provider>;
}

/** The page's clock (the replay sets its time source on it). */
export function useClock(): SecondClock {
  const clock = useContext(ClockContext);
  if (!clock) throw new Error("useClock outside ClockProvider");
  return clock;
}

/** The current time, updated once a second (0 during server rendering). */
export function useNow(): number {
  const clock = useContext(ClockContext);
  if (!clock) throw new Error("useNow outside ClockProvider");
  return useSyncExternalStore(clock.subscribe, clock.getSnapshot, () => 0);
}
