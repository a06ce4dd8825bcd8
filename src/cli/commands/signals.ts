/**
 * Operating a running rollout by hand: `pause`, `resume`, `promote`, `approve` (signals) and `rollback` (an
 * update, so it returns only once the routing has changed). Each takes a route name or a workflow id and an
 * `--actor` for the audit trail, and confirms what changed by reading the status afterwards.
 */
import type { Command } from 'commander';
import type { Client } from '@temporalio/client';
import type { RolloutOutcome, RolloutStatus } from '../../../workflows/messages';
import { UsageError } from '../errors';
import { action, defaultActor, share } from '../format';
import { findRollout, isRunning, queryStatus, withClient, type FoundRollout } from './status';

interface CommonOptions {
  actor?: string;
  json?: boolean;
  wait: string;
}

type Messages = typeof import('../../../workflows/messages');

interface SignalCommand {
  name: 'pause' | 'resume' | 'promote' | 'approve';
  description: string;
  /** Refuses with a reason when the signal makes no sense in this state (null: send it). */
  refuse?: (s: RolloutStatus) => string | null;
  /** Nothing to do: the rollout is already where the signal would take it. */
  already?: (s: RolloutStatus) => string | null;
  send: (found: FoundRollout, m: Messages, actor: string, opts: Record<string, unknown>) => Promise<void>;
  /** True once the status shows the signal's effect. */
  done: (before: RolloutStatus, after: RolloutStatus) => boolean;
  /** What changed, in words. */
  confirm: (before: RolloutStatus, after: RolloutStatus, done: boolean) => string;
}

const transition = (before: RolloutStatus, after: RolloutStatus) => {
  const parts: string[] = [];
  parts.push(
    before.phase === after.phase
      ? `phase ${action(after.phase)}`
      : `phase ${before.phase} -> ${action(after.phase)}`,
  );
  parts.push(
    before.shareBps === after.shareBps
      ? `canary share ${share(after.shareBps)}`
      : `canary share ${share(before.shareBps)} -> ${share(after.shareBps)}`,
  );
  if (before.stable !== after.stable) parts.push(`stable ${before.stable} -> ${after.stable}`);
  return parts.join(', ');
};

const SIGNALS: SignalCommand[] = [
  {
    name: 'pause',
    description:
      'Pause a rollout: the canary share stops growing (rollback triggers and the policy keep watching)',
    already: (s) => (s.paused ? 'already paused' : null),
    send: (f, m, actor, o) =>
      f.handle.signal(m.pauseSignal, { actor, reason: o.reason as string | undefined }),
    done: (_b, a) => a.paused,
    confirm: (b, a, done) => `${done ? 'paused' : 'pause sent, not yet applied'}: ${transition(b, a)}`,
  },
  {
    name: 'resume',
    description: 'Resume a paused rollout',
    already: (s) => (s.paused ? null : 'not paused'),
    send: (f, m, actor, o) =>
      f.handle.signal(m.resumeSignal, { actor, reason: o.reason as string | undefined }),
    done: (_b, a) => !a.paused,
    confirm: (b, a, done) => `${done ? 'resumed' : 'resume sent, not yet applied'}: ${transition(b, a)}`,
  },
  {
    name: 'promote',
    description:
      'Move a rollout on now: the next canary step (or --to-full: straight to 100%), or end the shadow phase',
    refuse: (s) =>
      s.awaitingApproval || s.phase === 'awaiting-approval'
        ? `it waits for approval; approve it with 'model-rollout approve ${s.route}'`
        : s.phase === 'promoting' || s.phase === 'baking'
          ? `it is already promoted (phase ${s.phase}); nothing left to promote`
          : null,
    send: (f, m, actor, o) => f.handle.signal(m.promoteSignal, { toFull: !!o.toFull, actor }),
    // 'promoting' is the moment of the flip itself: wait for where it lands (awaiting approval, baking).
    done: (b, a) =>
      (a.shareBps !== b.shareBps || a.phase !== b.phase || a.steps.length !== b.steps.length) &&
      a.phase !== 'promoting',
    confirm: (b, a, done) =>
      done
        ? `promoted: ${transition(b, a)}`
        : `promote sent; the rollout acts on it when its current check ends (${transition(b, a)})`,
  },
  {
    name: 'approve',
    description: 'Approve the promotion to 100% of a rollout started with --require-approval',
    send: (f, m, actor, o) =>
      f.handle.signal(m.approveSignal, { actor, reason: o.reason as string | undefined }),
    done: (b, a) => !b.awaitingApproval || (!a.awaitingApproval && a.phase !== 'promoting'),
    confirm: (b, a, done) =>
      b.awaitingApproval
        ? `${done ? 'approved' : 'approval sent, not yet applied'}: ${transition(b, a)}`
        : `approval recorded ahead of time (the rollout is in phase ${a.phase}; it will not stop to wait for approval)`,
  },
];

