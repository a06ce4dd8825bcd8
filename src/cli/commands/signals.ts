/**
 * Operating a running rollout by hand: `pause`, `resume`, `promote`, `approve` and `rollback`, each sent as
 * a Temporal Update. The rollout's validators decide what it can take (a refusal comes back with its reason,
 * and nothing is recorded); an accepted request answers with the status once the rollout has acted on it.
 * Each takes a route name or a workflow id and an `--actor` for the audit trail.
 */
import type { Command } from 'commander';
import type { Client, WorkflowUpdateHandle } from '@temporalio/client';
import type { UpdateDefinition } from '@temporalio/common';
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

interface UpdateCommand {
  name: 'pause' | 'resume' | 'promote' | 'approve';
  description: string;
  start: (
    found: FoundRollout,
    m: Messages,
    actor: string,
    opts: Record<string, unknown>,
  ) => Promise<WorkflowUpdateHandle<RolloutStatus>>;
  /** What changed, in words (`after` is undefined while the rollout has not acted on it yet). */
  confirm: (before: RolloutStatus, after: RolloutStatus | undefined) => string;
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

const accepted = async <Arg>(
  f: FoundRollout,
  def: UpdateDefinition<RolloutStatus, [Arg]>,
  arg: Arg,
): Promise<WorkflowUpdateHandle<RolloutStatus>> => {
  const { WorkflowUpdateStage } = await import('@temporalio/client');
  return f.handle.startUpdate(def, {
    args: [arg],
    waitForStage: WorkflowUpdateStage.ACCEPTED,
  });
};

const COMMANDS: UpdateCommand[] = [
  {
    name: 'pause',
    description:
      'Pause a rollout: the canary share stops growing (rollback triggers and the policy keep watching)',
    start: (f, m, actor, o) => accepted(f, m.pauseUpdate, { actor, reason: o.reason as string | undefined }),
    confirm: (b, a) =>
      !a
        ? 'pause accepted, not yet applied'
        : b.paused
          ? `already paused; nothing changed (${transition(b, a)})`
          : `paused: ${transition(b, a)}`,
  },
  {
    name: 'resume',
    description: 'Resume a paused rollout',
    start: (f, m, actor, o) => accepted(f, m.resumeUpdate, { actor, reason: o.reason as string | undefined }),
    confirm: (b, a) =>
      !a
        ? 'resume accepted, not yet applied'
        : !b.paused
          ? `not paused; nothing changed (${transition(b, a)})`
          : `resumed: ${transition(b, a)}`,
  },
  {
    name: 'promote',
    description:
      'Move a rollout on now: the next canary step (or --to-full: straight to 100%), or end the shadow phase',
    start: (f, m, actor, o) => accepted(f, m.promoteUpdate, { toFull: !!o.toFull, actor }),
    confirm: (b, a) =>
      a
        ? `promoted: ${transition(b, a)}`
        : `promote accepted; the rollout acts on it when its current check ends (${transition(b, b)})`,
  },
  {
    name: 'approve',
    description: 'Approve the promotion to 100% of a rollout started with --require-approval',
    start: (f, m, actor, o) =>
      accepted(f, m.approveUpdate, { actor, reason: o.reason as string | undefined }),
    confirm: (b, a) =>
      !b.awaitingApproval
        ? `approval recorded ahead of time (the rollout is in phase ${(a ?? b).phase}; it will not stop to wait for approval)`
        : a
          ? `approved: ${transition(b, a)}`
          : 'approval accepted, not yet applied',
  },
];

export function registerSignalCommands(program: Command): void {
  for (const sig of COMMANDS) {
    const cmd = program
      .command(sig.name)
      .description(sig.description)
      .argument('<id-or-route>', 'route name or rollout workflow id')
      .option('--actor <who>', 'who does it, for the audit trail (default cli:$USER)')
      .option('--wait <seconds>', 'how long to wait for the rollout to act on it', '15')
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
        const m = await import('../../../workflows/messages');
        let after: RolloutStatus | undefined;
        try {
          // A refusal by the validator surfaces here, from the start or from the result.
          const update = await sig.start(found, m, actor, opts);
          after = await within(update.result(), waitMs);
        } catch (err) {
          throw new Error(`cannot ${sig.name} ${found.workflowId}: ${refusal(err)}`);
        }
        if (opts.json)
          console.log(
            JSON.stringify(
              { workflowId: found.workflowId, update: sig.name, actor, applied: !!after, before, after },
              null,
              2,
            ),
          );
        else console.log(`${found.workflowId}: ${sig.confirm(before, after)}`);
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

/** The validator's reason (the update failed with an ApplicationFailure as its cause). */
function refusal(err: unknown): string {
  const cause = (err as { cause?: { message?: string } }).cause;
  return cause?.message ?? (err as Error).message ?? String(err);
}

/** The promise's value, or undefined when it takes longer than `ms`. */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)));
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
