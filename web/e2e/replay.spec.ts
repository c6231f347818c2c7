// 시점 재생 end to end, against the real `sise up` (sim source) of global-setup: a replay link
// opens the replay with its banner, prices come from the replayed past and move, live ticks do not
// leak in, the replay ends when it reaches the present, and the way back to live is one click.
import { mkdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { expect, priceOf, row, seePriceChange, test } from "./fixtures";

const BTC = "crypto.upbit.KRW-BTC";
const shots = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "test-results", "screenshots");

test.describe.configure({ mode: "serial" });

/** Records every text the BTC price cell shows, with the replay banner's state at that moment. */
async function recordPrices(page: import("@playwright/test").Page) {
  await page.addInitScript((id) => {
    const w = window as unknown as { __prices: { text: string; status: string | null; at: number }[]; __summaries: string[] };
    w.__prices = [];
    w.__summaries = [];
    const seen = () => {
      const summary = document.querySelector("[data-testid=replay-summary]")?.textContent;
      if (summary && !w.__summaries.includes(summary)) w.__summaries.push(summary);
      const el = document.querySelector(`[data-testid=quote-row][data-id="${id}"] [data-testid=price]`);
      const text = el?.textContent ?? "";
      const status = document.querySelector("[data-testid=replay-banner]")?.getAttribute("data-status") ?? null;
      const last = w.__prices[w.__prices.length - 1];
      if (!last || last.text !== text || last.status !== status) w.__prices.push({ text, status, at: Date.now() });
    };
    new MutationObserver(seen).observe(document, { subtree: true, childList: true, characterData: true, attributes: true });
  }, BTC);
}

test("a replay link replays the last minutes at 60×, then goes back to live", async ({ page, context, baseURL }) => {
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: baseURL });
  test.setTimeout(240_000);
  await recordPrices(page);
  // The sim has been ticking since global-setup; make sure there are two minutes of past to
  // replay (when this file runs alone, that means waiting for them).
  const firstMinute = async () => {
    const res = await page.request.get(`/api/v1/candles/${BTC}?interval=1m&limit=10&from=${Date.now() - 3600_000}`);
    const body = (await res.json()) as { candles: { t: number }[] };
    return body.candles[0]?.t ?? Date.now();
  };
  await expect.poll(async () => Date.now() - (await firstMinute()), { timeout: 200_000, intervals: [5_000] }).toBeGreaterThan(185_000);
  const from = Date.now() - 120_000;
  await page.goto(`/?replay=${from}&speed=60`);

  const banner = page.getByTestId("replay-banner");
  await expect(banner).toBeVisible();
  await expect(banner).toHaveAttribute("data-speed", "60");
  await expect(banner).toHaveAttribute("data-from", String(from));
  // Two minutes at 60× are over in about two seconds: what the banner said is recorded.
  await expect
    .poll(() => page.evaluate(() => (window as unknown as { __summaries: string[] }).__summaries.join("\n")))
    .toMatch(/시점 재생 중 · \d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} KST부터 · 60× — 실시간 아님/);
  await expect(page.getByTestId("replay-summary")).toContainText("KST부터 · 60× — 실시간 아님");
  await expect(page.getByTestId("kst-clock")).toHaveAttribute("data-replay", "true");
  await expect(page.getByTestId("replay-exit")).toHaveText("실시간으로 돌아가기");

  // Replayed prices appear (and move: counted below from every text the cell showed).
  await expect(priceOf(page, BTC)).not.toHaveText("—");

  // Two minutes at 60× take about two seconds; then it has caught up with the present.
  await expect(banner).toHaveAttribute("data-status", "ended", { timeout: 20_000 });
  await expect(page.getByTestId("replay-summary")).toContainText("재생 완료");
  const replayed = await page.evaluate(() => (window as unknown as { __prices: { text: string; status: string | null }[] }).__prices);
  const during = new Set(replayed.filter((p) => p.status === "playing" && p.text !== "—").map((p) => p.text));
  console.log(`[metric] replay_distinct_btc_prices_at_60x: ${during.size}`);
  if (during.size < 3) console.log(JSON.stringify(replayed));
  expect(during.size).toBeGreaterThanOrEqual(3);
  const count = Number((await page.getByTestId("replay-count").textContent())?.replace(/[^\d]/g, ""));
  console.log(`[metric] replay_ticks_shown: ${count}`);
  expect(count).toBeGreaterThan(50);

  // The chart was rebuilt from the history at the replay's start plus replayed ticks.
  await expect(page.getByTestId("chart").first()).toHaveAttribute("data-bars", /^[1-9]\d*$/);

  // Live ticks keep arriving on the live socket but never replace the replayed state.
  const frozen = await priceOf(page, BTC).textContent();
  const clock = await page.getByTestId("kst-clock").textContent();
  await page.waitForTimeout(3_000);
  await expect(priceOf(page, BTC)).toHaveText(frozen ?? "");
  await expect(page.getByTestId("kst-clock")).toHaveText(clock ?? "");
  await page.screenshot({ path: path.join(shots, "replay-ended-1440.png") });

  // The link that reopens this replay.
  await page.getByTestId("replay-copy-link").click();
  await expect(page.getByTestId("replay-copy-link")).toHaveText("복사됨");
  const link = await page.evaluate(() => navigator.clipboard.readText());
  const url = new URL(link);
  expect(url.searchParams.get("speed")).toBe("60");
  expect(url.searchParams.get("replay")).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?\+09:00$/);
  expect(Date.parse(url.searchParams.get("replay") ?? "")).toBe(from);

  // Back to live: banner gone, URL clean, clock live, prices ticking again.
  await page.getByTestId("replay-exit").click();
  await expect(banner).toHaveCount(0);
  await expect(page.getByTestId("kst-clock")).toHaveAttribute("data-replay", "false");
  expect(new URL(page.url()).searchParams.get("replay")).toBeNull();
  await seePriceChange(page, BTC);

  // The copied link opens the same replay.
  const again = await context.newPage();
  await again.goto(link);
  await expect(again.getByTestId("replay-banner")).toBeVisible();
  await expect(again.getByTestId("replay-banner")).toHaveAttribute("data-from", String(from));
  await expect(again.getByTestId("replay-banner")).toHaveAttribute("data-speed", "60");
  await again.close();
});

