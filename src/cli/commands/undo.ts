/**
 * `model-rollout undo <route>`: after a completed rollout, the model that was stable before the promotion
 * serves again, from the slot blue-green kept it in. Runs as the `undoWorkflow` (in Temporal's history, found
 * by its route in the UI) and waits for it; a refusal prints the reason and exits 1.
 */
import type { Command } from 'commander';
import type { undoWorkflow } from '../../../workflows/undo';
import { UsageError } from '../errors';
import { defaultActor, uiLink } from '../format';
import { withClient } from './status';

interface UndoOptions {
  window: string;
  force?: boolean;
  actor?: string;
  reason?: string;
  json?: boolean;
}

export function registerUndoCommand(program: Command): void {
  program
    .command('undo')
    .description(
      'Swap a route back to the model that was stable before its last promotion (within --window, default 7d)',
    )
    .argument('<route>', 'route name')
    .option('--window <duration>', 'how old a promotion may be and still be undone', '7d')
    .option('--force', 'undo past the window, or put the previous config back into an overwritten slot')
    .option('--actor <who>', 'who does it, for the audit trail (default cli:$USER)')
    .option('--reason <text>', 'why, for the audit trail')
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      '\nExample:\n  model-rollout undo support-bot --reason "answers got worse after the upgrade"',
    )
    .action(async (route: string, opts: UndoOptions) => {
      const { parseDuration } = await import('../../decision/config/duration');
      let windowMs: number;
      try {
        windowMs = parseDuration(opts.window);
      } catch (err) {
        throw new UsageError(`--window: ${(err as Error).message}`);
      }
      const actor = opts.actor ?? defaultActor();
      await withClient(async (client) => {
        const { TASK_QUEUE } = await import('../../control-plane/temporal/connection');
        const sa = await import('../../control-plane/temporal/search-attributes');
        const workflowId = `undo-${route}`;
        const handle = await client.workflow.start<typeof undoWorkflow>('undoWorkflow', {
          taskQueue: TASK_QUEUE,
          workflowId,
          args: [{ route, windowMs, force: !!opts.force, actor, reason: opts.reason }],
          workflowIdConflictPolicy: 'FAIL',
          workflowIdReusePolicy: 'ALLOW_DUPLICATE',
          typedSearchAttributes: [
            { key: sa.RolloutRoute, value: route },
            { key: sa.RolloutPhase, value: 'undo' },
          ],
          staticSummary: `undo on ${route}, by ${actor}`,
        });
        let result;
        try {
          result = await handle.result();
        } catch (err) {
          throw new Error(`cannot undo on ${route}: ${causeOf(err)}`);
        }
        if (opts.json) {
          console.log(JSON.stringify({ workflowId, runId: handle.firstExecutionRunId, ...result }, null, 2));
          return;
        }
        const to = `${result.to.target.provider}:${result.to.target.model}`;
        console.log(
          `undone: ${route} serves ${to} again (was ${result.from}), routing version ${result.version}`,
        );
        console.log(
          `  undid change ${result.undoes.version} by ${result.undoes.actor} at ${result.undoes.at}` +
            (result.overwritten
              ? `; the ${result.toSlot} slot held ${result.overwritten.target.provider}:${result.overwritten.target.model} (--force)`
              : ''),
        );
        console.log(`Temporal UI:  ${uiLink(workflowId, client.options.namespace)}`);
      });
    });
}

/** The innermost failure message: the activity's refusal, not "Workflow execution failed". */
function causeOf(err: unknown): string {
  let e = err as { message?: string; cause?: unknown } | undefined;
  while (e?.cause) e = e.cause as typeof e;
  return e?.message ?? String(err);
}
