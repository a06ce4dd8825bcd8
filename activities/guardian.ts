import { ApplicationFailure } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import type { AlertChannelRef } from '../src/control-plane/alerts/kinds';
import type { TriggerSpec } from '../src/decision/policy';
import { TASK_QUEUE } from '../src/control-plane/temporal/connection';

export interface GuardianDeps {
  client?: Client;
  taskQueue?: string;
}

export interface GuardianWatch {
  route: string;
  triggers: TriggerSpec[];
  intervalMs: number;
  /** Named channels for the guardian's rollback alerts (the URLs live on the worker). */
  alertChannels?: AlertChannelRef[];
}

export const guardianWorkflowId = (route: string) => `guardian-${route}`;

/** Starts the route's guardian, or tells the running one about the newly promoted model. */
export function createGuardianActivities(deps: GuardianDeps) {
  return {
    async ensureGuardian(watch: GuardianWatch): Promise<string> {
      if (!deps.client)
        throw ApplicationFailure.nonRetryable(
          'this worker has no Temporal client to start the route guardian',
          'NoClient',
        );
      const workflowId = guardianWorkflowId(watch.route);
      await deps.client.workflow.signalWithStart('routeGuardianWorkflow', {
        workflowId,
        taskQueue: deps.taskQueue ?? TASK_QUEUE,
        args: [{ ...watch, sinceMs: Date.now() }],
        signal: 'watch',
        signalArgs: [{ ...watch, sinceMs: Date.now() }],
      });
      return workflowId;
    },
  };
}
