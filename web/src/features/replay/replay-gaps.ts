// Where a replay has nothing to show: a replay that starts before any stored data (or in a stretch
// the log does not hold) would otherwise stay empty without a word. The controller records, per
// instrument, the time of its first replayed tick and how far the finished windows have looked;
// from that and the replay clock this decides, as pure logic, which instruments have no recorded
// price at the clock, when their records begin (when known), and whether the whole replay is empty.
import { kstText } from "./replay-url";

/** What the replay has found for one instrument so far. */
export interface Coverage {
  /** Exchange time of its first replayed tick (at or after the replay's start), once one came. */
  first: number | null;
  /** End of the last replay window that finished for it (nothing before `first` up to here). */
  scannedTo: number | null;
}

export type Coverages = ReadonlyMap<string, Coverage>;

/** An instrument with no recorded price at the clock; `next`: when its records begin, if known. */
export interface Gap {
  next: number | null;
}

/** The instrument's gap at `clock`, or null when it has data by then or it is not known yet. */
export function gapAt(c: Coverage | undefined, clock: number): Gap | null {
  if (!c) return null;
  if (c.first !== null) return c.first > clock ? { next: c.first } : null;
  return c.scannedTo !== null ? { next: null } : null;
}

export type Emptiness =
  /** Some instruments have no recorded price at the clock (the others play on). */
  | { kind: "some"; ids: string[] }
  /** None has one at the clock; `next` is the earliest time records begin, when known. */
  | { kind: "all"; next: number | null }
  /** The replay is over and found nothing at all for any instrument. */
  | { kind: "nothing" };

/** The banner's decision for the instruments `ids` of a replay in `status` at `clock`. */
export function emptiness(ids: readonly string[], coverage: Coverages, clock: number, status: string): Emptiness | null {
  if (ids.length === 0) return null;
  if (status === "ended" && ids.every((id) => (coverage.get(id)?.first ?? null) === null)) return { kind: "nothing" };
  const empty: string[] = [];
  let next: number | null = null;
  for (const id of ids) {
    const g = gapAt(coverage.get(id), clock);
    if (!g) continue;
    empty.push(id);
    if (g.next !== null && (next === null || g.next < next)) next = g.next;
  }
  if (empty.length === 0) return null;
  return empty.length === ids.length ? { kind: "all", next } : { kind: "some", ids: empty };
}

/** Records `ticks` (first tick per instrument at or after `from`); the same map when nothing changed. */
export function withTicks(coverage: Coverages, ticks: readonly { id: string; ts: number }[], from: number): Coverages {
  let out: Map<string, Coverage> | null = null;
  for (const t of ticks) {
    if (t.ts < from) continue;
    const c = (out ?? coverage).get(t.id);
    if (c && c.first !== null && c.first <= t.ts) continue;
    out ??= new Map(coverage);
    out.set(t.id, { first: t.ts, scannedTo: c?.scannedTo ?? null });
  }
  return out ?? coverage;
}

/** Records that a window ending at `to` finished for `ids`. */
export function withScanned(coverage: Coverages, ids: readonly string[], to: number): Coverages {
  const out = new Map(coverage);
  for (const id of ids) {
    const c = out.get(id);
    out.set(id, { first: c?.first ?? null, scannedTo: Math.max(c?.scannedTo ?? to, to) });
  }
  return out;
}

/** A time for a narrow row: `HH:MM:SS` on the same KST day as `ref`, else `MM-DD HH:MM`. */
export function shortKst(t: number, ref: number): string {
  const a = kstText(t);
  return a.slice(0, 10) === kstText(ref).slice(0, 10) ? a.slice(11) : `${a.slice(5, 10)} ${a.slice(11, 16)}`;
}

/** Where a "replay from where records begin" should end: the old end if still after it. */
export function jumpEnd(to: number | null, next: number): number | null {
  return to !== null && to > next ? to : null;
}
