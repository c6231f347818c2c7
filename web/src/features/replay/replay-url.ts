// 시점 재생 (point-in-time replay) parameters: the speeds the UI offers, the `?replay=…&speed=…`
// link that reopens the same replay, and KST date-time text both ways. Pure functions.

/** The replay speeds the dashboard offers (× real time). */
export const REPLAY_SPEEDS = [1, 10, 60] as const;
export type ReplaySpeed = (typeof REPLAY_SPEEDS)[number];

export const DEFAULT_SPEED: ReplaySpeed = 1;

const KST_OFFSET_MS = 9 * 3600_000;

export interface ReplayParams {
  /** Replay start, epoch ms. */
  from: number;
  /** Optional end, epoch ms (exclusive); `null` = replay up to the present. */
  to: number | null;
  speed: ReplaySpeed;
}

/** `1`, `"10"`, `"60x"`, `"10×"` → a supported speed, else null. */
export function parseSpeed(raw: string | number | null | undefined): ReplaySpeed | null {
  if (raw === null || raw === undefined) return null;
  const text = String(raw).trim().replace(/[x×]$/i, "");
  if (!/^\d+$/.test(text)) return null;
  const n = Number(text);
  return (REPLAY_SPEEDS as readonly number[]).includes(n) ? (n as ReplaySpeed) : null;
}

/**
 * A replay time from a link: epoch ms (`1795000000000`), or ISO 8601. An ISO text without a zone
 * is Korean wall-clock time (`2026-11-24T14:05`, `2026-11-24 14:05:00`); one with `Z` or an
 * offset is taken as written. Null for anything else.
 */
export function parseReplayTime(raw: string | null | undefined): number | null {
  if (!raw) return null;
  // A raw `+09:00` in a typed link arrives as a space after query decoding.
  const text = raw.trim().replace(/(\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}:?\d{2})$/, "$1+$2");
  if (/^\d{10,14}$/.test(text)) {
    const n = Number(text);
    return Number.isSafeInteger(n) && n > 0 ? n : null;
  }
  const m = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?(Z|[+-]\d{2}:?\d{2})?$/i.exec(text);
  if (!m) return null;
  const [, y, mo, d, h, mi, s, frac, zone] = m;
  const parts = [y, mo, d, h, mi, s ?? "0"].map(Number) as [number, number, number, number, number, number];
  const [Y, M, D, H, Mi, S] = parts;
  if (M < 1 || M > 12 || D < 1 || D > 31 || H > 23 || Mi > 59 || S > 59) return null;
  const ms = frac ? Number(frac.padEnd(3, "0")) : 0;
  const wall = Date.UTC(Y, M - 1, D, H, Mi, S, ms);
  // Reject dates that rolled over (2026-02-31).
  const check = new Date(wall);
  if (check.getUTCDate() !== D || check.getUTCMonth() !== M - 1) return null;
  if (!zone) return wall - KST_OFFSET_MS;
  if (zone.toUpperCase() === "Z") return wall;
  const zm = /^([+-])(\d{2}):?(\d{2})$/.exec(zone);
  if (!zm) return null;
  const offset = (Number(zm[2]) * 60 + Number(zm[3])) * 60_000 * (zm[1] === "-" ? -1 : 1);
  return wall - offset;
}

export type ReplayLinkResult =
  | { kind: "none" }
  | { kind: "ok"; params: ReplayParams }
  | { kind: "invalid"; reason: "time" | "future" | "range" };

/**
 * Reads `?replay=<epoch ms | ISO>&speed=<1|10|60>[&until=<epoch ms | ISO>]` from a query string.
 * A missing or unsupported speed means 1×; a start in the future, or an end before the start, is
 * invalid (the dashboard says so and stays live).
 */
export function parseReplaySearch(search: string, now: number): ReplayLinkResult {
  const q = new URLSearchParams(search);
  const raw = q.get("replay");
  if (raw === null) return { kind: "none" };
  const from = parseReplayTime(raw);
  if (from === null) return { kind: "invalid", reason: "time" };
  if (from >= now) return { kind: "invalid", reason: "future" };
  const untilRaw = q.get("until");
  let to: number | null = null;
  if (untilRaw !== null && untilRaw !== "") {
    to = parseReplayTime(untilRaw);
    if (to === null) return { kind: "invalid", reason: "time" };
    if (to <= from) return { kind: "invalid", reason: "range" };
  }
  return { kind: "ok", params: { from, to, speed: parseSpeed(q.get("speed")) ?? DEFAULT_SPEED } };
}

/** The query string of a replay, merged into `search` (other parameters, like `layout`, kept). */
export function withReplaySearch(search: string, params: ReplayParams | null): string {
  const q = new URLSearchParams(search);
  q.delete("replay");
  q.delete("speed");
  q.delete("until");
  if (params) {
    q.set("replay", kstIso(params.from));
    q.set("speed", String(params.speed));
    if (params.to !== null) q.set("until", kstIso(params.to));
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

/** The absolute link that opens this replay (`href` is the page's current URL). */
export function replayLink(href: string, params: ReplayParams): string {
  const url = new URL(href);
  url.search = withReplaySearch(url.search, params);
  url.hash = "";
  return url.toString();
}

const pad = (n: number, w = 2) => String(n).padStart(w, "0");

/** `2026-11-24T14:05:00+09:00`: readable in a link, exact, and unambiguous. */
export function kstIso(epochMs: number): string {
  const d = new Date(epochMs + KST_OFFSET_MS);
  const base = `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}T${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
  const ms = d.getUTCMilliseconds();
  return `${base}${ms ? `.${pad(ms, 3)}` : ""}+09:00`;
}

/** `2026-11-24 14:05:00` in KST (the banner). */
export function kstText(epochMs: number): string {
  const d = new Date(epochMs + KST_OFFSET_MS);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
}

/** The value of an `<input type="datetime-local" step="1">` showing `epochMs` in KST. */
export function toKstInput(epochMs: number): string {
  return kstText(epochMs).replace(" ", "T");
}

/** An `<input type="datetime-local">` value, read as KST wall-clock time. */
export function fromKstInput(value: string): number | null {
  return value ? parseReplayTime(value) : null;
}
