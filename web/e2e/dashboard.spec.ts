import { appendFileSync, mkdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { expect, priceOf, row, seePriceChange, test } from "./fixtures";

const BTC = "crypto.upbit.KRW-BTC";
const XRP = "crypto.upbit.KRW-XRP";
const SPG = "stock.krx.058610";
const results = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "test-results");
const shots = path.join(results, "screenshots");

function report(name: string, value: unknown) {
  mkdirSync(results, { recursive: true });
  appendFileSync(path.join(results, "e2e-metrics.jsonl"), `${JSON.stringify({ name, value, at: new Date().toISOString() })}\n`);
  console.log(`[metric] ${name}: ${JSON.stringify(value)}`);
}

test.describe.configure({ mode: "serial" });

test("loads the dashboard and its prices go live", async ({ page }) => {
  await page.goto("/");
  // Time to first live price: navigation start → the first BTC price on screen.
  await expect(priceOf(page, BTC)).not.toHaveText("—");
  const firstPriceMs = await page.evaluate(() => Math.round(performance.now()));
  report("time_to_first_price_ms", firstPriceMs);

  // Every default widget is there.
  for (const title of ["국내주식", "지수", "해외주식", "암호화폐", "금/은", "환율", "뉴스", "차트"]) {
    await expect(page.getByTestId("widget-title").filter({ hasText: title }).first()).toBeVisible();
  }
  // 20 default instruments and gold in KRW per g and per 돈.
  await expect(page.getByTestId("quote-row")).toHaveCount(22);
  await seePriceChange(page, BTC);
  await seePriceChange(page, "stock.krx.068270");
  // Simulated prices are labelled as such, never as live market data.
  await expect(row(page, BTC)).toHaveAttribute("data-fresh", "sim");
  await expect(row(page, BTC).getByTestId("fresh-mark")).toHaveText("모의");
  await expect(page.getByTestId("ws-state")).toHaveAttribute("data-state", "open");
  await expect(page.getByTestId("market-krx")).toBeVisible();
  await expect(page.getByTestId("kst-clock")).toContainText("KST");
});

test("shows the simulated market's news", async ({ page }) => {
  await page.goto("/");
  const list = page.getByTestId("news-list");
  await page.getByRole("button", { name: "전체", exact: true }).click();
  await expect(list.getByTestId("news-item").first()).toBeVisible({ timeout: 15_000 });
  await expect(list.getByTestId("news-item").first()).toContainText(/\[(모의|SIM)\]/);
  expect(await list.getByTestId("news-item").count()).toBeGreaterThanOrEqual(3);
  const links = list.locator("a[href^='https://sise.invalid/']");
  expect(await links.count()).toBeGreaterThanOrEqual(1);
});

test("stays smooth while every default instrument ticks", async ({ page }) => {
  await page.addInitScript(() => {
    const w = window as unknown as { __long: number[] };
    w.__long = [];
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) w.__long.push(e.duration);
    }).observe({ type: "longtask", buffered: true });
  });
  await page.goto("/");
  await seePriceChange(page, BTC);
  // Let everything load (chart, sparklines), then watch 10 s of ticking.
  await page.waitForTimeout(2000);
  const startLong = await page.evaluate(() => (window as unknown as { __long: number[] }).__long.length);
  const fps = await page.evaluate(
    () =>
      new Promise<number>((resolve) => {
        let frames = 0;
        const t0 = performance.now();
        const step = () => {
          frames++;
          if (performance.now() - t0 < 10_000) requestAnimationFrame(step);
          else resolve((frames * 1000) / (performance.now() - t0));
        };
        requestAnimationFrame(step);
      }),
  );
  const long = await page.evaluate((from) => (window as unknown as { __long: number[] }).__long.slice(from), startLong);
  const loadLong = await page.evaluate((to) => (window as unknown as { __long: number[] }).__long.slice(0, to), startLong);
  report("load_long_tasks", { count: loadLong.length, total_ms: Math.round(loadLong.reduce((a, b) => a + b, 0)), max_ms: Math.round(Math.max(0, ...loadLong)) });
  report("ticking_10s_long_tasks", { count: long.length, total_ms: Math.round(long.reduce((a, b) => a + b, 0)), max_ms: Math.round(Math.max(0, ...long)) });
  report("ticking_10s_fps", Math.round(fps * 10) / 10);
  expect(long.length).toBeLessThan(20);
});

