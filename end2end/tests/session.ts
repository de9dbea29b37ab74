import { expect, type Browser, type Page } from "@playwright/test";
import { ADMIN_EMAIL, ADMIN_PASSWORD } from "../playwright.config";

/** Signs in through the form and waits for the dashboard to be live, so what a test clicks next
 * runs in the hydrated page rather than as a plain form post. */
export async function signIn(page: Page, email = ADMIN_EMAIL, password = ADMIN_PASSWORD) {
  await page.goto("/login");
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("heading", { name: "Dashboard" })).toBeVisible();
  await hydrated(page);
}

/** Waits until the page is live: the attribute the app sets once it has hydrated. */
export async function hydrated(page: Page) {
  await page.locator("html[data-hydrated]").waitFor();
}

/** Adds a user through the Users page as the signed-in admin, and signs them in in a browser
 * context of their own (closed by the caller). */
export async function asNewUser(page: Page, browser: Browser, email: string, role: string, password: string) {
  await page.goto("/users");
  await hydrated(page);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Role", { exact: true }).selectOption(role);
  await page.getByLabel("Initial password").fill(password);
  await page.getByRole("button", { name: "Add user" }).click();
  await expect(page.getByText("User added.")).toBeVisible();
  const context = await browser.newContext();
  const other = await context.newPage();
  await signIn(other, email, password);
  return { context, page: other };
}
