import { defineConfig } from "@playwright/test";

// Debian's Chromium: browser downloads are not possible on the machines this runs on.
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const PORT = process.env.E2E_PORT ?? "3999";
export const BASE_URL = `http://127.0.0.1:${PORT}`;
export const ADMIN_EMAIL = "admin@example.com";
export const ADMIN_PASSWORD = "e2e admin password";

/** The console's environment. A test that starts a second console beside it reuses it. */
export const SERVER_ENV: Record<string, string> = {
  // E2E_DATABASE_URL runs the suite against another database, such as an empty PostgreSQL one
  DATABASE_URL: process.env.E2E_DATABASE_URL ?? "sqlite://../target/e2e/console.db",
  LEPTOS_SITE_ADDR: `127.0.0.1:${PORT}`,
  LEPTOS_SITE_ROOT: "../target/site",
  LEPTOS_OUTPUT_NAME: "pinpoint-hibob",
  // the build names its assets by content hash (hash.txt beside the binary)
  LEPTOS_HASH_FILES: "true",
  ADMIN_EMAIL,
  ADMIN_PASSWORD,
  SECRET_KEY: "Zm9yIGVuZC10by1lbmQgdGVzdHMgb25seSEhISEhISE=",
  RUST_LOG: "warn",
};
export const SERVER_BINARY = "../target/debug/pinpoint-hibob";

const CHROMIUM_USE = {
  browserName: "chromium" as const,
  launchOptions: {
    executablePath: CHROMIUM,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  },
};

export default defineConfig({
  testDir: "./tests",
  timeout: 60_000,
  expect: { timeout: 10_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  forbidOnly: !!process.env.CI,
  reporter: [["list"]],
  outputDir: "../target/e2e/results",
  use: { baseURL: BASE_URL, trace: "off" },
  webServer: {
    command: SERVER_BINARY,
    url: `${BASE_URL}/readyz`,
    timeout: 60_000,
    reuseExistingServer: false,
    stdout: "pipe",
    stderr: "pipe",
    env: SERVER_ENV,
  },
  projects: [
    { name: "debian-chromium", use: CHROMIUM_USE, testIgnore: /several_consoles/ },
    // starts and kills consoles beside the one under test, so it runs after everything else
    {
      name: "several-consoles",
      use: CHROMIUM_USE,
      testMatch: /several_consoles/,
      dependencies: ["debian-chromium"],
    },
  ],
});
