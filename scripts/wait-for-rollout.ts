/**
 * Waits for the rollout of a route to end and prints its outcome; the exit code says how it ended, so a
 * pipeline can gate on it:
 *
 *   npx tsx scripts/wait-for-rollout.ts support-bot && echo "promoted"
 *
 * Exit code 0: completed (or a shadow-only report); 1: rolled back, cancelled or failed.
 */
import { WorkflowFailedError, WorkflowNotFoundError } from '@temporalio/client';
import { rolloutWorkflowId } from '../src/decision/config/rollout-spec';
import { createClient } from '../src/control-plane/temporal/connection';
import type { RolloutOutcome } from '../workflows/messages';

const args = process.argv.slice(2);
const usage = 'usage: npx tsx scripts/wait-for-rollout.ts <route>';
if (args.includes('--help') || args.includes('-h')) {
  console.log(usage);
  process.exit(0);
}
const [route] = args;
if (!route) {
  console.error(usage);
  process.exit(2);
}

const client = await createClient();
try {
  const handle = client.workflow.getHandle(rolloutWorkflowId(route));
  console.log(`waiting for ${handle.workflowId}...`);
  const outcome: RolloutOutcome = await handle.result(); // follows the latest run, however long it takes
  console.log(`${outcome.result}: ${outcome.reason}`);
  console.log(`stable model on ${route}: ${outcome.stable}`);
  process.exitCode = outcome.result === 'completed' || outcome.result === 'shadow-report' ? 0 : 1;
} catch (err) {
  if (err instanceof WorkflowNotFoundError) console.error(`no rollout has ever run on ${route}`);
  else if (err instanceof WorkflowFailedError)
    console.error(`the rollout failed: ${err.cause?.message ?? err.message}`);
  else throw err;
  process.exitCode = 1;
} finally {
  await client.connection.close();
}
