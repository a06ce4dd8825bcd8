import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { chromium, type Browser } from 'playwright-core';
import { runDemo, type DemoResult } from '../src/tooling/demo/run-demo';
import { ROUTE } from '../src/tooling/demo/scenario';
import { createTestDatabase, type TestDatabase } from './helpers/db';
import { temporalTestEnv } from './helpers/temporal';

const ARTIFACTS = path.resolve(__dirname, '..', 'test-artifacts');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
/** Created by test/global-setup.ts, so that rollout-support-bot here never meets the CLI docs' one. */
const DEMO_NAMESPACE = 'demo';

/**
 * The demo's code path (what `npm run demo` runs), on the shared test Temporal server and a fresh database,
 * followed by a person's look at the Temporal UI in a real browser: the rollout found by its route, its
 * phase and its history, with a screenshot saved under test-artifacts/.
 */
describe('the demo', () => {
  const env = temporalTestEnv();
  let db: TestDatabase;
  let demo: DemoResult | undefined;
  let browser: Browser | undefined;
  const lines: string[] = [];

  afterAll(async () => {
    await browser?.close();
    await demo?.stop();
    await db?.close();
  });

  it('runs its five acts: promotion, automatic rollback with an alert, an outage survived, a manual rollback', async () => {
    db = await createTestDatabase();
    demo = await runDemo({
      temporal: {
        address: env.address,
        namespace: DEMO_NAMESPACE,
        uiUrl: env.uiUrl,
        cliPath: env.cliPath,
        managed: false,
        stop: async () => {},
      },
      db,
      taskQueue: env.taskQueue,
      keep: true,
      log: (line) => lines.push(line),
    });
    expect(demo.outcomes.map((o) => o.result)).toEqual(['completed', 'rolled_back', 'rolled_back']);
    expect(demo.outcomes[1].reason).toMatch(/canary policy|trigger/);
    expect(demo.outcomes[2].reason).toMatch(/operator: answers look off/);
    // The automatic rollback reached the webhook receiver.
    expect(JSON.stringify(demo.alerts)).toMatch(/Rolled back openai:gpt-4o-mini/);
    const [act1, act2, act3, act4, act5] = demo.acts;
    expect(act1.requests).toBeGreaterThan(100);
    expect(act2.quality.canary).not.toBeNull();
    expect(act3.quality.canary!).toBeLessThan(act3.quality.stable!);
    expect(act3.rollbacks).toBe(1);
    // During the outage every request was answered (by the fallback chain).
    expect(act4.requests).toBeGreaterThan(100);
    expect(act4.errors).toBe(0);
    expect(act5.timeToRollbackMs).not.toBeNull();
    expect(lines.join('\n')).toMatch(/Summary \(from the database/);
  }, 600_000);

  it('shows the rollout in the Temporal UI: found by its route, with its phase and history', async () => {
    expect(demo, 'the demo ran').toBeDefined();
    if (!fs.existsSync(CHROMIUM)) {
      throw new Error(
        `no Chromium at ${CHROMIUM}: install it (Debian/Ubuntu: sudo apt-get install chromium) or set CHROMIUM_PATH`,
      );
    }
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
    const query = encodeURIComponent(`RolloutRoute="${ROUTE}"`);
    await page.goto(`${env.uiUrl}/namespaces/${DEMO_NAMESPACE}/workflows?query=${query}`);
    const link = page.getByRole('link', { name: `rollout-${ROUTE}` }).first();
    await link.waitFor({ timeout: 30_000 });
    await page.screenshot({
      path: path.join(ARTIFACTS, 'temporal-ui-rollouts-by-route.png'),
      fullPage: true,
    });
    await link.click();
    await page.waitForURL(/\/workflows\/rollout-support-bot\//, { timeout: 30_000 });
    // The latest run is act 5's: rolled back by hand. Its details and history tell the story.
    await page
      .getByText(/rolled_back/)
      .first()
      .waitFor({ timeout: 30_000 });
    const text = await page.locator('body').innerText();
    expect(text).toMatch(/rolloutWorkflow/);
    expect(text).toMatch(/operator: answers look off/);
    await page.screenshot({ path: path.join(ARTIFACTS, 'temporal-ui-rollout.png'), fullPage: true });
  }, 120_000);
});