test("the header control starts a replay at a chosen speed; a bad link says so and stays live", async ({ page }) => {
  await page.goto("/?replay=not-a-time&speed=60");
  await expect(page.getByTestId("replay-bad-link")).toBeVisible();
  await expect(page.getByTestId("replay-banner")).toHaveCount(0);
  await seePriceChange(page, BTC);

  await page.getByTestId("replay-open").click();
  const panel = page.getByTestId("replay-panel");
  await expect(panel).toBeVisible();
  // A quick pick fills the start; then a start typed by hand, three minutes ago in KST.
  const input = page.getByTestId("replay-from");
  const before = await input.inputValue();
  await page.getByTestId("replay-preset-ago5m").click();
  await expect(input).not.toHaveValue(before);
  const kstInput = (t: number) => new Date(t + 9 * 3600_000).toISOString().slice(0, 19);
  await input.fill(kstInput(Date.now() - 180_000));
  await page.getByTestId("replay-speed-10").click();
  await page.screenshot({ path: path.join(shots, "replay-panel-1440.png") });
  await page.getByTestId("replay-start").click();

  const banner = page.getByTestId("replay-banner");
  await expect(banner).toBeVisible();
  await expect(banner).toHaveAttribute("data-speed", "10");
  await expect(page.getByTestId("replay-summary")).toContainText("10×");
  expect(new URL(page.url()).searchParams.get("speed")).toBe("10");
  await expect(priceOf(page, BTC)).not.toHaveText("—");
  // At 10× the replay clock moves ten seconds per second (it shows whole seconds, once a second).
  const a0 = Date.now();
  const c1 = await page.getByTestId("replay-clock").textContent();
  const a1 = Date.now();
  await page.waitForTimeout(2_000);
  const b0 = Date.now();
  const c2 = await page.getByTestId("replay-clock").textContent();
  const b1 = Date.now();
  const secs = (s: string | null) => {
    const [h, m, x] = (s ?? "").slice(11, 19).split(":").map(Number);
    return (h ?? 0) * 3600 + (m ?? 0) * 60 + (x ?? 0);
  };
  const moved = secs(c2) - secs(c1);
  console.log(`[metric] replay_clock_seconds_moved_at_10x: ${moved} in ${((b0 - a1) / 1000).toFixed(2)}–${((b1 - a0) / 1000).toFixed(2)} s`);
  expect(moved).toBeGreaterThanOrEqual(10 * ((b0 - a1) / 1000 - 1.2));
  expect(moved).toBeLessThanOrEqual(10 * ((b1 - a0) / 1000 + 1.2));
  await expect(banner).toHaveAttribute("data-status", "playing");
  // The chart shows the replayed past too (built from replayed ticks if nothing came before).
  await expect(page.getByTestId("chart").first()).toHaveAttribute("data-bars", /^[1-9]\d*$/);
  await page.screenshot({ path: path.join(shots, "replay-playing-1440.png") });

  // English labels too.
  await page.getByTestId("lang-toggle").click();
  await expect(page.getByTestId("replay-summary")).toContainText("NOT LIVE");
  await page.getByTestId("replay-exit").click();
  await expect(banner).toHaveCount(0);
  await page.getByTestId("lang-toggle").click();
  await seePriceChange(page, BTC);
});

