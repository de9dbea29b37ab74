import { expect, test } from "@playwright/test";
import { hydrated, signIn } from "./session";

// Keeping HiBob in step after the export, as the sandbox plays it: sample hire 1002's start date
// moves a week later in Pinpoint once the employee is in HiBob.

const SHOTS = "../target/e2e/screenshots";

test("a start date moved in Pinpoint after the export is shown, listed and sent to HiBob in one click", async ({ page }) => {
  test.setTimeout(120_000);
  await signIn(page);
  // by e-mail: "1002" alone may also be part of another hire's random 19-digit HiBob id
  await page.goto(`/exports?search=${encodeURIComponent("+1002@example.com")}`);
  const row = page.getByRole("region", { name: "Exports" }).locator('a[href^="/exports/"]').first();
  const href = await row.getAttribute("href");
  expect(href).toMatch(/^\/exports\/\d+$/);

  // the watch takes up exported hires within half a minute
  await expect(async () => {
    await page.goto(href!);
    await expect(page.getByRole("heading", { name: "Changed since export" })).toBeVisible({ timeout: 2_000 });
  }).toPass({ timeout: 60_000, intervals: [2_000] });
  await hydrated(page);
  const section = page.getByRole("region", { name: "Changed since export" });
  await section.getByRole("button", { name: "Check now" }).click();
  await expect(section.getByText("Checked: one field differs.")).toBeVisible();
  const change = section.getByRole("row", { name: /work\.startDate/ });
  await expect(change).toBeVisible();
  const cells = change.getByRole("cell");
  const sent = (await cells.nth(0).innerText()).trim();
  const now = (await cells.nth(1).innerText()).trim();
  expect(now).not.toEqual(sent);
  await expect(cells.nth(2)).toHaveText(sent);
  await page.screenshot({ path: `${SHOTS}/changed-since-export.png`, fullPage: true });

  // the dashboard lists the hire until it is dealt with
  await page.goto("/");
  const listed = page.locator('[data-test="changed-hires"]');
  await expect(listed).toContainText("Changed since export");
  await expect(listed).toContainText(`${sent} → ${now}`);
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: `${SHOTS}/changed-hires-phone.png`, fullPage: true });
  await page.setViewportSize({ width: 1280, height: 900 });

  await listed.locator(`a[href^="${href}"]`).click();
  await hydrated(page);
  const again = page.getByRole("region", { name: "Changed since export" });
  await again.getByRole("row", { name: /work\.startDate/ }).getByRole("button", { name: "Update HiBob" }).click();
  await expect(again.getByText(/HiBob updated: .*→/)).toBeVisible();
  await expect(again.getByText("No changes: HiBob holds what Pinpoint says now.")).toBeVisible();

  await page.reload();
  await expect(page.getByText("Update the employee in HiBob (changed in Pinpoint)")).toBeVisible();
  await expect(page.getByText(/HiBob updated by admin@example.com/)).toBeVisible();
  await page.goto("/");
  await expect(page.locator('[data-test="changed-hires"]')).toHaveCount(0);
});
