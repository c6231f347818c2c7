import { describe, expect, it } from "vitest";
import {
  addInstrument,
  cycleWidgetSize,
  defaultLayout,
  layoutIds,
  moveInstrument,
  moveWidget,
  parseLayout,
  removeInstrument,
  setChart,
  swapInstrument,
} from "./layout";

const krx = (l = defaultLayout()) => l.widgets.find((w) => w.id === "w1")!.ids;

describe("default layout", () => {
  it("covers every default instrument once, plus the chart's", () => {
    const ids = layoutIds(defaultLayout());
    // 20 market instruments and gold in KRW per g and per 돈 (the metals widget).
    expect(ids).toHaveLength(22);
    expect(ids).toContain("derived.metal.XAUKRW-G");
    expect(ids).toContain("derived.metal.XAUKRW-DON");
    expect(ids).toContain("fx.spot.USDKRW");
    expect(ids).toContain("crypto.upbit.KRW-ONDO");
  });
});

describe("widget edits", () => {
  it("adds without duplicates and removes", () => {
    const l = defaultLayout();
    const a = addInstrument(l, "w1", "stock.us.GOOG");
    expect(krx(a).at(-1)).toBe("stock.us.GOOG");
    expect(addInstrument(a, "w1", "stock.us.GOOG")).toBe(a);
    expect(krx(removeInstrument(a, "w1", "stock.krx.058610"))).not.toContain("stock.krx.058610");
    expect(removeInstrument(l, "w1", "nope.x.y")).toBe(l);
  });
  it("swaps in place, trading places when the target is already there", () => {
    const l = defaultLayout();
    expect(krx(swapInstrument(l, "w1", "stock.krx.058610", "crypto.upbit.KRW-XRP"))).toEqual([
      "crypto.upbit.KRW-XRP",
      "stock.krx.086520",
      "stock.krx.068270",
    ]);
    expect(krx(swapInstrument(l, "w1", "stock.krx.058610", "stock.krx.068270"))).toEqual([
      "stock.krx.068270",
      "stock.krx.086520",
      "stock.krx.058610",
    ]);
  });
  it("reorders instruments and widgets, clamped", () => {
    const l = defaultLayout();
    expect(krx(moveInstrument(l, "w1", "stock.krx.068270", -1))).toEqual([
      "stock.krx.058610",
      "stock.krx.068270",
      "stock.krx.086520",
    ]);
    expect(moveInstrument(l, "w1", "stock.krx.058610", -1)).toBe(l);
    expect(moveWidget(l, "w2", -5).widgets[0]!.id).toBe("w2");
    expect(cycleWidgetSize(l, "w1").widgets[0]!.size).toBe("m");
  });
  it("changes the chart only when something differs", () => {
    const l = defaultLayout();
    expect(setChart(l, { interval: "1m" })).toBe(l);
    expect(setChart(l, { interval: "5m" }).chart.interval).toBe("5m");
  });
});

describe("parseLayout", () => {
  it("round-trips a layout through JSON", () => {
    const l = setChart(swapInstrument(defaultLayout(), "w1", "stock.krx.058610", "stock.us.GOOG"), { style: "line" });
    expect(parseLayout(JSON.parse(JSON.stringify(l)))).toEqual(l);
  });
  it("drops malformed parts", () => {
    const l = parseLayout({
      widgets: [
        { id: "a", kind: "quotes", ids: ["stock.krx.068270", "bad id", 5, "stock.krx.068270"], size: "xl" },
        { id: "a", kind: "chart" },
        { kind: "weird" },
        null,
      ],
      chart: { id: "not an id", interval: "2m" },
    });
    expect(l.widgets.map((w) => [w.id, w.kind, w.size, w.ids.length])).toEqual([
      ["a", "quotes", "s", 1],
      ["a_", "chart", "s", 0],
    ]);
    expect(l.chart).toEqual(defaultLayout().chart);
    expect(parseLayout("junk")).toEqual(defaultLayout());
  });
});
