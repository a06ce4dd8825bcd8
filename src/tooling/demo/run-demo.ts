import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { WorkflowHandle } from '@temporalio/client';
import { rolloutWorkflow } from '../../../workflows';
import { statusQuery, type RolloutOutcome, type RolloutStatus } from '../../../workflows/messages';
import { rolloutWorkflowId } from '../../decision/config/rollout-spec';
import { parseTargetWithFallbacks } from '../../decision/config/target';
import { startDevStack, type DevStack } from '../dev-stack';
import { changeRoute, createRoute, getRoute } from '../../store/routing-state';
import type { Database } from '../../store/database';
import type { TemporalServer } from '../../control-plane/temporal/dev-server';
import { startTraffic, type Traffic } from '../traffic';
import { guardianWorkflowId } from '../../../activities/guardian';
import {
  DEGRADED_CANDIDATE,
  DEMO_SCENARIO,
  DEMO_ALERT_CHANNEL,
  demoSpec,
  GOOD_CANDIDATE,
  MANUAL_CANDIDATE,
  PRIMARY_CHAIN,
  ROUTE,
} from './scenario';
import { summarizeActs, type ActWindow, type ActSummary, formatSummary } from './summary';
import { startWebhookReceiver } from './webhook-receiver';

const run = promisify(execFile);
const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../bin/model-rollout.js');

export interface DemoOptions {
  /** Reuse a running Temporal and database (tests); otherwise the dev stack starts its own. */
  temporal?: TemporalServer;
  db?: Database;
  taskQueue?: string;
  /** Requests per second of the simulated application. */
  ratePerSec?: number;
  /** Leave everything running when done (until `stop()`). */
  keep?: boolean;
  log?: (line: string) => void;
}

export interface DemoResult {
  acts: ActSummary[];
  outcomes: RolloutOutcome[];
  alerts: unknown[];
  uiUrl?: string;
  stack: DevStack;
  stop(): Promise<void>;
}

/**
 * The main job, as a story in five acts on simulated providers:
 *   1. support-bot serves steady traffic on claude-sonnet-4 with a fallback chain;
 *   2. a good candidate goes through shadow, canary doubling and promotion;
 *   3. a degraded candidate is caught in canary and rolled back automatically (alert delivered);
 *   4. the primary provider has an outage; the fallback chain keeps every request answered;
 *   5. a manual rollback, sent by the CLI, flips traffic back at once.
 */
