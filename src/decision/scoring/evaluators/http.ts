import { defineEvaluator, EvaluatorError } from './evaluator';

/**
 * The team's eval service, by the name the worker knows it under: its `score` on the declared scale
 * (default 1-5), normalised to [0, 1]. See docs/evaluators.md for the protocol.
 */
export const http = defineEvaluator('http', ({ name, weight, scale = { min: 1, max: 5 } }, deps) => ({
  name: `http:${name}`,
  weight,
  async evaluate(item, signal) {
    const services = deps.httpServices ?? {};
    const service = services[name] ?? services[name.toLowerCase().replace(/-/g, '_')];
    if (!service) throw new EvaluatorError(`eval service "${name}" is not configured on the worker`);
    const timeout = AbortSignal.timeout(service.timeoutMs ?? 10_000);
    let response: Response;
    try {
      response = await fetch(service.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...service.headers },
        body: JSON.stringify({
          requestId: item.requestId,
          route: item.route,
          arm: item.tag,
          messages: item.messages,
          question: item.question,
          answer: item.answer,
        }),
        signal: AbortSignal.any([signal, timeout]),
        // The request carries the service's token and captured prompts: a redirect is refused, not
        // followed, so neither ever reaches a host other than the one configured on the worker.
        redirect: 'manual',
      });
    } catch {
      throw new EvaluatorError(
        timeout.aborted ? 'timeout' : signal.aborted ? 'cancelled' : 'connection failed',
      );
    }
    if (!response.ok) {
      await response.body?.cancel();
      if (response.status >= 300 && response.status < 400)
        throw new EvaluatorError(`HTTP ${response.status}: redirect not followed`);
      throw new EvaluatorError(`HTTP ${response.status}`);
    }
    const body = (await response.json().catch(() => undefined)) as { score?: unknown } | null | undefined;
    if (body && body.score === null) return null; // the service says: not mine to judge
    const score = body?.score;
    if (typeof score !== 'number' || !Number.isFinite(score) || score < scale.min || score > scale.max)
      throw new EvaluatorError(`response had no "score" between ${scale.min} and ${scale.max}`);
    return { score: (score - scale.min) / (scale.max - scale.min) };
  },
}));
