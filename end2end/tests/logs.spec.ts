import { createHmac } from "node:crypto";
import { readFile } from "node:fs/promises";
import { expect, test, type Page } from "@playwright/test";
import { ADMIN_EMAIL } from "../playwright.config";
import { signIn } from "./session";

const SHOTS = "../target/e2e/screenshots";
const LAPTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

/** The page itself never scrolls sideways; wide tables scroll inside their own frame. */
async function expectNoSidewaysScroll(page: Page) {
  const overflow = await page.evaluate(
    () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
  );
  expect(overflow).toBeLessThanOrEqual(0);
}

test("a badly signed webhook is listed as rejected with its cause, and its detail hides the secrets", async ({
  page,
  request,
}) => {
  const body = JSON.stringify({ event: "application_hired", data: { application: { id: 777001 } } });
  const forged = createHmac("sha256", "a guessed secret").update(body).digest("base64");
  const res = await request.post("/webhooks/pinpoint", {
    data: body,
    headers: {
      "content-type": "application/json",
      "PINPOINT-HMAC-SHA256": forged,
      cookie: "tracking=cookie-secret-e2e",
      "user-agent": "e2e-forger/1.0",
    },
  });
  expect(res.status()).toBe(401);

  await signIn(page);
  await page.setViewportSize(LAPTOP);
  await page.goto("/webhooks?outcome=rejected&search=777001");
  const row = page.getByRole("row").filter({ hasText: "777001" });
  await expect(row).toHaveCount(1);
  await expect(row).toContainText("Rejected");
  await expect(row).toContainText("bad signature");
  await page.goto("/webhooks");
  await page.waitForLoadState("networkidle");
  await page.screenshot({ path: `${SHOTS}/webhook-log-laptop.png`, fullPage: true });

  await page.getByRole("row").filter({ hasText: "777001" }).getByRole("link").first().click();
  await expect(page).toHaveURL(/\/webhooks\/\d+$/);
  await expect(page.getByRole("heading", { level: 1 })).toContainText("Delivery");
  await expect(page.getByText("Its signature did not verify")).toBeVisible();
  await expect(page.getByRole("cell", { name: "e2e-forger/1.0" })).toBeVisible();
  await expect(page.getByRole("row").filter({ hasText: "pinpoint-hmac-sha256" })).toContainText("[redacted");
  await expect(page.getByRole("row").filter({ hasText: "cookie" })).toContainText("[redacted]");
  await expect(page.getByLabel("Delivery body")).toContainText('"id": 777001');
  const html = await page.content();
  expect(html).not.toContain(forged);
  expect(html).not.toContain("cookie-secret-e2e");
  // an admin may re-process it, but only after ticking the confirmation
  await expect(page.getByRole("button", { name: "Re-process unverified delivery" })).toBeVisible();
  await expect(page.getByLabel(/I checked in Pinpoint that application 777001/)).not.toBeChecked();
  await page.waitForLoadState("networkidle");
  await page.screenshot({ path: `${SHOTS}/webhook-detail-laptop.png`, fullPage: true });

  await page.setViewportSize(PHONE);
  await page.reload();
  await expect(page.getByRole("heading", { level: 1 })).toContainText("Delivery");
  await expectNoSidewaysScroll(page);
  await page.screenshot({ path: `${SHOTS}/webhook-detail-phone.png`, fullPage: true });
  await page.goto("/webhooks");
  await expect(page.getByRole("heading", { name: "Webhook deliveries" })).toBeVisible();
  await expectNoSidewaysScroll(page);
  await page.screenshot({ path: `${SHOTS}/webhook-log-phone.png`, fullPage: true });
});

test("the audit log downloads as CSV with the page's filters", async ({ page }) => {
  await signIn(page);
  await page.setViewportSize(LAPTOP);
  await page.goto("/audit?action=login");
  await expect(page.getByRole("heading", { name: "Audit log" })).toBeVisible();
  await expect(page.getByRole("cell", { name: "login.succeeded" }).first()).toBeVisible();
  await page.waitForLoadState("networkidle");
  await page.screenshot({ path: `${SHOTS}/audit-laptop.png`, fullPage: true });

  const [download] = await Promise.all([
    page.waitForEvent("download"),
    page.getByRole("link", { name: "Download these entries as CSV" }).click(),
  ]);
  expect(download.suggestedFilename()).toMatch(/^audit-\d{8}-\d{6}\.csv$/);
  const csv = await readFile(await download.path(), "utf8");
  const lines = csv.split("\r\n");
  // every cell is quoted, so no spreadsheet reads one as a formula
  expect(lines[0]).toBe('"id","at","actor","action","target","detail","client_ip"');
  expect(csv).toContain(`,"${ADMIN_EMAIL}","login.succeeded",`);
  expect(csv).not.toContain("settings.");

  await page.setViewportSize(PHONE);
  await page.goto("/audit");
  await expectNoSidewaysScroll(page);
  await page.screenshot({ path: `${SHOTS}/audit-phone.png`, fullPage: true });
});

test("the exports list filters by creation date and fits a phone", async ({ page }) => {
  await signIn(page);
  await page.setViewportSize(LAPTOP);
  await page.goto("/exports");
  await expect(page.getByRole("heading", { name: "Exports" })).toBeVisible();
  const today = new Date().toISOString().slice(0, 10);
  await page.getByLabel("From").fill(today);
  await page.getByLabel("To").fill(today);
  await page.getByRole("button", { name: "Filter" }).click();
  await expect(page).toHaveURL(new RegExp(`from=${today}&to=${today}`));
  await expect(page.getByRole("region", { name: "Exports" })).toBeVisible();
  await expect(page.getByLabel("From")).toHaveValue(today);
  await page.waitForLoadState("networkidle");
  await page.screenshot({ path: `${SHOTS}/exports-laptop.png`, fullPage: true });

  await page.goto("/exports?from=2001-01-01&to=2001-01-31");
  await expect(page.getByText("No exports match these filters.")).toBeVisible();
  await page.goto("/exports?from=2026-12-01&to=2026-01-01");
  await expect(page.getByRole("alert")).toContainText("is after the to date");
  await page.goto(`/exports?search=${"x".repeat(300)}`);
  await expect(page.getByRole("alert")).toContainText("use at most 200");

  await page.setViewportSize(PHONE);
  await page.goto("/exports");
  await expect(page.getByRole("region", { name: "Exports" })).toBeVisible();
  await expectNoSidewaysScroll(page);
  // the table scrolls inside its frame rather than squeezing its columns
  const wrap = page.getByRole("region", { name: "Exports" });
  expect(await wrap.evaluate((el) => el.scrollWidth > el.clientWidth)).toBe(true);
  await expect(page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Audit" })).toBeAttached();
  await page.screenshot({ path: `${SHOTS}/exports-phone.png`, fullPage: true });

  // keyboard: a page opens with focus on its heading (past the navigation); "Skip to content"
  // is visible when focused
  await page.goto("/webhooks");
  await expect(page.getByRole("heading", { name: "Webhook deliveries", level: 1 })).toBeFocused();
  const skip = page.getByRole("link", { name: "Skip to content" });
  await skip.focus();
  await expect(skip).toBeFocused();
  await expect(skip).toBeInViewport();
});
