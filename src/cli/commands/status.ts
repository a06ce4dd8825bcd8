/**
 * `model-rollout status ID_OR_ROUTE [--watch]`, and the helpers every rollout command shares: connecting to
 * Temporal, finding a rollout by route or workflow id, and reading its status (the `status` query while it
 * runs; the memo, search attributes and result once it has closed).
 */
import type { Command } from 'commander';
import type { Client, WorkflowExecutionDescription, WorkflowHandle } from '@temporalio/client';
import type {
  HoldStatus,
  RolloutOutcome,
  RolloutPhase,
  RolloutStatus,
  ScoringStatus,
} from '../../../workflows/messages';
// Small leaf modules: every CLI command (the gateway too) loads this file at start.
import { roughDuration } from '../../decision/config/duration';
import { rolloutWorkflowId } from '../../decision/config/workflow-id';
import { UsageError } from '../errors';
import { renderGates } from './status-gates';
import {
  action,
  ago,
  bold,
  CLEAR_SCREEN,
  dim,
  keyValues,
  num,
  pairStats,
  percent,
  progressBar,
  share,
  table,
  timestamp,
  uiLink,
} from '../format';

// ---- shared helpers -----------------------------------------------------------------------------------

/** Connects to Temporal (TEMPORAL_ADDRESS, default 127.0.0.1:7233), runs `fn`, and always closes. */
export async function withClient<T>(fn: (client: Client) => Promise<T>): Promise<T> {
  const { createClient } = await import('../../control-plane/temporal/connection');
  const client = await createClient(); // its error names the address it tried
  try {
    return await fn(client);
  } finally {
    await client.connection.close().catch(() => {});
  }
}

/** Whether the workflow that owns a route still runs: its run id if so, else how it ended. */
export async function ownerExecution(
  client: Client,
  owner: string,
): Promise<{ running: true; runId: string } | { running: false; state: string }> {
  try {
    const d = await client.workflow.getHandle(owner).describe();
    if (d.status.name === 'RUNNING') return { running: true, runId: d.runId };
    return { running: false, state: d.status.name.toLowerCase() };
  } catch (err) {
    if ((err as Error).name === 'WorkflowNotFoundError')
      return { running: false, state: 'unknown to Temporal' };
    throw err;
  }
}

export interface FoundRollout {
  workflowId: string;
  handle: WorkflowHandle;
  description: WorkflowExecutionDescription;
}

/**
 * A rollout by route name (`support-bot` → workflow `rollout-support-bot`) or by workflow id. The latest run
 * of that id is used. Unknown → an error that says what was tried.
 */
export async function findRollout(client: Client, idOrRoute: string): Promise<FoundRollout> {
  if (!idOrRoute.trim()) throw new UsageError('give a route name or a rollout workflow id');
  const { WorkflowNotFoundError } = await import('@temporalio/client');
  const ids = idOrRoute.startsWith('rollout-')
    ? [idOrRoute, rolloutWorkflowId(idOrRoute)]
    : [rolloutWorkflowId(idOrRoute), idOrRoute];
  for (const workflowId of ids) {
    const handle = client.workflow.getHandle(workflowId);
    try {
      const description = await handle.describe();
      if (description.type !== 'rolloutWorkflow') {
        throw new Error(`workflow ${workflowId} is a ${description.type}, not a rollout`);
      }
      return { workflowId, handle, description };
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) continue;
      throw err;
    }
  }
  throw new Error(
    `no rollout found for "${idOrRoute}" (no workflow ${ids.join(' or ')} in namespace ${client.options.namespace}); ` +
      `see the rollouts with 'model-rollout list'`,
  );
}

export const isRunning = (d: WorkflowExecutionDescription) => d.status.name === 'RUNNING';

/** The `status` query, with a deadline: a rollout nobody polls for would otherwise leave us waiting. */
export async function queryStatus(
  client: Client,
  handle: WorkflowHandle,
  timeoutMs = 10_000,
): Promise<RolloutStatus> {
  const { statusQuery } = await import('../../../workflows/messages');
  try {
    return await client.connection.withDeadline(Date.now() + timeoutMs, () => handle.query(statusQuery));
  } catch (err) {
    const message = (err as Error).message ?? String(err);
    if (/deadline|timed? ?out|no poller/i.test(message)) {
      const { TASK_QUEUE } = await import('../../control-plane/temporal/connection');
      throw new Error(
        `rollout ${handle.workflowId} did not answer the status query within ${timeoutMs / 1000}s: ` +
          `is a worker running on task queue "${TASK_QUEUE}"? (start one with 'model-rollout worker')`,
      );
    }
    throw err;
  }
}

