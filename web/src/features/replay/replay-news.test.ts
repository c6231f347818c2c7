import { describe, expect, it } from "vitest";
import type { NewsItem } from "@/lib/types";
import { asOfCut, NEWS_LIMIT, newsAsOf, newsBefore, replayNewsQueries } from "./replay-news";

const T = Date.parse("2026-12-07T18:30:00+09:00");
const item = (id: string, published: number): NewsItem => ({ id, source: "sim", title: id, summary: null, url: `https://x/${id}`, image: null, published, language: "ko", instruments: [] });

describe("news as of the replay clock", () => {
  const list = [item("c", T + 90_000), item("b", T + 30_000), item("a", T), item("z", T - 3600_000)];

  it("asks for the list up to the end of the replayed minute", () => {
    expect(newsBefore(T)).toBe(T + 60_000);
    expect(newsBefore(T + 59_999)).toBe(T + 60_000);
    expect(newsBefore(T + 60_000)).toBe(T + 120_000);
  });

  it("shows only what was published by the clock, newest first", () => {
    expect(newsAsOf(list, T - 1).map((n) => n.id)).toEqual(["z"]);
    expect(newsAsOf(list, T).map((n) => n.id)).toEqual(["a", "z"]);
    expect(newsAsOf(list, T + 45_000).map((n) => n.id)).toEqual(["b", "a", "z"]);
    expect(newsAsOf([...list].reverse(), T + 100_000).map((n) => n.id)).toEqual(["c", "b", "a", "z"]);
    expect(newsAsOf(list, T - 7200_000)).toEqual([]);
  });

  it("keeps the list's size", () => {
    const many = Array.from({ length: 60 }, (_, i) => item(`n${i}`, T - i * 1000));
    const shown = newsAsOf(many, T);
    expect(shown).toHaveLength(NEWS_LIMIT);
    expect(shown[0]?.id).toBe("n0");
  });

  it("cuts at the newest headline by the clock, so the list changes only when one comes due", () => {
    expect(asOfCut(list, T + 10_000)).toBe(T);
    expect(asOfCut(list, T + 29_999)).toBe(T);
    expect(asOfCut(list, T + 30_000)).toBe(T + 30_000);
    expect(asOfCut(list, T - 7200_000)).toBe(-Infinity);
    expect(asOfCut(undefined, T)).toBe(-Infinity);
    for (const clock of [T - 1, T + 10_000, T + 95_000]) expect(newsAsOf(list, asOfCut(list, clock))).toEqual(newsAsOf(list, clock));
  });

  it("keys the replay's news apart from the live list the socket writes to", () => {
    const k = replayNewsQueries.asOf("crypto.upbit.KRW-BTC", T + 60_000).queryKey;
    expect(k).toEqual(["replay", "news", "crypto.upbit.KRW-BTC", T + 60_000]);
    expect(replayNewsQueries.asOf(null, T).queryKey[2]).toBe("all");
    expect(k[0]).not.toBe("news");
  });
});
