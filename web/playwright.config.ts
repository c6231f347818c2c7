import { defineConfig } from "@playwright/test";

// Browser tests against a real `sise up` (sim source, its own namespace) started by
// e2e/global-setup.ts. Uses Debian's chromium (`apt-get install chromium`), never a downloaded one.
export default defineConfig({
  testDir: "./e2e",
  outputDir: "./test-results/e2e",
  reporter: [["list"]],
  workers: 1,
  fullyParallel: false,
  forbidOnly: !!process.env.CI,
  retries: 0,
  timeout: 90_000,
  expect: { timeout: 15_000 },
  globalSetup: "./e2e/global-setup.ts",
  use: {
    browserName: "chromium",
    locale: "ko-KR",
    timezoneId: "Asia/Seoul",
    colorScheme: "light",
    viewport: { width: 1440, height: 900 },
    trace: "retain-on-failure",
    launchOptions: {
      executablePath: process.env.SISE_CHROMIUM ?? "/usr/bin/chromium",
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-quic",
        "--no-first-run",
        "--disable-component-update",
        "--disable-sync",
      ],
    },
  },
});
