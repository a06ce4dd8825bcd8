/**
 * Starts a canary rollout of a candidate model on a route, the way an automation would (a deploy pipeline,
 * a chat-ops bot). Copy it and adapt the spec.
 *
 *   npx tsx scripts/start-rollout.ts support-bot openai:gpt-4o
 *
 * Env: TEMPORAL_ADDRESS (default 127.0.0.1:7233), TEMPORAL_NAMESPACE, TEMPORAL_TASK_QUEUE. A worker must run
 * (`model-rollout worker`) and the route must exist (`model-rollout routes set --file route.json`).
 */
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { InvalidSpecError, parseRolloutSpec, rolloutWorkflowId } from '../src/decision/config/rollout-spec';
import { createClient, TASK_QUEUE } from '../src/control-plane/temporal/connection';
import type { rolloutWorkflow } from '../workflows/rollout';

const args = process.argv.slice(2);
const usage = 'usage: npx tsx scripts/start-rollout.ts <route> <provider:model>';
if (args.includes('--help') || args.includes('-h')) {
  console.log(usage);
  process.exit(0);
}
const [route, candidate] = args;
if (!route || !candidate) {
  console.error(usage);
  process.exit(2);
}

// Validate before starting: a bad spec is refused here with the field and the reason.
let spec;
try {
  spec = parseRolloutSpec(
    {
      route,
      candidate,
      strategy: 'canary',
      canary: { steps: [500, 1000, 2500, 5000, 10000] },
      evaluation: { interval: '5m' },
      actor: `script:${process.env.USER ?? 'automation'}`,
    },
    // (the policy comes out resolved in full: the rollout's input holds every setting it decides on)
  );
} catch (err) {
  if (!(err instanceof InvalidSpecError)) throw err;
  for (const issue of err.issues) console.error(`${issue.field}: ${issue.reason}`);
  process.exit(2);
}

const client = await createClient();
try {
  const handle = await client.workflow.start<typeof rolloutWorkflow>('rolloutWorkflow', {
    taskQueue: TASK_QUEUE,
    workflowId: rolloutWorkflowId(route), // one rollout per route at a time
    args: [spec],
    workflowIdConflictPolicy: 'FAIL',
    workflowIdReusePolicy: 'ALLOW_DUPLICATE',
  });
  console.log(`started ${handle.workflowId} (run ${handle.firstExecutionRunId}): ${candidate} on ${route}`);
} catch (err) {
  if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
  console.error(`a rollout is already running on ${route}: ${err.workflowId}`);
  process.exitCode = 1;
} finally {
  await client.connection.close();
}