export interface StatusView {
  workflowId: string;
  runId: string;
  /** Temporal's execution status: RUNNING, COMPLETED, FAILED, TERMINATED, ... */
  execution: string;
  startTime: string;
  closeTime: string | null;
  /** 'query' when the workflow answered; 'history' when rebuilt from memo, search attributes and result. */
  source: 'query' | 'history';
  /** Why a closed workflow failed, when it did. */
  failure?: string;
  status: RolloutStatus;
  uiUrl: string;
}

/** Status of a found rollout: the live query while it runs, else what its history says. */
export async function readStatus(
  client: Client,
  found: FoundRollout,
  queryTimeoutMs = 10_000,
): Promise<StatusView> {
  const d = found.description;
  const base = {
    workflowId: found.workflowId,
    runId: d.runId,
    execution: d.status.name,
    startTime: d.startTime.toISOString(),
    closeTime: d.closeTime ? d.closeTime.toISOString() : null,
    uiUrl: uiLink(found.workflowId, client.options.namespace),
  };
  if (isRunning(d)) {
    return { ...base, source: 'query', status: await queryStatus(client, found.handle, queryTimeoutMs) };
  }
  // Closed: a worker can still replay it for the full status; without one, history has the essentials.
  try {
    return { ...base, source: 'query', status: await queryStatus(client, found.handle, 3_000) };
  } catch {
    return { ...base, source: 'history', ...(await statusFromHistory(found)) };
  }
}

async function statusFromHistory(found: FoundRollout): Promise<{ status: RolloutStatus; failure?: string }> {
  const d = found.description;
  const memo = (d.memo ?? {}) as Partial<{
    route: string;
    candidate: string;
    stable: string;
    phase: RolloutPhase;
    shareBps: number;
  }>;
  const {
    RolloutRoute,
    RolloutPhase: PhaseKey,
    RolloutCandidate,
    RolloutStrategy,
    CanaryBasisPoints,
  } = await import('../../control-plane/temporal/search-attributes');
  const sa = d.typedSearchAttributes;
  let outcome: RolloutOutcome | undefined;
  let failure: string | undefined;
  try {
    outcome = (await found.handle.result()) as RolloutOutcome;
  } catch (err) {
    const cause = (err as { cause?: Error }).cause;
    failure = cause?.message || (err as Error).message;
  }
  const phase: RolloutPhase =
    outcome?.result === 'completed'
      ? 'completed'
      : outcome?.result === 'rolled_back'
        ? 'rolled_back'
        : outcome?.result === 'shadow-report'
          ? 'shadow-report'
          : d.status.name === 'CANCELLED'
            ? 'cancelled'
            : ((memo.phase ?? sa.get(PhaseKey) ?? 'starting') as RolloutPhase);
  return {
    failure,
    status: {
      route: memo.route ?? sa.get(RolloutRoute) ?? outcome?.route ?? '',
      workflowId: found.workflowId,
      strategy: sa.get(RolloutStrategy) ?? '',
      phase,
      shareBps: outcome?.finalShareBps ?? memo.shareBps ?? sa.get(CanaryBasisPoints) ?? 0,
      paused: false,
      awaitingApproval: false,
      stable: outcome?.stable ?? memo.stable ?? '',
      candidate: memo.candidate ?? sa.get(RolloutCandidate) ?? '',
      routingVersion: 0,
      startedAt: d.startTime.toISOString(),
      plan: [],
      decisions: [],
      triggers: [],
      steps: [],
      outcome,
    },
  };
}

// ---- rendering ------------------------------------------------------------------------------------------

/** Quality evidence: judged and failed answers per arm, judge cost, and a loud line when there is none. */
function renderScoring(sc: ScoringStatus): string[] {
  const failures = Object.entries(sc.failures)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 3)
    .map(([reason, n]) => `${reason} x${n}`)
    .join(', ');
  const budget =
    sc.budgetUsd !== undefined ? ` of $${sc.budgetUsd}${sc.budgetExhausted ? ' (spent)' : ''}` : '';
  return [
    bold('quality evidence'),
    // action() colours it as a failure: nobody should read past this line.
    ...(sc.noQualityEvidence
      ? [`  ${action('failed:')} no quality evidence: the candidate gets no scores`]
      : []),
    `  judged   candidate ${sc.scored.candidate}, stable ${sc.scored.stable}` +
      (sc.lastCandidateScoreAt ? dim(`  (last candidate score ${timestamp(sc.lastCandidateScoreAt)})`) : ''),
    `  failed   candidate ${sc.failed.candidate}, stable ${sc.failed.stable}${failures ? `: ${failures}` : ''}`,
    `  cost     $${sc.costUsd.toFixed(4)}${budget}`,
    ...(sc.batchError ? [`  ${sc.batchError}`] : []),
  ];
}

