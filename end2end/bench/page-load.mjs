// Page-load benchmark: cold and warm loads of the dashboard and the mappings editor through
// Chromium's network emulation (10 Mbit/s down and up, 40 ms latency), against a running console.
// Reports bytes over the wire, first contentful paint and the time until the page is interactive
// (hydrated: the `data-hydrated` attribute the app sets). Run by scripts/page-load-bench.sh.
//
//   BASE_URL=http://127.0.0.1:3000 EMAIL=… PASSWORD=… node end2end/bench/page-load.mjs
import { chromium } from "playwright-core";

const BASE = process.env.BASE_URL ?? "http://127.0.0.1:3000";
const EMAIL = process.env.EMAIL ?? "admin@example.com";
const PASSWORD = process.env.PASSWORD ?? "";
const RUNS = Number(process.env.RUNS ?? 5);
const PAGES = ["/", "/mappings"];
const NETWORK = { offline: false, latency: 40, downloadThroughput: 10_000_000 / 8, uploadThroughput: 10_000_000 / 8 };

// records when the page became interactive, on the page's own clock
const WATCH_HYDRATION = () => {
  const mark = () => {
    if (document.documentElement?.hasAttribute("data-hydrated") && !window.__hydratedAt) {
      window.__hydratedAt = performance.now();
    }
  };
  new MutationObserver(mark).observe(document, { attributes: true, subtree: true, attributeFilter: ["data-hydrated"] });
};

async function signedInContext(browser, identity) {
  const context = await browser.newContext(
    identity ? { extraHTTPHeaders: { "accept-encoding": "identity" } } : {},
  );
  await context.addInitScript(WATCH_HYDRATION);
  const page = await context.newPage();
  await page.goto(`${BASE}/login`);
  await page.getByLabel("Email").fill(EMAIL);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${BASE}/`);
  await page.close();
  return context;
}

async function load(context, path) {
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send("Network.enable");
  await cdp.send("Network.emulateNetworkConditions", NETWORK);
  let bytes = 0;
  let wasm = 0;
  let requests = 0;
  const urls = new Map();
  cdp.on("Network.requestWillBeSent", (e) => urls.set(e.requestId, e.request.url));
  cdp.on("Network.loadingFinished", (e) => {
    bytes += e.encodedDataLength;
    requests += 1;
    if ((urls.get(e.requestId) ?? "").endsWith(".wasm")) wasm += e.encodedDataLength;
  });
  await page.goto(`${BASE}${path}`, { waitUntil: "load" });
  await page.waitForFunction(() => window.__hydratedAt !== undefined, null, { timeout: 60_000 });
  await page.waitForLoadState("networkidle");
  const timing = await page.evaluate(() => ({
    fcp: performance.getEntriesByName("first-contentful-paint")[0]?.startTime ?? NaN,
    interactive: window.__hydratedAt,
  }));
  await page.close();
  return { bytes, wasm, requests, ...timing };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function measure(browser, identity) {
  const rows = [];
  for (const path of PAGES) {
    const cold = [];
    const warm = [];
    for (let i = 0; i < RUNS; i++) {
      const context = await signedInContext(browser, identity);
      // the sign-in page already fetched the assets: a fresh context per cold load, cache cleared
      const cdpPage = await context.newPage();
      const cdp = await context.newCDPSession(cdpPage);
      await cdp.send("Network.clearBrowserCache");
      await cdpPage.close();
      cold.push(await load(context, path));
      warm.push(await load(context, path));
      await context.close();
    }
    for (const [kind, list] of [["cold", cold], ["warm", warm]]) {
      rows.push({
        page: path,
        load: kind,
        kib: Math.round(median(list.map((r) => r.bytes)) / 1024),
        wasm_kib: Math.round(median(list.map((r) => r.wasm)) / 1024),
        requests: median(list.map((r) => r.requests)),
        fcp_ms: Math.round(median(list.map((r) => r.fcp))),
        interactive_ms: Math.round(median(list.map((r) => r.interactive))),
      });
    }
  }
  return rows;
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
});
try {
  console.log(`# ${RUNS} runs each, medians; 10 Mbit/s, 40 ms latency; ${BASE}`);
  console.log("| page | load | transferred (KiB) | of it WebAssembly (KiB) | requests | first contentful paint (ms) | interactive (ms) |");
  console.log("|---|---|---|---|---|---|---|");
  for (const r of await measure(browser, false)) {
    console.log(`| ${r.page} | ${r.load} | ${r.kib} | ${r.wasm_kib} | ${r.requests} | ${r.fcp_ms} | ${r.interactive_ms} |`);
  }
  if (process.env.ALSO_UNCOMPRESSED) {
    console.log("\n# the same, asking for no compression (what every browser got before)");
    console.log("| page | load | transferred (KiB) | first contentful paint (ms) | interactive (ms) |");
    console.log("|---|---|---|---|---|");
    for (const r of await measure(browser, true)) {
      console.log(`| ${r.page} | ${r.load} | ${r.kib} | ${r.fcp_ms} | ${r.interactive_ms} |`);
    }
  }
} finally {
  await browser.close();
}
