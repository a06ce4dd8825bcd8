import {
  proxyActivities,
  setCurrentDetails,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { UndoInput, UndoResult } from '../activities/undo';
import { RolloutPhase, RolloutRoute } from '../src/control-plane/temporal/search-attributes';
import { ROUTING } from './activity-options';

const acts = proxyActivities<Activities>(ROUTING);

/**
 * `model-rollout undo`: the route goes back to the model that was stable before its last promotion. A small
 * workflow rather than a direct write, so the undo is in Temporal's history (found by its route in the UI,
 * like every rollout) as well as in the routing audit log. A refusal (a rollout owns the route, the window
 * has passed, the other slot was overwritten) fails the workflow with the reason and changes nothing.
 */
export async function undoWorkflow(input: UndoInput): Promise<UndoResult> {
  upsertSearchAttributes([
    { key: RolloutRoute, value: input.route },
    { key: RolloutPhase, value: 'undo' },
  ]);
  setCurrentDetails(`undo on route ${input.route} requested by ${input.actor}`);
  const { workflowId, runId } = workflowInfo();
  const result = await acts.undoPromotion({ ...input, idempotencyKey: `${workflowId}:${runId}` });
  setCurrentDetails(
    `undone by ${input.actor}: ${result.from} -> ${result.to.target.provider}:${result.to.target.model} ` +
      `(routing version ${result.version}; change ${result.undoes.version} by ${result.undoes.actor} undone)`,
  );
  return result;
}
