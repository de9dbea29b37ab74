import { expect, type Page } from "@playwright/test";
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