test("swaps a symbol, keeps the layout on reload, and shares it read-only", async ({ page, browser, baseURL }) => {
  // Record what the page asks the socket for: exactly the instruments on screen.
  const ops: Array<{ op: string; ids: string[] }> = [];
  page.on("websocket", (ws) => ws.on("framesent", (f) => ops.push(JSON.parse(String(f.payload)))));
  await page.goto("/");
  await expect(priceOf(page, XRP, "w4")).not.toHaveText("—");

  // Take XRP out of the crypto widget (it is then on no widget: unsubscribed) …
  const crypto = page.locator('[data-widget="w4"]');
  await crypto.getByTestId("edit-widget").click();
  await row(page, XRP, "w4").getByTestId("remove").click();
  await expect(row(page, XRP, "w4")).toHaveCount(0);
  await crypto.getByTestId("edit-widget").click();

  // … and swap it into the Korean stocks widget in place of 에스피지.
  const krx = page.locator('[data-widget="w1"]');
  await krx.getByTestId("edit-widget").click();
  await row(page, SPG, "w1").getByTestId("swap").click();
  await krx.getByRole("combobox").fill("리플");
  await krx.locator(`[data-testid=search-option][data-id="${XRP}"]`).click();
  await krx.getByTestId("edit-widget").click();
  await expect(krx.getByTestId("quote-row").first()).toHaveAttribute("data-id", XRP);
  await expect(row(page, SPG, "w1")).toHaveCount(0);
  await seePriceChange(page, XRP, "w1");
  // The rows' instruments (the kimchi premiums beside BTC and ETH subscribe on their own).
  const rowOps = ops
    .map((o) => ({ ...o, ids: o.ids.filter((i) => !i.startsWith("derived.kimchi.")) }))
    .filter((o) => o.ids.length > 0);
  expect(rowOps[0]?.op).toBe("subscribe");
  expect(rowOps[0]?.ids).toHaveLength(22);
  // Removing XRP from its only widget unsubscribed it; swapping it in elsewhere subscribed it
  // again, and 에스피지, now on no widget, was unsubscribed.
  expect(rowOps.slice(1)).toEqual([
    { op: "unsubscribe", ids: [XRP] },
    { op: "unsubscribe", ids: [SPG] },
    { op: "subscribe", ids: [XRP] },
  ]);

  // Saved through the API: the URL carries the layout id.
  await expect(page.getByTestId("save-state")).toHaveAttribute("data-state", "saved");
  await expect(page).toHaveURL(/[?&]layout=/);
  const url = page.url();

  await page.reload();
  await expect(page.getByTestId("dashboard")).toHaveAttribute("data-editable", "true");
  await expect(page.locator('[data-widget="w1"] [data-testid=quote-row]').first()).toHaveAttribute("data-id", XRP);
  await expect(row(page, XRP, "w4")).toHaveCount(0);
  await seePriceChange(page, XRP, "w1");

  // Another browser with the link but not the secret: read-only, with "copy to my own layout".
  const other = await browser.newContext({ baseURL });
  const guest = await other.newPage();
  await guest.goto(url);
  await expect(guest.getByTestId("readonly-banner")).toBeVisible();
  await expect(guest.locator('[data-widget="w1"] [data-testid=quote-row]').first()).toHaveAttribute("data-id", XRP);
  await expect(guest.getByTestId("edit-widget")).toHaveCount(0);
  await guest.getByTestId("copy-layout").click();
  await expect(guest.getByTestId("readonly-banner")).toHaveCount(0);
  await expect(guest.getByTestId("edit-widget").first()).toBeVisible();
  expect(guest.url()).not.toBe(url);
  await other.close();
});

test("shows a banner and stale marks while the edge is unreachable, and recovers on retry", async ({ page }) => {
  let blocked = true;
  await page.routeWebSocket("**/ws", (ws) => {
    if (blocked) ws.close();
    else ws.connectToServer();
  });
  await page.goto("/");
  await expect(page.getByTestId("edge-banner")).toBeVisible();
  // REST gave the first prices, but nothing is live: every row is marked stale and greyed.
  await expect(priceOf(page, BTC)).not.toHaveText("—");
  await expect(row(page, BTC)).toHaveAttribute("data-fresh", "stale");
  await expect(row(page, BTC).getByTestId("fresh-mark")).toHaveText("지연");
  await page.screenshot({ path: path.join(shots, "edge-down-1440.png") });
  blocked = false;
  // The banner re-renders while the edge is down (its age ticks), so a click that waits for a
  // stable element can keep finding it detached; dispatch the click on the current one.
  await page.getByTestId("retry").dispatchEvent("click");
  await expect(page.getByTestId("edge-banner")).toHaveCount(0);
  await expect(row(page, BTC)).toHaveAttribute("data-fresh", "sim");
  await seePriceChange(page, BTC);
});

