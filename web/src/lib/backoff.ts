// Reconnect delays: capped exponential backoff with jitter, so a restarted edge is not hit by
// every browser at the same instant.

export interface BackoffOptions {
  /** Delay before the first retry, ms. */
  baseMs: number;
  /** Upper bound of any delay, ms. */
  maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 500, maxMs: 30_000 };

/**
 * Delay before reconnect attempt `attempt` (0-based): "equal jitter", uniformly in
 * `[cap/2, cap]` where `cap = min(maxMs, baseMs * 2^attempt)`. `random` returns `[0, 1)`.
 */
export function backoffDelay(
  attempt: number,
  options: BackoffOptions = DEFAULT_BACKOFF,
  random: () => number = Math.random,
): number {
  const exp = Math.min(Math.max(attempt, 0), 30);
  const cap = Math.min(options.maxMs, options.baseMs * 2 ** exp);
  return Math.round(cap / 2 + random() * (cap / 2));
}
