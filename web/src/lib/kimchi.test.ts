import { describe, expect, it } from "vitest";
import { formatPremium, inputLabel, kimchiIdFor, premiumDirection, premiumTooltip } from "./kimchi";

describe("kimchi premium", () => {
  it("maps an Upbit KRW market to its premium", () => {
    expect(kimchiIdFor("crypto.upbit.KRW-BTC")).toBe("derived.kimchi.BTC");
    expect(kimchiIdFor("crypto.upbit.KRW-ETH")).toBe("derived.kimchi.ETH");
    expect(kimchiIdFor("crypto.coinbase.BTC-USD")).toBeNull();
    expect(kimchiIdFor("stock.krx.086520")).toBeNull();
  });

  it("formats the percent with its sign", () => {
    expect(formatPremium(2.13)).toBe("+2.13%");
    expect(formatPremium(-0.35)).toBe("-0.35%");
    expect(formatPremium(0)).toBe("0.00%");
    expect(formatPremium(-0.001)).toBe("0.00%");
    expect(formatPremium(null)).toBe("—");
    expect(formatPremium(Number.NaN)).toBe("—");
  });

  it("is red when Upbit is dearer and blue when cheaper", () => {
    expect(premiumDirection(1.51)).toBe("up");
    expect(premiumDirection(-0.2)).toBe("down");
    expect(premiumDirection(0)).toBe("flat");
    expect(premiumDirection(undefined)).toBe("flat");
  });

  it("lists the inputs' ages in the tooltip", () => {
    const now = 1_773_293_420_000;
    const inputs = [
      { id: "crypto.upbit.KRW-BTC", ts: now - 1_000 },
      { id: "crypto.coinbase.BTC-USD", ts: now - 6_000 },
      { id: "fx.spot.USDKRW", ts: now - 3 * 3_600_000 },
    ];
    expect(premiumTooltip(inputs, now, "ko").split("\n")).toEqual([
      "김치 프리미엄: 업비트 원화 가격 ÷ (해외 달러 가격 × 원/달러) − 1",
      "업비트 KRW-BTC · 1초 전",
      "코인베이스 BTC-USD · 6초 전",
      "환율 USDKRW · 3시간 전",
    ]);
    expect(premiumTooltip(inputs, now, "en").split("\n")[2]).toBe("Coinbase BTC-USD · 6s ago");
    expect(premiumTooltip(undefined, now, "en").split("\n")).toHaveLength(1);
    expect(inputLabel("derived.metal.XAUKRW-G", "en")).toBe("XAUKRW-G");
  });
});
