import { createHmac } from "node:crypto";
import { expect, test } from "@playwright/test";
import { signIn } from "./session";

const SHOTS = "../target/e2e/screenshots";

test("sandbox hires become exports; the failed one shows why on its timeline", async ({ page }) => {
  await signIn(page);
  // the sample hires are delivered at start-up and worked by the export worker
  await expect(async () => {
    await page.goto("/exports?status=succeeded");
    await expect(page.getByRole("row")).toHaveCount(4, { timeout: 1000 });
  }).toPass({ timeout: 30_000 });
  await page.screenshot({ path: `${SHOTS}/exports-succeeded.png`, fullPage: true });

  await page.goto("/exports?status=needs_attention");
  const failed = page.getByRole("row").nth(1);
  await expect(failed).toContainText("Needs attention");
  await failed.getByRole("link").first().click();
  await expect(page).toHaveURL(/\/exports\/\d+$/);
  await expect(page.getByRole("heading", { level: 1 })).toContainText("Export");
  await expect(page.getByText(/Last name \(root\.surname\): HiBob requires a value and every template was empty for this candidate \(candidate_last_name is empty\)/).first()).toBeVisible();
  await expect(page.getByText("Webhook application_hired received")).toBeVisible();
  await expect(page.getByRole("button", { name: "Retry export" })).toBeVisible();
  await page.screenshot({ path: `${SHOTS}/export-timeline.png`, fullPage: true });

  await page.goto("/");
  await expect(page.locator(".exports-overview")).toContainText("Needs attention");
  await page.screenshot({ path: `${SHOTS}/dashboard-sandbox.png`, fullPage: true });
});

test("the webhook log lists a badly signed delivery as rejected", async ({ page, request }) => {
  const body = JSON.stringify({ event: "application_hired", data: { application: { id: 4242 } } });
  const forged = createHmac("sha256", "not the secret").update(body).digest("base64");
  const res = await request.post("/webhooks/pinpoint", {
    data: body,
    headers: { "content-type": "application/json", "PINPOINT-HMAC-SHA256": forged },
  });
  expect(res.status()).toBe(401);

  await signIn(page);
  await page.goto("/webhooks?outcome=rejected");
  await expect(page.getByText("bad signature").first()).toBeVisible();
  await page.goto("/webhooks");
  await expect(page.getByRole("cell", { name: "Accepted" }).first()).toBeVisible();
  await page.screenshot({ path: `${SHOTS}/webhooks-log.png`, fullPage: true });
});