export async function runDemo(options: DemoOptions = {}): Promise<DemoResult> {
  const log = options.log ?? ((line: string) => console.log(line));
  const say = (line: string) => log(`[demo] ${line}`);
  const webhook = await startWebhookReceiver((body) => log(`[alert] ${body.text ?? JSON.stringify(body)}`));
  const stack = await startDevStack({
    temporal: options.temporal,
    db: options.db,
    taskQueue: options.taskQueue,
    simulator: DEMO_SCENARIO,
    gatewayPort: 0,
    progress: say,
    alertChannels: new Map([[DEMO_ALERT_CHANNEL, { type: 'slack', url: webhook.url }]]),
  });
  const stop = async () => {
    await stack.stop();
    await webhook.close();
  };
  const acts: ActWindow[] = [];
  const outcomes: RolloutOutcome[] = [];
  let traffic: Traffic | undefined;
  try {
    say('intervals are seconds here (production: minutes); the statistics are the production ones');
    await resetRoute(stack);

    // Act 1 -------------------------------------------------------------------------------------------------
    const act1 = beginAct(acts, 'steady traffic on claude-sonnet-4');
    traffic = startTraffic({
      router: stack.router,
      route: ROUTE,
      ratePerSec: options.ratePerSec ?? 60,
      users: 2000,
    });
    say(
      `act 1: ${ROUTE} serves ${options.ratePerSec ?? 60} requests/s from the bundled question set on ${PRIMARY_CHAIN.target}`,
    );
    say(`       fallback chain: ${[PRIMARY_CHAIN.target, ...PRIMARY_CHAIN.fallbacks].join(' -> ')}`);
    await sleep(6_000);
    endAct(act1);

    // Act 2 -------------------------------------------------------------------------------------------------
    const act2 = beginAct(acts, `good candidate ${GOOD_CANDIDATE}: shadow, canary, promotion`);
    say(
      `act 2: rolling out ${GOOD_CANDIDATE} (shadow 50%, then canary 5% -> 10% -> 20% -> 40% -> 80% -> 100%)`,
    );
    outcomes.push(
      await runRollout(
        stack,
        say,
        demoSpec(
          { ...PRIMARY_CHAIN, target: GOOD_CANDIDATE },
          {
            shadow: { enabled: true, rate: 0.5, minComparisons: 40, maxDuration: '60s' },
          },
        ),
      ),
    );
    endAct(act2, outcomes.at(-1));

    // Act 3 -------------------------------------------------------------------------------------------------
    const act3 = beginAct(acts, `degraded candidate ${DEGRADED_CANDIDATE}: caught in canary`);
    say(`act 3: rolling out ${DEGRADED_CANDIDATE}, which answers 20 points less accurately`);
    outcomes.push(
      await runRollout(
        stack,
        say,
        demoSpec({ target: DEGRADED_CANDIDATE, fallbacks: PRIMARY_CHAIN.fallbacks }),
      ),
    );
    endAct(act3, outcomes.at(-1));

    // Act 4 -------------------------------------------------------------------------------------------------
    const act4 = beginAct(acts, 'Anthropic outage: the fallback chain answers');
    say('act 4: Anthropic goes down (every Claude model answers 529 overloaded)');
    for (const model of ['claude-sonnet-4', 'claude-haiku-4-5']) {
      stack.simulator!.setBehaviour(model, {
        ...DEMO_SCENARIO.models![model],
        errorRate: 1,
        errorKinds: { overloaded: 1 },
      });
    }
    traffic.reset();
    await sleep(8_000);
    const during = traffic.stats();
    say(
      `       ${during.ok} of ${during.ok + during.failed} requests answered, ${during.failed} failed; answered by ${JSON.stringify(during.byTarget)}`,
    );
    stack.simulator!.reset();
    say('       Anthropic is back');
    endAct(act4);

    // Act 5 -------------------------------------------------------------------------------------------------
    const act5 = beginAct(acts, `manual rollback of ${MANUAL_CANDIDATE} by the CLI`);
    say(
      `act 5: ${MANUAL_CANDIDATE} goes to a 40% canary and holds there; an operator rolls it back from the CLI`,
    );
    const handle = await startRollout(
      stack,
      demoSpec(
        { target: MANUAL_CANDIDATE, fallbacks: PRIMARY_CHAIN.fallbacks },
        {
          canary: { steps: [4000, 10000] },
          evaluation: { interval: '1h' },
        },
      ),
    );
    await waitForStatus(handle, (s) => s.phase === 'canary' && s.shareBps === 4000);
    await sleep(3_000);
    const cmd = ['rollback', ROUTE, '--reason', 'operator: answers look off', '--actor', 'cli:demo'];
    say(`       $ model-rollout ${cmd.map((c) => (c.includes(' ') ? `"${c}"` : c)).join(' ')}`);
    const t0 = Date.now();
    const { stdout } = await run(process.execPath, [CLI, ...cmd], {
      env: {
        ...process.env,
        TEMPORAL_ADDRESS: stack.temporal.address,
        TEMPORAL_NAMESPACE: stack.temporal.namespace,
        // No DATABASE_URL of its own: the command reads the same one (or finds the same embedded server,
        // with its password) as this process; `stack.db.url` has the password masked.
        TEMPORAL_TASK_QUEUE: stack.taskQueue,
      },
    });
    for (const line of stdout.trim().split('\n')) say(`       ${line}`);
    while ((stack.router.state(ROUTE)?.canaryBps ?? 0) !== 0) await sleep(10);
    const flipMs = Date.now() - t0;
    say(`       the router serves 0% canary ${flipMs} ms after the command started`);
    outcomes.push(await handle.result());
    endAct(act5, outcomes.at(-1), flipMs);

    await traffic.stop();
    traffic = undefined;
    await stack.router.flush();
    const summary = await summarizeActs(stack.db.pool, ROUTE, acts);
    log('');
    log(formatSummary(summary));
    log('');
    if (stack.temporal.uiUrl)
      say(
        `Temporal UI: ${stack.temporal.uiUrl}/namespaces/${stack.temporal.namespace}/workflows?query=${encodeURIComponent(`RolloutRoute="${ROUTE}"`)}`,
      );
    if (stack.gateway)
      say(
        `gateway: ${stack.gateway.url}/v1 (try: curl ${stack.gateway.url}/v1/chat/completions -H 'content-type: application/json' -d '{"model":"${ROUTE}","messages":[{"role":"user","content":"hi"}]}')`,
      );
    const result: DemoResult = {
      acts: summary,
      outcomes,
      alerts: webhook.received,
      uiUrl: stack.temporal.uiUrl,
      stack,
      stop,
    };
    if (!options.keep) await stop();
    return result;
  } catch (err) {
    await traffic?.stop().catch(() => undefined);
    await stop();
    throw err;
  }
}

