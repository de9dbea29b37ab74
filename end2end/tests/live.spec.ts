import { execFileSync } from "node:child_process";
import { expect, test, type Page } from "@playwright/test";
import { asNewUser, hydrated, signIn } from "./session";

const SHOTS = "../target/e2e/screenshots";
// the database the server under test uses (see playwright.config.ts)
const DB = process.env.E2E_DATABASE_URL ?? "../target/e2e/console.db";

/** Runs one statement on the server's database, whichever engine it is. */
function runSql(statement: string) {
  if (DB.startsWith("postgres")) {
    execFileSync("psql", ["-X", "-q", "-v", "ON_ERROR_STOP=1", DB, "-c", statement]);
  } else {
    execFileSync("sqlite3", [DB, ".timeout 5000", statement]);
  }
}

/** A marker on window that only survives as long as the page is not reloaded. */
async function markPage(page: Page) {
  await page.evaluate(() => ((window as any).__notReloaded = true));
}
async function expectNotReloaded(page: Page) {
  expect(await page.evaluate(() => (window as any).__notReloaded)).toBe(true);
}

/** Script errors and panics (a hydration mismatch shows up here). */
function trackErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on("console", (msg) => {
    if (msg.type() === "error") errors.push(msg.text());
  });
  page.on("pageerror", (err) => errors.push(err.message));
  return errors;
}

function succeededCount(page: Page) {
  return page.locator(".exports-overview a.count", { hasText: "Succeeded" }).locator("strong");
}

test("the dashboard flags the failing sample hire and updates live when a test webhook arrives", async ({ page }) => {
  const errors = trackErrors(page);
  await signIn(page);
  // the sample hires are worked while the page is open: the failing one appears without a reload
  await markPage(page);
  const attention = page.locator(".attention-list");
  const noor = attention.locator(".attention-item", { hasText: "Noor" });
  await expect(noor).toBeVisible({ timeout: 30_000 });
  await expect(noor).toContainText("Needs attention");
  // the offer's start date is known although the mapping failed, so it sorts by urgency
  await expect(noor).toContainText(/starts in \d+ days/);
  await expect(noor.getByRole("link", { name: "Noor" })).toHaveAttribute("href", /^\/exports\/\d+$/);
  await expect(page.getByRole("img", { name: /Exports per day, last 14 days/ })).toBeVisible();
  await expect(page.locator("[data-test=queue-age]")).toBeVisible();
  await expect(succeededCount(page)).toHaveText(/^\d+$/, { timeout: 30_000 });
  await expectNotReloaded(page);

  const before = Number(await succeededCount(page).textContent());
  await page.getByRole("button", { name: "Send test webhook" }).click();
  // the answer names the candidate (once the worker has read them) and links to the export
  const sent = page.getByRole("status").filter({ hasText: /Sent the hire of/ });
  await expect(sent).toBeVisible();
  await expect(sent.getByRole("link", { name: /Open export \d+/ })).toBeVisible();
  // the worker creates the employee after the webhook was answered: only a live notice can tell
  await expect(succeededCount(page)).toHaveText(String(before + 1), { timeout: 20_000 });
  await expectNotReloaded(page);
  await page.screenshot({ path: `${SHOTS}/live-dashboard.png`, fullPage: true });

  await page.setViewportSize({ width: 390, height: 844 });
  await page.reload();
  await expect(noor).toBeVisible();
  await page.screenshot({ path: `${SHOTS}/live-dashboard-phone.png`, fullPage: true });
  expect(errors).toEqual([]);
});

