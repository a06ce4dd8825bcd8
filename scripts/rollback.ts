/**
 * Rolls back the running rollout of a route, and returns only once the routing has changed (the `rollback`
 * update waits for it), e.g. from an alerting hook:
 *
 *   npx tsx scripts/rollback.ts support-bot "answers got worse"
 *
 * Exit code 0 when rolled back, 1 when there was nothing to roll back or it failed.
 */
import { WorkflowNotFoundError } from '@temporalio/client';
import { rolloutWorkflowId } from '../src/decision/config/rollout-spec';
import { createClient } from '../src/control-plane/temporal/connection';
import { rollbackUpdate } from '../workflows/messages';

const args = process.argv.slice(2);
const usage = 'usage: npx tsx scripts/rollback.ts <route> <reason>';
if (args.includes('--help') || args.includes('-h')) {
  console.log(usage);
  process.exit(0);
}
const [route, reason] = args;
if (!route || !reason) {
  console.error(usage);
  process.exit(2);
}

const client = await createClient();
try {
  const handle = client.workflow.getHandle(rolloutWorkflowId(route));
  const { status } = await handle.describe();
  if (status.name !== 'RUNNING') {
    console.error(`no running rollout on ${route} (${handle.workflowId} is ${status.name.toLowerCase()})`);
    process.exitCode = 1;
  } else {
    const outcome = await handle.executeUpdate(rollbackUpdate, {
      args: [{ reason, actor: `script:${process.env.USER ?? 'automation'}` }],
    });
    console.log(
      `${outcome.result}: ${outcome.stable} serves all traffic on ${route} again (canary share ${outcome.finalShareBps / 100}%)`,
    );
    console.log(`reason: ${outcome.reason}`);
  }
} catch (err) {
  if (!(err instanceof WorkflowNotFoundError)) throw err;
  console.error(`no rollout has ever run on ${route}`);
  process.exitCode = 1;
} finally {
  await client.connection.close();
}