/** Every decision of the rollout, across its runs: "23 in all: 20 hold, 3 promote-step". */
function decisionCounts(d: NonNullable<RolloutStatus['decisionSummary']>): string {
  const parts = Object.entries(d.byAction).map(([a, n]) => `${n} ${a}`);
  return `${d.total} in all${parts.length ? `: ${parts.join(', ')}` : ''}`;
}

function deadlineLine(d: NonNullable<RolloutStatus['deadline']>): string {
  const what = d.kind === 'approval' ? 'approval timeout' : `${d.kind} progress deadline`;
  const held = d.holding ? ` - ${action('held')}: promote, resume or roll back` : '';
  return `${what} passed ${timestamp(d.at)}, action ${d.action}${held}`;
}

/** "3/7 canary share 20%: 5% -> 10% -> [20%] -> 40% -> approval ... -> 100% -> bake 30m". */
function planText(s: RolloutStatus): string {
  const entries = s.plan.map((p, i) => {
    const text = p.share !== undefined ? share(p.share) : p.description;
    return s.step?.index === i ? bold(`[${text}]`) : text;
  });
  const at = s.step ? `${s.step.index + 1}/${s.plan.length} ${s.step.description}: ` : '';
  return at + entries.join(' -> ');
}

export function renderStatus(view: StatusView, now = Date.now()): string {
  const s = view.status;
  const lines: string[] = [];
  const phase = `${action(s.phase)}${s.paused ? ` ${action('(paused)')}` : ''}${s.awaitingApproval ? ` ${action('(awaiting approval: model-rollout approve ' + s.route + ')')}` : ''}`;
  lines.push(`${bold(view.workflowId)}  ${dim(`run ${view.runId}`)}  ${view.execution}`);
  lines.push(
    keyValues([
      ['route', `${s.route}  (${s.strategy || '?'})`],
      ['stable', s.stable || '-'],
      ['candidate', s.candidate || '-'],
      ['phase', phase],
      ['canary share', progressBar(s.shareBps)],
      ...(s.plan?.length ? ([['steps', planText(s)]] as [string, string][]) : []),
      ...(s.routingVersion ? ([['routing version', String(s.routingVersion)]] as [string, string][]) : []),
      ['started', `${timestamp(s.startedAt)} (${ago(s.startedAt, now)})`],
      ...(view.closeTime
        ? ([['closed', `${timestamp(view.closeTime)} (${ago(view.closeTime, now)})`]] as [string, string][])
        : []),
      ...(s.generation
        ? ([
            [
              'runs',
              `${s.generation + 1} (continued as new ${s.generation}x; first run ${s.firstRunId ?? '?'})`,
            ],
          ] as [string, string][])
        : []),
      ...(s.decisionSummary
        ? ([['decisions', decisionCounts(s.decisionSummary)]] as [string, string][])
        : []),
      ...(s.deadline ? ([['deadline', deadlineLine(s.deadline)]] as [string, string][]) : []),
    ]),
  );
  if (s.shadow) {
    const sh = s.shadow;
    const interval = sh.winRateInterval
      ? ` [${percent(sh.winRateInterval.lower)}, ${percent(sh.winRateInterval.upper)}]`
      : '';
    lines.push('', bold('shadow'));
    lines.push(
      `  ${sh.comparisons} comparisons: candidate better ${sh.shadowBetter}, stable better ${sh.stableBetter}, ties ${sh.ties}; ` +
        `win rate ${sh.winRate === null ? '-' : percent(sh.winRate)}${interval} -> ${action(sh.recommendation)}`,
    );
  }
  if (s.steps.length) {
    lines.push('', bold('steps'));
    lines.push(
      table(
        s.steps.map((st) => [
          `  ${timestamp(st.at)}`,
          `${share(st.fromBps)} -> ${share(st.toBps)}`,
          `by ${st.by}`,
        ]),
      ),
    );
  }
  if (s.hold && !s.outcome) lines.push('', ...renderHold(s.hold, now));
  lines.push(...renderGates(s, now)); // webhook gate and metric checks (nothing when the spec has none)
  if (s.decisions.length) {
    lines.push('', bold('last decisions') + dim(' (newest last)'));
    lines.push(
      table(
        s.decisions
          .slice(-5)
          .map((d) => [
            `  ${timestamp(d.at)}`,
            d.phase,
            share(d.shareBps),
            action(d.action),
            d.policy,
            d.reasons[0] ?? '',
          ]),
      ),
    );
    const last = s.decisions[s.decisions.length - 1];
    const pairs = pairStats(last.stats);
    if (pairs.length) {
      lines.push('', bold('stable vs canary') + dim(` (decision at ${timestamp(last.at)})`));
      lines.push(
        table(
          pairs.map((p) => [`  ${p.metric}`, num(p.stable), num(p.canary)]),
          ['  metric', 'stable', 'canary'],
        ),
      );
    }
  }
  if (s.scoring) lines.push('', ...renderScoring(s.scoring));
  if (s.triggers.length) {
    lines.push('', bold('triggers'));
    lines.push(table(s.triggers.map((t) => [`  ${t.fired ? action('rollback') : t.status}`, t.reason])));
  }
  if (s.outcome) {
    lines.push('', `${bold('outcome')}  ${action(s.outcome.result)}: ${s.outcome.reason}`);
    lines.push(`         ${s.outcome.stable || 'the stable model'} serves all traffic`);
  }
  if (view.failure) lines.push('', `${bold('failure')}  ${action('failed')}: ${view.failure}`);
  if (view.source === 'history')
    lines.push('', dim('(closed and no worker answered: details rebuilt from the workflow history)'));
  lines.push('', `Temporal UI: ${view.uiUrl}`);
  return lines.join('\n');
}

