// Runs after mappings.spec.ts (files run in name order): it never saves a mapping version that
// the mappings walk-through counts on.
import { expect, test, type Page } from "@playwright/test";
import { asNewUser, hydrated, signIn } from "./session";

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
  // the refused delivery shows the export its re-processing made, and that export leads back
  const refusedUrl = page.url();
  await page.reload();
  const made = page.locator("[data-test=reprocessed-as]");
  await expect(made.getByRole("link", { name: /^Delivery \d+$/ })).toBeVisible();
  await made.getByRole("link", { name: /^Export \d+$/ }).click();
  await expect(page).toHaveURL(/\/exports\/\d+$/);
  const delivery = refusedUrl.split("/").pop();
  await page.locator(".timeline").getByRole("link", { name: new RegExp(`\\(delivery ${delivery}\\)`) }).click();
  await expect(page).toHaveURL(refusedUrl);

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

/** Saves the mapping as edited, with `note`, over warnings if it has any. */
async function saveMapping(page: Page, note: string) {
  await page.getByLabel("What changed and why").fill(note);
  const save = page.getByRole("button", { name: /^Save as version \d+$/ });
  await expect(save).toBeEnabled();
  await save.click();
  const anyway = page.getByRole("button", { name: /^Save anyway as version \d+$/ });
  const saved = page.getByText("Saved as a new version.");
  await expect(saved.or(anyway)).toBeVisible({ timeout: 20_000 });
  if (await anyway.isVisible()) {
    await anyway.click();
  }
  await expect(saved).toBeVisible();
}

test("the fix loop: an export the mapping failed is fixed in Mappings, retried from there, and its new attempt shows what HiBob got", async ({ page }) => {
  const errors: string[] = [];
  page.on("pageerror", (err) => errors.push(err.message));
  await signIn(page);
  // a mapping that leaves every hire without a surname
  await page.goto("/mappings");
  await hydrated(page);
  const surname = page.getByLabel("Templates of row 2");
  await expect(surname).toBeEnabled();
  await surname.fill('{{ candidate_last_name | replace(candidate_last_name, "") }}');
  await saveMapping(page, "e2e: the surname is lost");

  // a new hire stops on it
  await page.goto("/");
  await hydrated(page);
  await page.getByRole("button", { name: "Send test webhook" }).click();
  const sent = page.getByRole("status").filter({ hasText: /Sent the hire of/ });
  await sent.getByRole("link", { name: /Open export \d+/ }).click();
  await expect(page).toHaveURL(/\/exports\/\d+$/);
  const id = page.url().split("/").pop()!;
  await expect(async () => {
    await page.reload();
    await expect(page.getByRole("link", { name: "Fix in Mappings" })).toBeVisible({ timeout: 1000 });
  }).toPass({ timeout: 30_000 });
  await expect(page.locator("[data-test=attempts]")).toHaveText("1 of 8");
  await shots(page, "fix-loop-stopped");

  // the fix, from the export: the preview shows the failure until the template changes
  await page.getByRole("link", { name: "Fix in Mappings" }).click();
  await expect(page).toHaveURL(new RegExp(`/mappings\\?candidate=export:${id}`));
  await hydrated(page);
  const result = page.getByRole("region", { name: "Preview result" });
  await expect(result.getByText("This candidate would fail to export:")).toBeVisible();
  const stale = page.locator("[data-test=preview-stale]");
  await expect(stale).toHaveCount(0);
  await page.getByLabel("Templates of row 2").fill("{{ candidate_last_name }}");
  await expect(stale).toContainText("Preview is out of date");
  await shots(page, "fix-loop-stale-preview");
  await stale.getByRole("button", { name: "Run it again" }).click();
  await expect(result.getByText("This candidate would export.")).toBeVisible();
  await expect(stale).toHaveCount(0);
  await saveMapping(page, "e2e: the surname is the candidate's own again");

  // retried from the Mappings page, then back on the export with its new attempt
  const retry = page.getByRole("button", { name: new RegExp(`^Retry export ${id} with version \\d+$`) });
  await expect(retry).toBeVisible();
  await shots(page, "fix-loop-saved");
  await retry.click();
  const back = page.locator("[data-test=retry-fixed-export]");
  await expect(back).toContainText(`Export ${id} is queued for another attempt`);
  await back.getByRole("link", { name: `Open export ${id}` }).click();
  await expect(page).toHaveURL(new RegExp(`/exports/${id}$`));
  await expect(async () => {
    await page.reload();
    await expect(page.locator(".summary")).toContainText("Succeeded", { timeout: 1000 });
  }).toPass({ timeout: 30_000 });
  await expect(page.locator("[data-test=attempts]")).toHaveText("2 in all; 1 of 8 since the last retry");
  // what HiBob got is in view; what the mapping built is one click away
  const created = page.locator(".timeline li", { hasText: "Attempt 2: Create the employee in HiBob" });
  await expect(created.getByText("Body sent to HiBob")).toBeVisible();
  await expect(created.locator("pre.body")).toBeVisible();
  await expect(created.locator("pre.body")).toContainText('"surname":');
  const built = page.locator(".timeline li", { hasText: "Attempt 2: Build the HiBob employee" });
  await built.getByText("Employee built for HiBob").click();
  await expect(built.locator("pre.body")).toBeVisible();
  await expect(built.locator("pre.body")).toContainText('"surname":');
  await expect(page.locator(".timeline li", { hasText: "Attempt 1: Build the HiBob employee" })).toContainText("Failed");
  await shots(page, "fix-loop-retried");
  expect(errors).toEqual([]);
});