interface Article {
  id: string;
  title: string;
  url: string;
  published: number;
}

test("the news widget stands at the replay clock, and live news is back at once after", async ({ page }) => {
  test.setTimeout(180_000);
  // Two headlines at least 30 s apart (the sim publishes three at start, then one every 30–90 s).
  let pair: [Article, Article] | null = null;
  await expect
    .poll(
      async () => {
        const res = await page.request.get("/api/v1/news?limit=50");
        const news = ((await res.json()) as { news: Article[] }).news;
        pair = null;
        for (let i = 0; i + 1 < news.length && !pair; i++) {
          if (news[i]!.published - news[i + 1]!.published >= 30_000) pair = [news[i]!, news[i + 1]!];
        }
        return pair !== null;
      },
      { timeout: 150_000, intervals: [5_000] },
    )
    .toBe(true);
  const [newer, older] = pair!;
  // At 1× the replay clock stays between the two for 15 s: the newer one must not show.
  const from = newer.published - 15_000;
  await page.goto(`/?replay=${from}&speed=1`);
  await expect(page.getByTestId("replay-banner")).toBeVisible();
  const widget = page.locator("[data-testid=widget][data-kind=news]").first();
  await widget.getByRole("button", { name: "전체", exact: true }).click();
  const list = widget.getByTestId("news-list");
  await expect(list).toHaveAttribute("data-replay", "true");
  await expect(widget.getByTestId("news-replay-mark")).toContainText("재생 시점 뉴스");
  await expect(widget.getByTestId("news-replay-mark")).toContainText("KST 기준 — 실시간 아님");
  // The newest headline shown is the one published before the replay's start.
  await expect(list.getByTestId("news-item").first()).toHaveAttribute("data-published", String(older.published));
  const shown = async () => {
    const asOf = Number(await list.getAttribute("data-as-of"));
    const times = await list.getByTestId("news-item").evaluateAll((els) => els.map((e) => Number(e.getAttribute("data-published"))));
    return { asOf, times };
  };
  const at = await shown();
  expect(at.times.length).toBeGreaterThanOrEqual(1);
  expect(at.asOf).toBeGreaterThanOrEqual(from);
  expect(at.asOf).toBeLessThan(newer.published);
  for (const t of at.times) expect(t).toBeLessThanOrEqual(at.asOf);
  // (Sim headlines repeat their wording; the link is the article's own.)
  expect(newer.url).toBeTruthy();
  await expect(list.locator(`a[href="${older.url}"]`)).toHaveCount(1);
  await expect(list.locator(`a[href="${newer.url}"]`)).toHaveCount(0);
  await widget.screenshot({ path: path.join(shots, "replay-news-1440.png") });

  // Back to live: the live list, newest headline included, without waiting for a fetch.
  await page.getByTestId("replay-exit").click();
  await expect(list).toHaveAttribute("data-replay", "false", { timeout: 1_000 });
  await expect(widget.getByTestId("news-replay-mark")).toHaveCount(0);
  const first = Number(await list.getByTestId("news-item").first().getAttribute("data-published"));
  expect(first).toBeGreaterThanOrEqual(newer.published);
});

