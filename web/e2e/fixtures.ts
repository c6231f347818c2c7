// The base URL of the backend started by global-setup (set in the environment after the
// config was loaded, so it is read here, in the worker).
import { test as base, expect, type Page } from "@playwright/test";

export const test = base.extend({
  baseURL: async ({}, provide) => {
    const url = process.env.SISE_E2E_BASE_URL;
    if (!url) throw new Error("SISE_E2E_BASE_URL not set: run through `npm run test:e2e`");
    await provide(url);
  },
});

export { expect };

export const row = (page: Page, id: string, widget?: string) =>
  (widget ? page.locator(`[data-testid=widget][data-widget="${widget}"]`) : page)
    .locator(`[data-testid=quote-row][data-id="${id}"]`)
    .first();

export const priceOf = (page: Page, id: string, widget?: string) => row(page, id, widget).getByTestId("price");

/** Waits until the price text of `id` is a number and then changes, returning both texts. */
export async function seePriceChange(page: Page, id: string, widget?: string, timeout = 15_000): Promise<[string, string]> {
  const price = priceOf(page, id, widget);
  await expect(price).not.toHaveText("—", { timeout });
  const first = (await price.textContent()) ?? "";
  await expect(price).not.toHaveText(first, { timeout });
  return [first, (await price.textContent()) ?? ""];
}