test("settings are grouped by service; an operator is told in one sentence why they are read-only", async ({ page, browser }) => {
  const email = `operator-${Date.now()}@example.com`;
  await signIn(page);
  await page.goto("/settings");
  const headings = page.locator("main h2");
  for (const name of ["Pinpoint", "HiBob", "Onboarding", "Alerts", "Data"]) {
    await expect(headings.filter({ hasText: new RegExp(`^${name}$`) })).toHaveCount(1);
  }
  await expect(page.locator("[data-test=read-only]")).toHaveCount(0);
  await expect(page.getByRole("button", { name: "Save settings" })).toBeVisible();
  // each section's check sits with its values
  const hibob = page.getByRole("region", { name: "HiBob" });
  await expect(hibob.getByText("HiBob service user token", { exact: true })).toBeVisible();
  await expect(hibob.getByRole("button", { name: "Test HiBob" })).toBeVisible();
  await expect(page.getByRole("region", { name: "Alerts" }).getByRole("button", { name: "Send test alert" })).toBeVisible();
  await shots(page, "settings-admin");

  const { context, page: operator } = await asNewUser(page, browser, email, "operator", "operator password 123");
  await operator.goto("/settings");
  await expect(operator.locator("[data-test=read-only]")).toHaveText(
    "You are signed in as an operator: you can read these settings and test the connections, but only an admin can change them.",
  );
  await expect(operator.getByRole("button", { name: "Save settings" })).toHaveCount(0);
  await expect(operator.locator("main input[name^=values]")).toHaveCount(0);
  await hydrated(operator);
  await operator.getByRole("button", { name: "Test HiBob" }).click();
  await expect(operator.locator("[data-test=connection-result]")).toContainText("Connected to HiBob");
  await operator.screenshot({ path: `${SHOTS}/settings-operator.png`, fullPage: true });
  await context.close();
});

test("the exports list counts what the filters select, writes days as YYYY-MM-DD, and a delivery and its export link both ways", async ({ page }) => {
  await signIn(page);
  await page.goto("/exports");
  const chips = page.locator("[data-test=status-counts] a.count");
  const total = async () => {
    let sum = 0;
    for (const n of await chips.locator("strong").allTextContents()) sum += Number(n);
    return sum;
  };
  expect(await total()).toBeGreaterThan(1);
  for (const cell of await page.locator("table.data tbody tr td:last-child").allTextContents()) {
    expect(cell.trim()).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}$/);
  }
  await expect(page.getByLabel("From")).toHaveAttribute("placeholder", "YYYY-MM-DD");
  // one hire selected: the chips count it alone, and keep the search when followed. By e-mail:
  // "1004" alone may also be part of some other hire's random 19-digit HiBob id.
  await page.goto(`/exports?search=${encodeURIComponent("+1004@example.com")}`);
  await expect(page.getByText("Matching these filters:")).toBeVisible();
  expect(await total()).toBe(1);
  await expect(chips.first()).toHaveAttribute("href", /search=[^&]*1004/);

  // Noor's export names its delivery, whose page leads back
  await page.getByRole("row").nth(1).getByRole("link").first().click();
  await expect(page).toHaveURL(/\/exports\/\d+$/);
  const exportUrl = page.url();
  await page.locator(".timeline").getByRole("link", { name: /Webhook application_hired received \(delivery \d+\)/ }).first().click();
  await expect(page).toHaveURL(/\/webhooks\/\d+$/);
  await page.getByRole("link", { name: /^Export \d+$/ }).first().click();
  await expect(page).toHaveURL(exportUrl);
});

test("at 390 px the mapping preview's table scrolls inside its frame and says so", async ({ page }) => {
  await signIn(page);
  await page.setViewportSize(PHONE);
  await page.goto("/mappings");
  await hydrated(page);
  await page.getByRole("button", { name: "Preview", exact: true }).click();
  const table = page.getByRole("region", { name: "Fields sent" });
  await expect(table).toBeVisible();
  await expect(page.getByText("Scroll the table sideways →")).toBeVisible();
  expect(await table.evaluate((el) => el.scrollWidth > el.clientWidth)).toBe(true);
  // the page itself does not scroll sideways
  expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(PHONE.width);
  await table.scrollIntoViewIfNeeded();
  await page.screenshot({ path: `${SHOTS}/mapping-preview-phone.png`, fullPage: true });
  await page.setViewportSize(LAPTOP);
  await expect(page.getByText("Scroll the table sideways →")).toBeHidden();
});