test("a bulk retry of several failures shows its preview, progress and end", async ({ page }) => {
  const errors = trackErrors(page);
  await signIn(page);
  await expect(async () => {
    await page.goto("/exports?status=succeeded");
    await expect(page.getByRole("row")).not.toHaveCount(1, { timeout: 1000 });
  }).toPass({ timeout: 30_000 });
  // Stop three of the finished webhook exports as if HiBob had refused them. The sandbox fails
  // only one sample hire by itself, and a bulk retry is about several.
  runSql(
    `UPDATE exports SET status = 'needs_attention', last_error = 'HiBob 503 during the test'
       WHERE id IN (SELECT id FROM exports WHERE status = 'succeeded' AND source = 'webhook'
                    ORDER BY id LIMIT 3)`,
  );
  await page.goto("/exports?status=needs_attention");
  await expect(page.getByRole("row")).toHaveCount(5);
  // the disclosure is the hydrated page's: a click before that is undone when it hydrates
  await page.locator("html[data-hydrated]").waitFor();
  await markPage(page);

  await page.getByText("Retry matching…").click();
  const preview = page.locator("[data-test=bulk-preview]");
  await expect(preview).toContainText("4 exports will be retried");
  await page.screenshot({ path: `${SHOTS}/live-bulk-preview.png`, fullPage: true });
  await page.getByRole("button", { name: "Retry 4 exports" }).click();
  const run = page.locator("[data-test=bulk-run]").first();
  // the line says what is happening while it happens (a quick worker may already be done)
  await expect(page.getByRole("status").filter({ hasText: "Retrying 4 exports" }).or(run.getByText("Finished"))).toBeVisible();

  await expect(run.locator("progress")).toHaveAttribute("max", "4");
  // three are healed by the retry; the sample with no last name fails again
  await expect(run.locator(".progress-text")).toHaveText("4 of 4 done: 3 succeeded, 1 stopped again", { timeout: 30_000 });
  await expect(run.locator("progress")).toHaveAttribute("value", "4");
  await expect(run).toContainText("Finished");
  await expect(run.getByRole("button", { name: "Cancel" })).toHaveCount(0);
  // once it has ended nothing says it is still retrying, and the one that stopped is a click away
  await expect(page.getByText(/Retrying 4 exports/)).toHaveCount(0);
  await expect(run.getByRole("link", { name: /^Export \d+$/ })).toHaveCount(1);
  await expectNotReloaded(page);
  await page.screenshot({ path: `${SHOTS}/live-bulk-done.png`, fullPage: true });

  // progress is stored: it is there after a reload
  await page.reload();
  await expect(page.locator("[data-test=bulk-run]").first()).toContainText("4 of 4 done: 3 succeeded, 1 stopped again");
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: `${SHOTS}/live-exports-phone.png`, fullPage: true });
  expect(errors).toEqual([]);
});

test("a viewer sees no retry controls and the server refuses them the retry", async ({ page, browser }) => {
  await signIn(page);
  const { context, page: viewer } = await asNewUser(page, browser, "watcher@example.com", "viewer", "watcher password 123");
  await expect(viewer.locator(".attention-list")).toBeVisible();
  await expect(viewer.getByRole("button", { name: "Send test webhook" })).toHaveCount(0);
  await viewer.goto("/exports?status=needs_attention");
  await expect(viewer.getByRole("row").nth(1)).toContainText("Needs attention");
  await expect(viewer.getByText("Retry matching…")).toHaveCount(0);
  await expect(viewer.locator("[data-test=bulk-run]").first()).toBeVisible();
  await expect(viewer.getByRole("button", { name: "Cancel" })).toHaveCount(0);
  await viewer.getByRole("row").nth(1).getByRole("link").first().click();
  await expect(viewer.getByRole("heading", { level: 1 })).toContainText("Export");
  await expect(viewer.getByRole("button", { name: "Retry export" })).toHaveCount(0);

  // an operator retries the export the viewer is looking at: the viewer's page follows live
  const entries = viewer.locator(".timeline > li");
  const before = await entries.count();
  await markPage(viewer);
  await page.goto(viewer.url());
  await hydrated(page);
  await page.getByRole("button", { name: "Retry export" }).click();
  // the notice lasts only while the retry waits or runs; the new attempt on the timeline stays
  await expect(entries).not.toHaveCount(before, { timeout: 20_000 });
  await expect(viewer.locator(".timeline > li").last()).toContainText("Build the HiBob employee");
  await expectNotReloaded(viewer);

  for (const [endpoint, form] of [
    ["retry_matching_exports", { status: "needs_attention" }],
    ["retry_export", { id: "1" }],
    ["cancel_bulk_retry", { id: "1" }],
  ] as const) {
    const res = await viewer.request.post(`/api/${endpoint}`, {
      form,
      headers: { "Sec-Fetch-Site": "same-origin" },
    });
    expect(res.status(), endpoint).toBe(403);
  }
  await context.close();
});
