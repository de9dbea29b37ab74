import AxeBuilder from "@axe-core/playwright";
import { expect, test, type Page } from "@playwright/test";
import { signIn } from "./session";

// axe-core on every page of the console, at a laptop's width and a phone's, once the page is
// live: no critical or serious violation anywhere, and a moderate one only with its reason here.

const SHOTS = "../target/e2e/screenshots";
const WIDTHS = [
  { name: "laptop", width: 1280, height: 800 },
  { name: "phone", width: 390, height: 844 },
];

// Moderate findings accepted, each with the reason it is not a fault here.
const EXPLAINED: Record<string, string> = {};

async function firstLink(page: Page, list: string, pattern: RegExp): Promise<string> {
  await page.goto(list);
  const link = page.locator("table a").filter({ hasText: /./ }).first();
  await expect(link).toBeVisible({ timeout: 30_000 });
  const href = await page.locator("table a").evaluateAll(
    (links, source) =>
      links.map((a) => a.getAttribute("href") ?? "").find((h) => new RegExp(source).test(h)) ?? "",
    pattern.source,
  );
  expect(href).toMatch(pattern);
  return href;
}

async function check(page: Page, path: string, label: string) {
  for (const size of WIDTHS) {
    await page.setViewportSize({ width: size.width, height: size.height });
    await page.goto(path);
    await page.locator("html[data-hydrated]").waitFor();
    await page.waitForLoadState("networkidle");
    const results = await new AxeBuilder({ page }).analyze();
    const faults = results.violations.filter(
      (v) => v.impact === "critical" || v.impact === "serious" || (v.impact === "moderate" && !EXPLAINED[v.id]),
    );
    const described = faults.map(
      (v) => `${v.impact} ${v.id}: ${v.help} — ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`,
    );
    expect(described, `${path} at ${size.width}px`).toEqual([]);
    // nothing wider than the screen but what scrolls inside its own frame
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow, `${path} at ${size.width}px scrolls sideways`).toBeLessThanOrEqual(0);
    await page.screenshot({ path: `${SHOTS}/a11y-${label}-${size.name}.png`, fullPage: true });
  }
}

test("every page passes axe at laptop and phone widths", async ({ page }) => {
  test.setTimeout(240_000);
  await page.goto("/login");
  await page.locator("html[data-hydrated]").waitFor();
  for (const size of WIDTHS) {
    await page.setViewportSize({ width: size.width, height: size.height });
    const results = await new AxeBuilder({ page }).analyze();
    expect(results.violations.filter((v) => v.impact !== "minor" && !EXPLAINED[v.id]).map((v) => v.id)).toEqual([]);
  }
  await signIn(page);
  const exportPage = await firstLink(page, "/exports", /^\/exports\/\d+$/);
  const deliveryPage = await firstLink(page, "/webhooks", /^\/webhooks\/\d+$/);
  const pages: [string, string][] = [
    ["/", "dashboard"],
    ["/exports", "exports"],
    [exportPage, "export"],
    ["/webhooks", "webhooks"],
    [deliveryPage, "delivery"],
    ["/mappings", "mappings"],
    ["/mappings/versions/1", "mapping-version"],
    ["/variables", "variables"],
    ["/settings", "settings"],
    ["/users", "users"],
    ["/audit", "audit"],
  ];
  for (const [path, label] of pages) {
    await check(page, path, label);
  }
});
