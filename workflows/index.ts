// Every workflow the worker runs. Deterministic code only: see test/workflow-determinism.test.ts.
export { rolloutWorkflow } from './rollout';
export { routeGuardianWorkflow } from './guardian';
export { routeProbeWorkflow } from './route-probe';
export { undoWorkflow } from './undo';
export { captureRetentionWorkflow, eventRetentionWorkflow } from './retention';
