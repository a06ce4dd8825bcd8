import type { IncomingMessage, ServerResponse } from 'node:http';
import { BodyError, readJsonBody, sendJson } from './http';
import { parseBehaviour, ScenarioValidationError } from './scenario';
import type { SimulatorState } from './state';

/**
 * The admin API, for changing a running simulator from another process (a demo script, the CLI):
 *
 *   GET  /admin/models          configured behaviours (start scenario plus changes)
 *   PUT  /admin/models/:model   replace one model's behaviour (JSON ModelBehaviour)
 *   POST /admin/reset           back to the start scenario, statistics cleared
 *   GET  /admin/stats           request counts, total and by model
 *   GET  /admin/requests        the last request bodies received (at most 100), oldest first
 *
 * Returns false when the path is not an admin route.
 */
export async function handleAdmin(
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  state: SimulatorState,
): Promise<boolean> {
  const method = req.method ?? 'GET';
  if (path === '/admin/models' && method === 'GET') {
    sendJson(res, 200, state.snapshot());
  } else if (path.startsWith('/admin/models/') && method === 'PUT') {
    await putModel(req, res, decodeURIComponent(path.slice('/admin/models/'.length)), state);
  } else if (path === '/admin/reset' && method === 'POST') {
    state.reset();
    sendJson(res, 200, { ok: true });
  } else if (path === '/admin/stats' && method === 'GET') {
    sendJson(res, 200, state.stats());
  } else if (path === '/admin/requests' && method === 'GET') {
    sendJson(res, 200, state.received());
  } else {
    return false;
  }
  return true;
}

async function putModel(
  req: IncomingMessage,
  res: ServerResponse,
  model: string,
  state: SimulatorState,
): Promise<void> {
  if (model === '') return invalid(res, [{ field: 'model', reason: 'the model name in the path is empty' }]);
  try {
    const behaviour = parseBehaviour(await readJsonBody(req), `behaviour of ${model}`);
    state.setBehaviour(model, behaviour);
    sendJson(res, 200, { model, behaviour });
  } catch (error) {
    if (error instanceof ScenarioValidationError) return invalid(res, error.issues);
    if (error instanceof BodyError)
      return invalid(res, [{ field: '(body)', reason: error.message }], error.status);
    throw error;
  }
}

function invalid(res: ServerResponse, issues: { field: string; reason: string }[], status = 400): void {
  const message = issues.map((issue) => `${issue.field}: ${issue.reason}`).join('; ');
  sendJson(res, status, { error: { message, issues } });
}