test("opens an instrument in the chart and switches interval and style", async ({ page }) => {
  await page.goto("/");
  const chart = page.getByTestId("chart");
  await expect(chart).toHaveAttribute("data-bars", /^[1-9]/);
  // The licence's attribution: the logo link inside the chart, and a text link.
  await expect(page.locator('[data-kind=chart] a[href*="tradingview.com"]').first()).toBeAttached();

  await row(page, "crypto.upbit.KRW-ETH").getByRole("button").first().click();
  await expect(page.getByTestId("chart-title")).toHaveAttribute("data-id", "crypto.upbit.KRW-ETH");
  await expect(chart).toHaveAttribute("data-id", "crypto.upbit.KRW-ETH");
  await expect(chart).toHaveAttribute("data-bars", /^[1-9]/);
  // The live candle follows the ticks.
  const last = await chart.getAttribute("data-last");
  await expect(chart).not.toHaveAttribute("data-last", last ?? "");

  const candles5m = page.waitForResponse((r) => r.url().includes("/api/v1/candles/crypto.upbit.KRW-ETH") && r.url().includes("interval=5m"));
  await page.getByTestId("interval-5m").click();
  expect((await candles5m).status()).toBe(200);
  await expect(chart).toHaveAttribute("data-interval", "5m");
  await expect(page.getByTestId("interval-5m")).toHaveAttribute("aria-pressed", "true");
  await expect(chart).toHaveAttribute("data-bars", /^[1-9]/);

  await page.getByTestId("style-line").click();
  await expect(chart).toHaveAttribute("data-style", "line");

  // Keyboard: a row is a button; Enter shows it in the chart.
  await row(page, "crypto.upbit.KRW-SOL").getByRole("button").first().focus();
  await page.keyboard.press("Enter");
  await expect(chart).toHaveAttribute("data-id", "crypto.upbit.KRW-SOL");

  // The chart's instrument, interval and style are part of the saved layout.
  await expect(page).toHaveURL(/[?&]layout=/);
  const layoutId = new URL(page.url()).searchParams.get("layout");
  await expect
    .poll(async () => {
      const body = (await (await page.request.get(`/api/v1/layouts/${layoutId}`)).json()) as { layout: { chart: { id: string } } };
      return body.layout.chart.id;
    })
    .toBe("crypto.upbit.KRW-SOL");
  await page.reload();
  await expect(chart).toHaveAttribute("data-id", "crypto.upbit.KRW-SOL");
  await expect(chart).toHaveAttribute("data-interval", "5m");
  await expect(chart).toHaveAttribute("data-style", "line");
  await expect(chart).toHaveAttribute("data-bars", /^[1-9]/);
  await page.screenshot({ path: path.join(shots, "chart-1440.png"), clip: (await page.locator("[data-kind=chart]").boundingBox()) ?? undefined });
});

test("toggles dark mode", async ({ page }) => {
  await page.goto("/");
  await expect(priceOf(page, BTC)).not.toHaveText("—");
  const html = page.locator("html");
  await expect(html).not.toHaveClass(/dark/);
  const lightBg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  await page.getByTestId("theme-toggle").click();
  await expect(html).toHaveClass(/dark/);
  const darkBg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  expect(darkBg).not.toBe(lightBg);
  await page.waitForTimeout(500);
  await page.screenshot({ path: path.join(shots, "dark-1440.png"), fullPage: true });
  // The choice survives a reload.
  await page.reload();
  await expect(html).toHaveClass(/dark/);
  // English toggle.
  await page.getByTestId("lang-toggle").click();
  await expect(page.getByTestId("widget-title").filter({ hasText: "Crypto" })).toBeVisible();
  await page.screenshot({ path: path.join(shots, "dark-en-1440.png"), fullPage: true });
});

for (const [w, h] of [
  [390, 844],
  [1440, 900],
  [2560, 1440],
] as const) {
  test(`screenshot at ${w}px`, async ({ page }) => {
    await page.setViewportSize({ width: w, height: h });
    await page.goto("/");
    await seePriceChange(page, BTC);
    await expect(page.getByTestId("chart")).toHaveAttribute("data-bars", /^[1-9]/);
    await page.waitForTimeout(1000);
    // Nothing overflows the viewport sideways.
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    await page.screenshot({ path: path.join(shots, `dashboard-${w}.png`), fullPage: true });
  });
}
