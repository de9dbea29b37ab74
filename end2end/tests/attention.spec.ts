import { createHmac } from "node:crypto";
import { expect, test } from "@playwright/test";
import { ADMIN_EMAIL } from "../playwright.config";
import { hydrated, signIn } from "./session";

// The traps an ops team met in the console, each tried as they would. Runs before the other
// files, while the sandbox's failed sample hire (Noor, application 1004) still needs attention.

const SHOTS = "../target/e2e/screenshots";

test("a fixed value is the last resort: the preview of a candidate with a surname keeps it", async ({ page }) => {
  await signIn(page);
  await page.goto("/mappings");
  await hydrated(page);
  await expect(page.getByText(/last resort, used only when every template is empty/)).toBeVisible();
  await page.getByLabel("Fixed value of row 2").fill("Unknown");
  await page.getByRole("button", { name: "Preview", exact: true }).click();
  const result = page.getByRole("region", { name: "Preview result" });
  await expect(result.locator("pre.body")).toContainText('"surname": "Lovelace"');
  await expect(result.getByRole("row", { name: /root\.surname/ })).toContainText("template 1");
  // a template that reads no variable would hide the fixed value: lint says so
  await page.getByLabel("Templates of row 2").fill("Doe");
  await expect(page.getByText(/reads no variable, so it gives every candidate the same value and the fixed value is never used/)).toBeVisible();
});

test("the editor arrives with its values and takes no typing until it is live", async ({ page, context }) => {
  await signIn(page);
  // 10 Mbit/s with 40 ms of latency, and a WebAssembly bundle that is slower still to arrive
  const cdp = await context.newCDPSession(page);
  await cdp.send("Network.enable");
  await cdp.send("Network.emulateNetworkConditions", {
    offline: false,
    latency: 40,
    downloadThroughput: 10_000_000 / 8,
    uploadThroughput: 10_000_000 / 8,
  });
  await page.route("**/*.wasm", async (route) => {
    await new Promise((r) => setTimeout(r, 2500));
    await route.continue();
  });
  await page.goto("/mappings", { waitUntil: "domcontentloaded" });
  const surname = page.getByLabel("Templates of row 2");
  // the server's HTML: values and lint are there, the inputs wait
  await expect(surname).toHaveValue("{{ candidate_last_name }}");
  await expect(page.getByLabel("HiBob field of row 2")).toHaveValue("root.surname");
  await expect(surname).toBeDisabled();
  await expect(page.locator("html[data-hydrated]")).toHaveCount(0);
  await page.screenshot({ path: `${SHOTS}/mappings-before-hydration.png`, fullPage: true });
  await hydrated(page);
  await expect(surname).toBeEnabled();
  await surname.fill("{{ candidate_last_name }}\n{{ candidate_first_name }}");
  await page.waitForTimeout(1000);
  await expect(surname).toHaveValue("{{ candidate_last_name }}\n{{ candidate_first_name }}");
  await page.unroute("**/*.wasm");
});

test("a badly signed delivery raises a dashboard alert that says how to fix it", async ({ page, request }) => {
  const body = JSON.stringify({ event: "application_hired", data: { application: { id: 5150 } } });
  const forged = createHmac("sha256", "a stale secret").update(body).digest("base64");
  const res = await request.post("/webhooks/pinpoint", {
    data: body,
    headers: { "content-type": "application/json", "PINPOINT-HMAC-SHA256": forged },
  });
  expect(res.status()).toBe(401);
  await signIn(page);
  const alert = page.locator("[data-test=refused-deliveries]");
  await expect(alert).toBeVisible();
  // sandbox settings are read-only: the advice does not send anyone to edit them
  await expect(alert).toContainText("did not match the sandbox's own signing secret");
  await expect(alert).not.toContainText("Settings");
  await expect(alert.getByRole("link", { name: "See them in the webhook log" })).toBeVisible();
  await page.screenshot({ path: `${SHOTS}/dashboard-refused.png`, fullPage: true });
});

