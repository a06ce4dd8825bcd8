/**
 * `npm run demo`: the main job, on embedded defaults. For now it brings up the whole local stack, proves the
 * control plane end to end with a probe workflow, prints where to look, and stops (or stays up with --keep).
 * The rollout acts (shadow, canary, rollback, outage) join as the workflows land.
 */
import { createClient } from '../src/temporal/connection';
import { startDevStack } from '../src/dev-stack';
import { routeProbeWorkflow } from '../workflows';
import { untilInterrupted } from '../src/cli/signals';

const keep = process.argv.includes('--keep');
const log = (m: string) => console.log(`[demo] ${m}`);

const stack = await startDevStack({ progress: log });
try {
  const client = await createClient({ address: stack.temporal.address, namespace: stack.temporal.namespace });
  const result = await client.workflow.execute(routeProbeWorkflow, {
    taskQueue: 'model-rollout',
    workflowId: `probe-support-bot-${Date.now()}`,
    args: ['support-bot'],
  });
  log(`probe workflow: route ${result.route} ${result.exists ? `exists at version ${result.version}` : 'does not exist yet'}`);
  await client.connection.close();
  if (stack.temporal.uiUrl) log(`Temporal UI: ${stack.temporal.uiUrl}`);
  if (keep) {
    log('stack left running (--keep); Ctrl-C stops it');
    await untilInterrupted();
  }
} finally {
  await stack.stop();
}
