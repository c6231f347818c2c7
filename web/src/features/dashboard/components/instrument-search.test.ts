import { describe, expect, it } from "vitest";
import type { Instrument } from "@/lib/types";
import { addableCode, matchInstruments } from "./instrument-search";

const inst = (id: string, name_ko: string, name_en: string): Instrument => ({
  id,
  name_ko,
  name_en,
  class: id.split(".")[0] ?? "",
  venue: id.split(".")[1] ?? "",
  currency: id.includes(".krx.") ? "KRW" : "USD",
  decimals: id.includes(".krx.") ? 0 : 2,
  market: id.includes(".krx.") ? "krx" : "us",
});

const all = [inst("stock.krx.068270", "셀트리온", "Celltrion"), inst("stock.us.GOOG", "알파벳 C", "Alphabet C")];

describe("addableCode", () => {
  it("offers a 6-digit KRX code nothing lists", () => {
    expect(addableCode(all, " 005930 ")).toEqual({ id: "stock.krx.005930", code: "005930", venue: "KRX" });
  });

  it("offers an uppercase US ticker nothing lists", () => {
    expect(addableCode(all, "TSLA")).toEqual({ id: "stock.us.TSLA", code: "TSLA", venue: "US" });
  });

  it("does not offer what is listed, excluded or not a code", () => {
    expect(addableCode(all, "068270")).toBeNull();
    expect(addableCode(all, "GOOG")).toBeNull();
    expect(addableCode(all, "TSLA", ["stock.us.TSLA"])).toBeNull();
    for (const q of ["", "05930", "0059300", "00593A", "tsla", "TOOLONG", "BRK.B", "삼성전자"]) {
      expect(addableCode(all, q), q).toBeNull();
    }
  });

  it("leaves the name search as it was", () => {
    expect(matchInstruments(all, "셀트").map((i) => i.id)).toEqual(["stock.krx.068270"]);
  });
});