test("a replay from before any stored data says so, shows where records begin, and jumps there", async ({ page }) => {
  test.setTimeout(120_000);
  const res = await page.request.get(`/api/v1/candles/${BTC}?interval=1m&limit=5000&from=${Date.now() - 24 * 3600_000}`);
  const firstMinute = ((await res.json()) as { candles: { t: number }[] }).candles[0]?.t;
  expect(firstMinute).toBeDefined();
  const before = firstMinute! - 3600_000;

  // A range wholly before the records: it ends at once, with nothing, and the banner says so.
  await page.goto(`/?replay=${before}&until=${before + 600_000}&speed=60`);
  const banner = page.getByTestId("replay-banner");
  await expect(banner).toHaveAttribute("data-status", "ended");
  const empty = page.getByTestId("replay-empty");
  await expect(empty).toHaveAttribute("data-kind", "nothing");
  await expect(empty).toContainText("이 구간에는 기록된 시세가 없습니다");
  await expect(page.getByTestId("replay-data-from")).toContainText(/기록은 \d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} KST부터 있습니다/);
  expect(Number(await empty.getAttribute("data-next"))).toBeGreaterThanOrEqual(firstMinute!);
  await expect(row(page, BTC).getByTestId("replay-gap")).toHaveText("기록 없음");
  await page.getByTestId("lang-toggle").click();
  await expect(empty).toContainText("No prices were recorded in this range");
  await page.getByTestId("lang-toggle").click();

  // Open-ended from an hour before: the empty windows pass at once and the first ticks are
  // found ahead of the replay clock; the notice says where they begin, each row too.
  await page.goto(`/?replay=${before}&speed=1`);
  await expect(banner).toHaveAttribute("data-status", "playing");
  await expect(empty).toHaveAttribute("data-kind", "all");
  await expect(empty).toContainText("이 시점에는 기록된 시세가 없습니다");
  await expect(page.getByTestId("replay-data-from")).toContainText("KST부터 있습니다");
  const next = Number(await empty.getAttribute("data-next"));
  expect(next).toBeGreaterThanOrEqual(firstMinute!);
  expect(next).toBeLessThan(firstMinute! + 120_000);
  const gap = row(page, BTC).getByTestId("replay-gap");
  await expect(gap).toHaveText(/^기록 없음 · \d{2}:\d{2}:\d{2}부터$|^기록 없음 · \d{2}-\d{2} \d{2}:\d{2}부터$/);
  await expect(priceOf(page, BTC)).toHaveText("—");
  await expect(page.getByTestId("chart-replay-gap")).toContainText("이 시점에는 기록된 시세가 없습니다");
  await page.screenshot({ path: path.join(shots, "replay-empty-1440.png") });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: path.join(shots, "replay-empty-390.png") });
  await page.setViewportSize({ width: 1440, height: 900 });

  // One click replays from where the records begin: prices come, the notice goes.
  await page.getByTestId("replay-jump").click();
  await expect(banner).toHaveAttribute("data-from", String(next));
  await expect(priceOf(page, BTC)).not.toHaveText("—");
  await expect(gap).toHaveCount(0);
  await expect(page.getByTestId("chart-replay-gap")).toHaveCount(0);
  await expect(page.locator("[data-testid=replay-empty][data-kind=all]")).toHaveCount(0);
  await page.getByTestId("replay-exit").click();
  await expect(banner).toHaveCount(0);
});

test.beforeAll(() => {
  mkdirSync(shots, { recursive: true });
});
