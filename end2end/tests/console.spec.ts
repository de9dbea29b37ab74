import { expect, test, type Page } from "@playwright/test";
import { ADMIN_EMAIL, ADMIN_PASSWORD } from "../playwright.config";
import { hydrated } from "./session";

const SHOTS = "../target/e2e/screenshots";

function trackConsoleErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on("console", (msg) => {
    // a refused sign-in is answered 422 on purpose; the browser reports every 4xx fetch
    if (msg.type() === "error" && !msg.text().includes("status of 422")) errors.push(msg.text());
  });
  page.on("pageerror", (err) => errors.push(err.message));
  return errors;
}

async function signIn(page: Page, email = ADMIN_EMAIL, password = ADMIN_PASSWORD) {
  await page.goto("/login");
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
}


test("sign in, visit every page, save a setting and see it masked, sign out", async ({ page }) => {
  const errors = trackConsoleErrors(page);

  await page.goto("/");
  await expect(page).toHaveURL(/\/login/);
  await page.screenshot({ path: `${SHOTS}/login.png`, fullPage: true });

  await signIn(page, ADMIN_EMAIL, "wrong password here");
  await expect(page.getByRole("alert")).toContainText("Email or password is incorrect.");

  await signIn(page);
  await expect(page.getByRole("heading", { name: "Dashboard" })).toBeVisible();
  await expect(page.getByText("Sandbox", { exact: true })).toBeVisible();
  await page.waitForLoadState("networkidle");
  await page.screenshot({ path: `${SHOTS}/dashboard.png`, fullPage: true });
  // A marker on window survives only client-side navigation: if it is still there after the
  // clicks below, the page hydrated and the router took over the links.
  await page.evaluate(() => ((window as any).__stillSamePage = true));

  const nav = page.getByRole("navigation", { name: "Main" });
  for (const [link, heading] of [
    ["Exports", "Exports"],
    ["Webhooks", "Webhook deliveries"],
    ["Mappings", "Mappings"],
    ["Users", "Users"],
    ["Audit", "Audit log"],
    ["Settings", "Settings"],
  ]) {
    await nav.getByRole("link", { name: link, exact: true }).click();
    await expect(page.getByRole("heading", { level: 1, name: heading })).toBeVisible();
    await page.screenshot({ path: `${SHOTS}/${link.toLowerCase()}.png`, fullPage: true });
  }
  expect(await page.evaluate(() => (window as any).__stillSamePage)).toBe(true);

  const sentinel = "e2e-SENTINEL-token-7d3f9a";
  await page.getByLabel("Plugin token").fill(sentinel);
  await page.getByLabel("Default start (days after hire)").fill("21");
  await page.getByRole("button", { name: "Save settings" }).click();
  await expect(page.getByText("Settings saved.")).toBeVisible();
  await expect(page.getByText("••••••••3f9a").first()).toBeVisible();
  const html = await page.content();
  expect(html).not.toContain(sentinel);
  await page.reload();
  expect(await page.content()).not.toContain(sentinel);
  await expect(page.getByText("sandbox simulator (read-only)").first()).toBeVisible();
  await page.screenshot({ path: `${SHOTS}/settings-saved.png`, fullPage: true });

  await page.getByRole("button", { name: "Test HiBob" }).click();
  await expect(page.locator("[data-test=connection-result]")).toContainText("Connected to HiBob");

  await nav.getByRole("link", { name: "Audit", exact: true }).click();
  // the newest entry is the admin's; the sandbox set one at its first start too
  await expect(page.getByText("Plugin token set").first()).toBeVisible();

  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page).toHaveURL(/\/login/);
  await page.goto("/settings");
  await expect(page).toHaveURL(/\/login/);

  expect(errors).toEqual([]);
});

test("an admin adds a viewer, who can read but not manage", async ({ page, browser }) => {
  await signIn(page);
  await expect(page.getByRole("heading", { name: "Dashboard" })).toBeVisible();
  await hydrated(page);
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Users", exact: true }).click();
  await page.getByLabel("Email").fill("viewer@example.com");
  await page.getByLabel("Role", { exact: true }).selectOption("viewer");
  await page.getByLabel("Initial password").fill("viewer password 123");
  await page.getByRole("button", { name: "Add user" }).click();
  await expect(page.getByText("User added.")).toBeVisible();
  await expect(page.getByRole("cell", { name: "viewer@example.com", exact: true })).toBeVisible();

  const context = await browser.newContext();
  const viewer = await context.newPage();
  await signIn(viewer, "viewer@example.com", "viewer password 123");
  await expect(viewer.getByRole("heading", { name: "Dashboard" })).toBeVisible();
  const nav = viewer.getByRole("navigation", { name: "Main" });
  await expect(nav.getByRole("link", { name: "Users", exact: true })).toHaveCount(0);
  await viewer.goto("/users");
  await expect(viewer.getByText("Your role does not allow this")).toBeVisible();
  await viewer.goto("/settings");
  await expect(viewer.getByRole("button", { name: "Save settings" })).toHaveCount(0);
  await context.close();
});
