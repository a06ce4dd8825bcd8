/**
 * `model-rollout list [--route R] [--phase P]`: rollouts through Temporal visibility, filtered by the
 * rollout search attributes (the same query works in the Temporal UI and `temporal workflow list`).
 */
import { Option, type Command } from 'commander';
import { UsageError } from '../errors';
import { action, share, table, timestamp } from '../format';
import { withClient } from './status';

const PHASES = [
  'starting',
  'shadow',
  'canary',
  'awaiting-approval',
  'promoting',
  'baking',
  'completed',
  'rolled_back',
  'shadow-report',
  'cancelled',
];
/** `--status` values and how visibility spells them. */
const EXECUTION_STATUS: Record<string, string> = {
  running: 'Running',
  completed: 'Completed',
  failed: 'Failed',
  cancelled: 'Canceled',
  terminated: 'Terminated',
  timed_out: 'TimedOut',
  continued_as_new: 'ContinuedAsNew',
};
const STATUSES = Object.keys(EXECUTION_STATUS);

export interface ListedRollout {
  workflowId: string;
  runId: string;
  route: string | null;
  phase: string | null;
  candidate: string | null;
  strategy: string | null;
  shareBps: number | null;
  status: string;
  startTime: string;
  closeTime: string | null;
}

/** A visibility query for rollouts; values are quoted, so a route name cannot change the query. */
export function rolloutQuery(filters: { route?: string; phase?: string; status?: string }): string {
  const quote = (v: string) => `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  const clauses = [`WorkflowType = 'rolloutWorkflow'`];
  if (filters.route) clauses.push(`RolloutRoute = ${quote(filters.route)}`);
  if (filters.phase) clauses.push(`RolloutPhase = ${quote(filters.phase)}`);
  if (filters.status)
    clauses.push(`ExecutionStatus = ${quote(EXECUTION_STATUS[filters.status] ?? filters.status)}`);
  // A rollout that continued as new is one row (its latest run), unless runs of that status are asked for.
  else clauses.push(`ExecutionStatus != 'ContinuedAsNew'`);
  return clauses.join(' AND ');
}

export function registerListCommand(program: Command): void {
  program
    .command('list')
    .description('List rollouts (newest first) through Temporal visibility')
    .option('--route <route>', 'only this route (RolloutRoute)')
    .addOption(new Option('--phase <phase>', 'only rollouts in this phase (RolloutPhase)').choices(PHASES))
    .addOption(new Option('--status <status>', 'only this execution status').choices(STATUSES))
    .option('--limit <n>', 'at most this many', '20')
    .option('--json', 'print the rollouts as JSON')
    .addHelpText(
      'after',
      '\nExamples:\n  model-rollout list\n  model-rollout list --route support-bot --json\n  model-rollout list --phase canary',
    )
    .action(
      async (opts: { route?: string; phase?: string; status?: string; limit: string; json?: boolean }) => {
        const limit = Number(opts.limit);
        if (!Number.isInteger(limit) || limit < 1)
          throw new UsageError(`--limit must be a positive integer, got ${opts.limit}`);
        const query = rolloutQuery(opts);
        const sa = await import('../../control-plane/temporal/search-attributes');
        const rollouts = await withClient(async (client) => {
          const out: ListedRollout[] = [];
          for await (const w of client.workflow.list({ query, pageSize: Math.min(limit, 100) })) {
            const attrs = w.typedSearchAttributes;
            out.push({
              workflowId: w.workflowId,
              runId: w.runId,
              route: attrs.get(sa.RolloutRoute) ?? null,
              phase: attrs.get(sa.RolloutPhase) ?? null,
              candidate: attrs.get(sa.RolloutCandidate) ?? null,
              strategy: attrs.get(sa.RolloutStrategy) ?? null,
              shareBps: attrs.get(sa.CanaryBasisPoints) ?? null,
              status: w.status.name,
              startTime: w.startTime.toISOString(),
              closeTime: w.closeTime ? w.closeTime.toISOString() : null,
            });
            if (out.length >= limit) break;
          }
          return out;
        });
        if (opts.json) {
          console.log(JSON.stringify(rollouts, null, 2));
          return;
        }
        if (rollouts.length === 0) {
          console.log(`no rollouts match (${query})`);
          return;
        }
        console.log(
          table(
            rollouts.map((r) => [
              r.route ?? '-',
              action(r.phase ?? '-'),
              r.candidate ?? '-',
              share(r.shareBps),
              r.status.toLowerCase(),
              timestamp(r.startTime),
              r.workflowId,
            ]),
            ['ROUTE', 'PHASE', 'CANDIDATE', 'SHARE', 'STATUS', 'STARTED', 'WORKFLOW ID'],
          ),
        );
      },
    );
}