export function registerSignalCommands(program: Command): void {
  for (const sig of SIGNALS) {
    const cmd = program
      .command(sig.name)
      .description(sig.description)
      .argument('<id-or-route>', 'route name or rollout workflow id')
      .option('--actor <who>', 'who does it, for the audit trail (default cli:$USER)')
      .option('--wait <seconds>', 'how long to wait for the rollout to show the change', '15')
      .option('--json', 'print the status before and after as JSON');
    if (sig.name === 'promote')
      cmd.option('--to-full', 'go straight to 100% (then approval, if required, and the bake)');
    else cmd.option('--reason <text>', 'why, for the audit trail');
    cmd.addHelpText(
      'after',
      `\nExample:\n  model-rollout ${sig.name} support-bot${sig.name === 'promote' ? ' --to-full' : ''}`,
    );
    cmd.action(async (idOrRoute: string, opts: CommonOptions & Record<string, unknown>) => {
      const waitMs = seconds(opts.wait, '--wait');
      const actor = opts.actor ?? defaultActor();
      await withClient(async (client) => {
        const found = await running(client, idOrRoute, sig.name);
        const before = await queryStatus(client, found.handle);
        const refusal = sig.refuse?.(before);
        if (refusal) throw new Error(`cannot ${sig.name} ${found.workflowId}: ${refusal}`);
        const already = sig.already?.(before);
        if (already) {
          if (opts.json)
            console.log(
              JSON.stringify(
                { workflowId: found.workflowId, changed: false, before, after: before },
                null,
                2,
              ),
            );
          else console.log(`${found.workflowId}: ${already}; nothing sent (${transition(before, before)})`);
          return;
        }
        const m = await import('../../../workflows/messages');
        await sig.send(found, m, actor, opts);
        const { status: after, done } = await waitFor(client, found, before, sig.done, waitMs);
        if (opts.json)
          console.log(
            JSON.stringify(
              { workflowId: found.workflowId, signal: sig.name, actor, applied: done, before, after },
              null,
              2,
            ),
          );
        else console.log(`${found.workflowId}: ${sig.confirm(before, after, done)}`);
      });
    });
  }

  program
    .command('rollback')
    .description(
      'Roll a rollout back now: the previous stable model serves all traffic again. Returns once the routing has changed.',
    )
    .argument('<id-or-route>', 'route name or rollout workflow id')
    .requiredOption('--reason <text>', 'why (recorded in the audit trail and the alerts)')
    .option('--actor <who>', 'who does it, for the audit trail (default cli:$USER)')
    .option('--timeout <seconds>', 'give up waiting for the routing change after this long', '120')
    .option('--json', 'print the outcome as JSON')
    .addHelpText('after', '\nExample:\n  model-rollout rollback support-bot --reason "answers got worse"')
    .action(
      async (
        idOrRoute: string,
        opts: { reason: string; actor?: string; timeout: string; json?: boolean },
      ) => {
        if (!opts.reason.trim())
          throw new UsageError('--reason must not be empty: say why, it goes into the audit trail');
        const timeoutMs = seconds(opts.timeout, '--timeout');
        const actor = opts.actor ?? defaultActor();
        await withClient(async (client) => {
          const found = await running(client, idOrRoute, 'rollback');
          const before = await queryStatus(client, found.handle).catch(() => undefined);
          const { rollbackUpdate } = await import('../../../workflows/messages');
          let outcome: RolloutOutcome;
          try {
            outcome = await client.connection.withDeadline(Date.now() + timeoutMs, () =>
              found.handle.executeUpdate(rollbackUpdate, { args: [{ reason: opts.reason, actor }] }),
            );
          } catch (err) {
            const message = (err as Error).message ?? String(err);
            if (/deadline/i.test(message)) {
              throw new Error(
                `the rollback of ${found.workflowId} was requested but the routing did not change within ${timeoutMs / 1000}s: is a worker running? ` +
                  `It will happen when one picks it up; check with 'model-rollout status ${idOrRoute}'`,
              );
            }
            throw new Error(`rollback of ${found.workflowId} failed: ${message}`);
          }
          if (opts.json) {
            console.log(JSON.stringify({ workflowId: found.workflowId, actor, before, outcome }, null, 2));
            return;
          }
          console.log(`${found.workflowId}: ${action(outcome.result)}: ${outcome.reason}`);
          console.log(`  stable:       ${outcome.stable} serves all traffic on ${outcome.route}`);
          console.log(
            `  canary share: ${before ? `${share(before.shareBps)} -> ` : ''}${share(outcome.finalShareBps)}`,
          );
          if (before?.candidate)
            console.log(`  candidate:    ${before.candidate} no longer receives traffic`);
        });
      },
    );
}

function seconds(text: string, flag: string): number {
  const s = Number(text);
  if (!Number.isFinite(s) || s < 0) throw new UsageError(`${flag} must be a number of seconds, got ${text}`);
  return s * 1000;
}

/** The rollout, which must still be running. */
async function running(client: Client, idOrRoute: string, what: string): Promise<FoundRollout> {
  const found = await findRollout(client, idOrRoute);
  if (!isRunning(found.description)) {
    const phase = (found.description.memo as { phase?: string } | undefined)?.phase;
    throw new Error(
      `cannot ${what} ${found.workflowId}: it is not running (${found.description.status.name.toLowerCase()}${phase ? `, phase ${phase}` : ''}, ` +
        `closed ${found.description.closeTime?.toISOString() ?? '?'}); see 'model-rollout status ${idOrRoute}'`,
    );
  }
  return found;
}

async function waitFor(
  client: Client,
  found: FoundRollout,
  before: RolloutStatus,
  done: (b: RolloutStatus, a: RolloutStatus) => boolean,
  waitMs: number,
): Promise<{ status: RolloutStatus; done: boolean }> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const status = await queryStatus(client, found.handle);
    if (done(before, status)) return { status, done: true };
    if (Date.now() >= deadline) return { status, done: false };
    await new Promise((r) => setTimeout(r, 250));
  }
}
