// Every workflow the worker runs. Deterministic code only: see test/workflow-determinism.test.ts.
export { routeProbeWorkflow } from './route-probe';
