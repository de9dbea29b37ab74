// Several consoles on one PostgreSQL database, seen from a browser page signed in on one of them:
// what another console finishes shows on the page live, and when that other console is killed
// mid-export (SIGKILL, a real process) the page's console takes its exports over and the page
// keeps updating without a reload. PostgreSQL pass only: a SQLite file is served by one process.
import { spawn, type ChildProcess } from "node:child_process";
import { createHmac } from "node:crypto";
import { createWriteStream } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { expect, test, type Page } from "@playwright/test";
import { SERVER_BINARY, SERVER_ENV } from "../playwright.config";
import { signIn } from "./session";

const ON_POSTGRES = (process.env.E2E_DATABASE_URL ?? "").startsWith("postgres");
const LOGS = "../target/e2e";

type Console = { child: ChildProcess; base: string };

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  const { port } = server.address() as AddressInfo;
  await new Promise((ok) => server.close(ok));
  return port;
}

/** Starts another console on the same database and waits until it says it is ready. */
async function startConsole(name: string, env: Record<string, string>): Promise<Console> {
  const port = await freePort();
  const log = createWriteStream(`${LOGS}/${name}.log`);
  const child = spawn(SERVER_BINARY, [], {
    env: { ...process.env, ...SERVER_ENV, ...env, LEPTOS_SITE_ADDR: `127.0.0.1:${port}` },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  const base = `http://127.0.0.1:${port}`;
  await expect(async () => {
    expect(child.exitCode ?? child.signalCode, `${name} ended; see ${LOGS}/${name}.log`).toBeNull();
    const res = await fetch(`${base}/readyz`);
    expect(res.status).toBe(200);
  }).toPass({ timeout: 60_000 });
  return { child, base };
}

async function kill(console: Console) {
  // a process ended by a signal keeps a null exit code
  if (console.child.exitCode !== null || console.child.signalCode !== null) return;
  const exited = new Promise((ok) => console.child.once("exit", ok));
  console.child.kill("SIGKILL");
  await exited;
}

function succeeded(page: Page) {
  return page.locator(".exports-overview a.count", { hasText: "Succeeded" }).locator("strong");
}

/** The Succeeded count once it has stayed put for a few seconds (earlier tests' work settled). */
async function settledSucceeded(page: Page): Promise<number> {
  let last = -1;
  let sameSince = Date.now();
  await expect(async () => {
    const now = Number(await succeeded(page).textContent());
    if (now !== last) {
      last = now;
      sameSince = Date.now();
    }
    expect(Date.now() - sameSince).toBeGreaterThan(3_000);
  }).toPass({ timeout: 60_000, intervals: [500] });
  return last;
}

/** Reloads the dashboard until its line on the consoles serving the database says `text`. */
async function servingLine(page: Page, text: string) {
  await expect(async () => {
    await page.reload();
    await expect(page.locator("[data-test=serving]")).toContainText(text, { timeout: 1_000 });
  }).toPass({ timeout: 40_000, intervals: [1_000] });
}

/** A Pinpoint that takes every application read and never answers it, so the console that
 * sent the read holds its export's lease until it dies. Everything else is refused. */
async function silentPinpoint(): Promise<{ server: Server; reads: () => number; base: string }> {
  let reads = 0;
  const held: ServerResponse[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (req.method === "GET" && (req.url ?? "").includes("/applications/")) {
      reads += 1;
      held.push(res);
      return;
    }
    res.writeHead(503, { "content-type": "application/json" }).end("{}");
  });
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  const { port } = server.address() as AddressInfo;
  server.on("close", () => held.forEach((r) => r.destroy()));
  return { server, reads: () => reads, base: `http://127.0.0.1:${port}` };
}

/** A signed application_hired, as Pinpoint sends it. */
async function deliverHire(base: string, secret: string, applicationId: number) {
  const body = JSON.stringify({
    event: "application_hired",
    triggeredAt: Math.floor(Date.now() / 1000),
    data: { application: { id: applicationId } },
  });
  const signature = createHmac("sha256", secret).update(body).digest("base64");
  const res = await fetch(`${base}/webhooks/pinpoint`, {
    method: "POST",
    headers: { "content-type": "application/json", "PINPOINT-HMAC-SHA256": signature },
    body,
  });
  expect(res.ok, `hire ${applicationId} acknowledged`).toBe(true);
}

test("a page on one console follows another console's exports, and that console's death", async ({ page }) => {
  test.skip(!ON_POSTGRES, "several consoles share a PostgreSQL database only");
  test.setTimeout(180_000);
  const started: Console[] = [];
  const pinpoint = await silentPinpoint();
  try {
    await signIn(page);
    const other = await startConsole("second-console", { SANDBOX: "on" });
    started.push(other);
    // the dashboard says it is one of two once the second console's first heartbeat is seen
    await servingLine(page, "one of 2 running on this database");
    await page.evaluate(() => ((window as any).__notReloaded = true));
    const before = await settledSucceeded(page);

    // the second console (in sandbox mode) exports a hire; the page on the first one hears of it
    const sent = await page.request.post(`${other.base}/api/send_test_webhook`, {
      headers: { "Sec-Fetch-Site": "same-origin" },
    });
    expect(sent.status(), await sent.text()).toBe(200);
    await expect(succeeded(page)).toHaveText(String(before + 1), { timeout: 30_000 });
    await kill(other);

    // a third console takes hires whose Pinpoint reads never come back, and is killed mid-read
    const secret = "several consoles e2e webhook secret";
    const doomed = await startConsole("doomed-console", {
      SANDBOX: "off",
      ALLOW_PRIVATE_DESTINATIONS: "true",
      PINPOINT_WEBHOOK_SECRET: secret,
      PINPOINT_API_BASE_URL: `${pinpoint.base}/api/v1`,
      PINPOINT_API_KEY: "e2e",
      HIBOB_API_BASE_URL: `${pinpoint.base}/hibob/v1`,
      HIBOB_SERVICE_USER_ID: "e2e",
      HIBOB_SERVICE_USER_TOKEN: "e2e",
      // short leases, so the survivor takes over within seconds
      EXPORT_LEASE_SECS: "3",
    });
    started.push(doomed);
    // the page's console claims hires too (a hire wakes every idle worker): hires go to the
    // doomed console until its worker is seen holding one
    const first = 9_700_000 + Math.floor(Math.random() * 10_000) * 100;
    const ids: number[] = [];
    for (const id of [first, first + 1, first + 2]) {
      ids.push(id);
      await deliverHire(doomed.base, secret, id);
    }
    await expect(async () => {
      if (pinpoint.reads() > 0) return;
      const id = first + ids.length;
      ids.push(id);
      await deliverHire(doomed.base, secret, id);
      await new Promise((done) => setTimeout(done, 250));
      expect(pinpoint.reads()).toBeGreaterThan(0);
    }).toPass({ timeout: 30_000 });
    const HIRES = ids.length;
    await kill(doomed);
    // the page's console may have finished some of them, but not the ones the doomed one held
    const atKill = Number(await succeeded(page).textContent());
    expect(atKill, "the doomed console held some when it died").toBeLessThan(before + 1 + HIRES);

    // the console the page is on finishes them (its own sandbox answers the reads), and the
    // page counts each one as it happens, with no reload
    await expect(succeeded(page)).toHaveText(String(before + 1 + HIRES), { timeout: 60_000 });
    expect(await page.evaluate(() => (window as any).__notReloaded)).toBe(true);
    // once the dead console's heartbeat has lapsed the dashboard counts one console again
    await servingLine(page, "the only one running");
    for (const id of ids) {
      await page.goto(`/exports?search=${id}`);
      await expect(page.getByRole("row")).toHaveCount(2);
      await expect(page.getByRole("row").nth(1)).toContainText("Succeeded");
    }
  } finally {
    for (const c of started) await kill(c);
    pinpoint.server.close();
  }
});