function beginAct(acts: ActWindow[], title: string): ActWindow {
  const act: ActWindow = { number: acts.length + 1, title, fromMs: Date.now(), toMs: Date.now() };
  acts.push(act);
  return act;
}

function endAct(act: ActWindow, outcome?: RolloutOutcome, manualRollbackMs?: number): void {
  act.toMs = Date.now();
  act.outcome = outcome ? `${outcome.result}: ${outcome.reason}` : undefined;
  act.manualRollbackMs = manualRollbackMs;
}

/** A rerun of the demo starts from the same place: no rollout or guardian left, support-bot on its primary. */
async function resetRoute(stack: DevStack): Promise<void> {
  for (const id of [rolloutWorkflowId(ROUTE), guardianWorkflowId(ROUTE)]) {
    const handle = stack.client.workflow.getHandle(id);
    const running = await handle.describe().then(
      (d) => d.status.name === 'RUNNING',
      () => false,
    );
    if (running) await handle.terminate('demo restarted');
  }
  const blue = parseTargetWithFallbacks(PRIMARY_CHAIN);
  const existing = await getRoute(stack.db.pool, ROUTE);
  if (!existing) {
    await createRoute(stack.db.pool, { name: ROUTE, blue }, { actor: 'demo', reason: 'demo route' });
    return;
  }
  await changeRoute(stack.db.pool, ROUTE, {
    expectedVersion: existing.version,
    requireOwner: existing.owner,
    patch: { blue, green: null, stableSlot: 'blue', canaryBps: 0, shadowRate: 0, owner: null },
    actor: 'demo',
    reason: 'demo restarted: back to the primary chain',
  });
}

async function startRollout(
  stack: DevStack,
  spec: ReturnType<typeof demoSpec>,
): Promise<WorkflowHandle<typeof rolloutWorkflow>> {
  return stack.client.workflow.start(rolloutWorkflow, {
    taskQueue: stack.taskQueue,
    workflowId: rolloutWorkflowId(ROUTE),
    args: [spec],
  });
}

/** Starts a rollout and narrates it: each phase change, share change and decision, until it ends. */
async function runRollout(
  stack: DevStack,
  say: (line: string) => void,
  spec: ReturnType<typeof demoSpec>,
): Promise<RolloutOutcome> {
  const handle = await startRollout(stack, spec);
  let last = '';
  const printed = new Set<string>();
  for (;;) {
    const status = await handle.query(statusQuery).catch(() => undefined);
    if (status) {
      const line = `       ${status.phase.padEnd(17)} canary ${String(status.shareBps / 100).padStart(3)}%${status.shadow ? `  shadow: ${status.shadow.comparisons} pairs, win rate ${fmtRate(status.shadow.winRate)}` : ''}`;
      if (line !== last) say((last = line));
      const decision = status.decisions.at(-1);
      if (decision && decision.action !== 'hold' && !printed.has(decision.at)) {
        printed.add(decision.at);
        say(`         ${decision.action}: ${decision.reasons[0]}`);
      }
      if (status.outcome) {
        say(`       => ${status.outcome.result}: ${status.outcome.reason}`);
        return handle.result();
      }
    }
    await sleep(500);
  }
}

async function waitForStatus(handle: WorkflowHandle, done: (s: RolloutStatus) => boolean): Promise<void> {
  for (;;) {
    const s = await handle.query(statusQuery).catch(() => undefined);
    if (s && done(s)) return;
    await sleep(200);
  }
}

function fmtRate(rate: number | null): string {
  return rate === null ? '-' : `${Math.round(rate * 100)}%`;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
