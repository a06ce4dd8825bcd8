/** The workflow id of the rollout that owns a route: one rollout per route at a time. */
export function rolloutWorkflowId(route: string): string {
  return `rollout-${route}`;
}
