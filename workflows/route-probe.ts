import { proxyActivities, upsertSearchAttributes } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { RolloutPhase, RolloutRoute } from '../src/control-plane/temporal/search-attributes';

const { describeRoute } = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
});

/**
 * The smallest real workflow: it tags itself with the route (so it is findable in the UI) and reads the
 * route's routing state through an activity. It proves the Temporal + Postgres wiring end to end.
 */
export async function routeProbeWorkflow(
  route: string,
): Promise<{ route: string; exists: boolean; version: number | null }> {
  upsertSearchAttributes([
    { key: RolloutRoute, value: route },
    { key: RolloutPhase, value: 'probe' },
  ]);
  return describeRoute(route);
}