/** What holds the canary share, what it needs and when it should move on. */
export function renderHold(hold: HoldStatus, now = Date.now()): string[] {
  const lines = [
    `${bold('hold')}  ${action('held')} at ${share(hold.shareBps)} since ${timestamp(hold.since)} (${ago(hold.since, now)})`,
  ];
  const e = hold.estimate;
  if (!e) return [...lines, '  no estimate (the policy gave none)'];
  lines.push(`  ${e.summary}`);
  if (hold.expectedAt) lines.push(`  ${dim(`expected to advance around ${timestamp(hold.expectedAt)}`)}`);
  for (const b of e.blockers.slice(1)) {
    const when = b.etaMs === null ? '' : ` (about ${roughDuration(b.etaMs)})`;
    lines.push(`  ${dim(`also ${b.condition}: ${b.needs}${when}`)}`);
  }
  return lines;
}

// ---- the command ----------------------------------------------------------------------------------------

export function registerStatusCommand(program: Command): void {
  program
    .command('status')
    .description(
      'Show a rollout: phase, canary share, stable vs candidate, last decisions, triggers and steps',
    )
    .argument('<id-or-route>', 'route name (e.g. support-bot) or workflow id (e.g. rollout-support-bot)')
    .option('--watch', 'redraw until the rollout ends (Ctrl-C stops watching, not the rollout)')
    .option('--interval <seconds>', 'refresh period for --watch', '2')
    .option('--json', 'print the status as JSON (with --watch: one line per change)')
    .addHelpText(
      'after',
      '\nExamples:\n  model-rollout status support-bot\n  model-rollout status support-bot --watch\n  model-rollout status rollout-support-bot --json',
    )
    .action(async (idOrRoute: string, opts: { watch?: boolean; interval: string; json?: boolean }) => {
      const intervalS = Number(opts.interval);
      if (!Number.isFinite(intervalS) || intervalS <= 0)
        throw new UsageError(`--interval must be a positive number of seconds, got ${opts.interval}`);
      await withClient(async (client) => {
        if (!opts.watch) {
          const view = await readStatus(client, await findRollout(client, idOrRoute));
          console.log(opts.json ? JSON.stringify(view, null, 2) : renderStatus(view));
          return;
        }
        await watch(client, idOrRoute, intervalS * 1000, !!opts.json);
      });
    });
}

async function watch(client: Client, idOrRoute: string, intervalMs: number, json: boolean): Promise<void> {
  const tty = !!process.stdout.isTTY && !json;
  let stop = false;
  let wake: () => void = () => {};
  const onSignal = () => {
    stop = true;
    wake();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let previous = '';
  try {
    while (!stop) {
      const found = await findRollout(client, idOrRoute);
      const view = await readStatus(client, found);
      const ended = !isRunning(found.description) || !!view.status.outcome;
      // What changed, not when we looked: the relative times would make every frame "new".
      const fingerprint = JSON.stringify({ ...view.status, execution: view.execution });
      if (json) {
        if (fingerprint !== previous) console.log(JSON.stringify(view));
      } else if (tty) {
        const footer = ended
          ? ''
          : `\n\n${dim(`refreshing every ${intervalMs / 1000}s; Ctrl-C stops watching (the rollout goes on)`)}`;
        process.stdout.write(CLEAR_SCREEN + renderStatus(view) + footer + '\n');
      } else if (fingerprint !== previous) {
        console.log(renderStatus(view) + '\n');
      }
      previous = fingerprint;
      if (ended) return;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, intervalMs);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
