// Runs after mappings.spec.ts (files run in name order): it never saves a mapping version that
// the mappings walk-through counts on.
import { expect, test, type Page } from "@playwright/test";
import { signIn } from "./session";

const SHOTS = "../target/e2e/screenshots";
const LAPTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

async function shots(page: Page, name: string) {
  for (const [size, width] of [["laptop", LAPTOP], ["phone", PHONE]] as const) {
    await page.setViewportSize(width);
    await page.waitForTimeout(200);
    await page.screenshot({ path: `${SHOTS}/${name}-${size}.png`, fullPage: true });
  }
  await page.setViewportSize(LAPTOP);
}

test("a site HiBob does not have, typed as a template line, blocks saving with a suggestion", async ({ page }) => {
  await signIn(page);
  await page.goto("/mappings");
  await page.waitForLoadState("networkidle");
  const site = page.getByLabel("Templates of row 4");
  await expect(site).toHaveValue("{{ default_site }}");
  await expect(site).toBeEnabled();
  await site.fill("London HQ");
  const issue = page.locator("li.issue.error", { hasText: "Did you mean London?" });
  await expect(issue).toBeVisible();
  await expect(issue).toContainText("every hire would stop here");
  await expect(page.getByRole("button", { name: /^Save as version \d+$/ })).toBeDisabled();
  await expect(page.getByLabel("What changed and why")).toHaveAttribute("required", "");
  await shots(page, "mapping-constant-site");
  // at phone width each field keeps its label though the column headers are hidden
  await page.setViewportSize(PHONE);
  const label = await page
    .locator(".mapping-table td[data-label]")
    .first()
    .evaluate((td) => getComputedStyle(td, "::before").content);
  expect(label).toContain("HiBob field");
});

test("the refused-deliveries panel names a malformed signature header, and clears once it is re-processed", async ({
  page,
  request,
}) => {
  const body = JSON.stringify({ event: "application_hired", data: { application: { id: 777321 } } });
  const res = await request.post("/webhooks/pinpoint", {
    data: body,
    headers: { "content-type": "application/json", "PINPOINT-HMAC-SHA256": "not base64 at all!" },
  });
  expect(res.status()).toBe(401);

  await signIn(page);
  const panel = page.locator("[data-test=refused-deliveries]");
  const malformed = panel.locator("[data-cause=malformed_header]");
  await expect(malformed).toContainText("was not a signature");
  await expect(malformed).not.toContainText("Settings");
  await shots(page, "dashboard-malformed-header");

  await page.goto("/webhooks?outcome=rejected&search=777321");
  await page.getByRole("row").filter({ hasText: "777321" }).getByRole("link").first().click();
  await expect(page).toHaveURL(/\/webhooks\/\d+$/);
  await page.waitForLoadState("networkidle");
  await page.getByLabel(/I checked in Pinpoint that application 777321/).check();
  await page.getByRole("button", { name: "Re-process unverified delivery" }).click();
  await expect(page.getByText(/re-processed/i).first()).toBeVisible();

  await page.goto("/");
  await expect(page.getByRole("heading", { name: "Dashboard", level: 1 })).toBeVisible();
  await page.waitForLoadState("networkidle");
  await expect(page.locator("[data-cause=malformed_header]")).toHaveCount(0);
});

test("an admin resets a user's password, the user signs in with it and then picks their own", async ({ page }) => {
  const email = `reset-${Date.now()}@example.com`;
  await signIn(page);
  await page.goto("/users");
  await page.waitForLoadState("networkidle");
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Role", { exact: true }).selectOption("operator");
  await page.getByLabel("Initial password").fill("an initial password");
  await page.getByRole("button", { name: "Add user" }).click();
  await expect(page.getByText("User added.")).toBeVisible();

  await page.getByRole("button", { name: `Reset the password of ${email}` }).click();
  const shown = page.locator("[data-test=new-password]");
  await expect(shown).toBeVisible();
  const password = (await shown.textContent())?.trim() ?? "";
  expect(password).toMatch(/^([A-Za-z2-9]{4}-){4}[A-Za-z2-9]{4}$/);
  await shots(page, "users-reset");

  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page.getByRole("heading", { name: "Sign in" })).toBeVisible();
  await signIn(page, email, password);

  await page.goto("/account");
  await expect(page.getByRole("heading", { name: "Your account", level: 1 })).toBeVisible();
  await page.waitForLoadState("networkidle");
  await page.getByLabel("Current password").fill(password);
  await page.getByLabel("New password", { exact: true }).fill("a password of my own");
  await page.getByLabel("New password again").fill("a password of my own");
  await page.getByRole("button", { name: "Change password" }).click();
  await expect(page.getByText("Your password was changed.")).toBeVisible();
  await shots(page, "account");
  // this session carries on; a new sign-in takes the new password
  await page.goto("/exports");
  await expect(page.getByRole("heading", { name: "Exports", level: 1 })).toBeVisible();
  await page.getByRole("button", { name: "Sign out" }).click();
  await signIn(page, email, "a password of my own");
});

test("at 390 px every navigation link is on screen and the exports list shows status first", async ({ page }) => {
  await page.setViewportSize(PHONE);
  await signIn(page);
  const links = page.getByRole("navigation", { name: "Main" }).getByRole("link");
  await expect(links.last()).toBeVisible();
  const count = await links.count();
  expect(count).toBeGreaterThanOrEqual(8);
  for (let i = 0; i < count; i++) {
    const box = await links.nth(i).boundingBox();
    expect(box, `link ${i}`).not.toBeNull();
    expect(box!.x).toBeGreaterThanOrEqual(0);
    expect(box!.x + box!.width).toBeLessThanOrEqual(PHONE.width);
  }
  await page.screenshot({ path: `${SHOTS}/nav-phone.png` });
  await page.goto("/exports");
  const status = page.getByRole("columnheader", { name: "Status" });
  await status.scrollIntoViewIfNeeded();
  await expect(status).toBeInViewport();
  // in view without scrolling the table sideways
  const box = await status.boundingBox();
  expect(box!.x).toBeGreaterThanOrEqual(0);
  expect(box!.x + box!.width).toBeLessThanOrEqual(PHONE.width);
  const first = await page.getByRole("columnheader").first().textContent();
  expect(first).toBe("Status");
  await page.screenshot({ path: `${SHOTS}/exports-phone.png`, fullPage: true });
  // filters set: one link clears them all
  await page.goto("/exports?status=succeeded&search=zzz");
  await page.getByRole("link", { name: "Clear filters" }).click();
  await expect(page).toHaveURL(/\/exports$/);
  await expect(page.getByRole("link", { name: "Clear filters" })).toHaveCount(0);
});

test("after sign-in and after moving between pages, focus is on the page's main heading", async ({ page }) => {
  await signIn(page);
  await expect(page.getByRole("heading", { name: "Dashboard", level: 1 })).toBeFocused();
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Exports" }).click();
  await expect(page.getByRole("heading", { name: "Exports", level: 1 })).toBeFocused();
  await page.keyboard.press("Tab");
  await expect(page.getByRole("heading", { name: "Exports", level: 1 })).not.toBeFocused();
});
