import { expect, priceOf, row, test } from "./fixtures";

const BTC = "crypto.upbit.KRW-BTC";
const ETH = "crypto.upbit.KRW-ETH";

// The default `sise up` (sim): the simulated USD references follow the simulated KRW prices and
// USD/KRW, so the premium beside BTC and ETH is a plausible +0.3–2.8 %, red (Upbit dearer),
// with the inputs' ages in its tooltip; the metals widget shows gold in KRW per g and per 돈.
test("the kimchi premium is shown beside the crypto quotes, and gold in KRW", async ({ page }) => {
  await page.goto("/");
  for (const id of [BTC, ETH]) {
    const badge = row(page, id, "w4").getByTestId("kimchi");
    await expect(badge).toBeVisible();
    await expect(badge).toHaveText(/^김프 [+-]\d+\.\d{2}%$/);
    const value = Number((await badge.textContent())?.replace(/^김프 /, "").replace("%", ""));
    expect(value).toBeGreaterThan(0);
    expect(value).toBeLessThan(3);
    await expect(badge).toHaveAttribute("data-direction", "up");
    const tip = (await badge.getAttribute("title")) ?? "";
    expect(tip).toContain("김치 프리미엄");
    expect(tip).toMatch(/업비트 KRW-[A-Z]+ · /);
    expect(tip).toMatch(/코인베이스 [A-Z]+-USD · /);
    expect(tip).toMatch(/환율 USDKRW · /);
  }
  // Only where a premium exists.
  await expect(row(page, "crypto.upbit.KRW-SOL", "w4").getByTestId("kimchi")).toHaveCount(0);
  for (const id of ["derived.metal.XAUKRW-G", "derived.metal.XAUKRW-DON"]) {
    await expect(priceOf(page, id, "w6")).not.toHaveText("—");
    await expect(priceOf(page, id, "w6")).toHaveText(/^[\d,]+/);
  }
});