test("a hire the mapping failed links to the fix, with the candidate chosen in the preview", async ({ page }) => {
  await signIn(page);
  await expect(async () => {
    await page.goto("/exports?status=needs_attention&search=1004");
    await expect(page.getByRole("row")).toHaveCount(2, { timeout: 1000 });
  }).toPass({ timeout: 30_000 });
  await page.getByRole("row").nth(1).getByRole("link").first().click();
  await expect(page).toHaveURL(/\/exports\/\d+$/);
  const id = page.url().split("/").pop();
  // the offer's start date is known although the mapping failed
  await expect(page.locator(".summary dd").filter({ hasText: /^\d{4}-\d{2}-\d{2}$/ })).toHaveCount(1);
  await page.getByRole("link", { name: "Fix in Mappings" }).click();
  await expect(page).toHaveURL(new RegExp(`/mappings\\?candidate=export:${id}`));
  await expect(page.locator("select[name=source]")).toHaveValue(`export:${id}`);
  const result = page.getByRole("region", { name: "Preview result" });
  await expect(result.getByText("This candidate would fail to export:")).toBeVisible();
  await expect(result).toContainText("Last name (root.surname)");
  await page.screenshot({ path: `${SHOTS}/mappings-fix-link.png`, fullPage: true });
});

test("a failed Send to HiBob export is resolved with a note, and says who resolved it", async ({ page, request }) => {
  await signIn(page);
  // play Pinpoint: a token the admin sets, then a submit HiBob refuses
  const token = "e2e plugin token for resolving";
  const saved = await page.request.post("/api/save_settings", {
    form: { "values[plugin_token]": token },
    headers: { "Sec-Fetch-Site": "same-origin" },
  });
  expect(saved.ok()).toBeTruthy();
  const answer = await request.post("/export-candidate/submit", {
    headers: { "content-type": "application/json", "X-Plugin-Token": token },
    data: {
      applicationId: "e2e-77",
      formFields: [
        { key: "firstName", value: "Robin" },
        { key: "lastName", value: "R0bot" },
        { key: "email", value: "robin.e2e@example.com" },
        { key: "startDate", value: "2027-02-01" },
        { key: "site", value: "London" },
      ],
    },
  });
  expect(answer.status()).toBe(200);
  expect((await answer.json()).success).toBe(false);

  await page.goto("/exports?source=plugin&status=needs_attention&search=robin.e2e");
  await page.getByRole("row").nth(1).getByRole("link").first().click();
  await expect(page).toHaveURL(/\/exports\/\d+$/);
  await hydrated(page);
  // it names its application, so the worker can finish it from there
  await expect(page.getByRole("button", { name: "Retry export" })).toBeVisible();
  await expect(page.getByText(/a successful submit for this application resolves it/)).toBeVisible();
  await page.getByText("Mark resolved without exporting").click();
  await page.getByLabel("Why it needs nothing more").fill("created in HiBob by hand");
  await page.getByRole("button", { name: "Mark resolved" }).click();
  await expect(page.getByText(`Resolved by ${ADMIN_EMAIL}`).first()).toBeVisible();
  await expect(page.locator(".summary")).toContainText("Resolved");
  await expect(page.getByText("created in HiBob by hand").first()).toBeVisible();
  await page.screenshot({ path: `${SHOTS}/export-resolved.png`, fullPage: true });
});

test("the keyboard stays where it was: the skip link moves focus to the page, a chosen completion keeps it in the template", async ({ page }) => {
  await signIn(page);
  await page.goto("/mappings");
  await hydrated(page);
  // a page opens with focus on its heading; the skip link still leads there from the top
  await expect(page.getByRole("heading", { name: "Mappings", level: 1 })).toBeFocused();
  const skip = page.getByRole("link", { name: "Skip to content" });
  await skip.focus();
  await expect(skip).toBeFocused();
  await page.keyboard.press("Enter");
  await expect(page.locator("main#main")).toBeFocused();
  const surname = page.getByLabel("Templates of row 2");
  await surname.fill("{{ candidate_last_name }}\n{{ candidate_first");
  await page.getByRole("button", { name: "candidate_first_name" }).click();
  await expect(surname).toBeFocused();
  await page.keyboard.type(" | upper");
  await expect(surname).toHaveValue("{{ candidate_last_name }}\n{{ candidate_first_name }} | upper");
});
