import type { EvaluatorConfig, EvaluatorKind } from '../../config/evaluators';
import { ProviderError, ChainExhaustedError } from '../../../data-plane/providers/errors';
import type { Target } from '../../../data-plane/providers/types';
import type { CombineMode, EvaluatorOutcome } from '../combine';
import { heuristicScore } from '../heuristics';
import { checks } from './checks';
import {
  EvaluatorError,
  fromOneToFive,
  InvalidEvaluatorError,
  type EvaluationItem,
  type Evaluator,
  type EvaluatorDeps,
  type EvaluatorFactory,
  type HttpEvaluatorService,
} from './evaluator';
import { feedback } from './feedback';
import { http } from './http';
import { judge } from './judge';
import { reference } from './reference';

/**
 * The evaluators' factories, by kind (the kinds' schemas and flags: src/decision/config/evaluators/). A new
 * kind is one file here and one line below; the compiler refuses a kind of the spec without a factory.
 */
export * from './evaluator';
export { referenceQuestion } from './reference';

export const FACTORIES: { [K in EvaluatorKind]: EvaluatorFactory<K> } = {
  judge,
  http,
  checks,
  feedback,
  reference,
};

export function createEvaluator(config: EvaluatorConfig, deps: EvaluatorDeps): Evaluator {
  return (FACTORIES[config.kind] as EvaluatorFactory).create(config as never, deps);
}

/** Reads HTTP eval services from the environment: MODEL_ROLLOUT_EVALUATOR_<NAME>_URL (and _TOKEN). */
export function httpServicesFromEnv(
  env: NodeJS.ProcessEnv = process.env,
): Record<string, HttpEvaluatorService> {
  const services: Record<string, HttpEvaluatorService> = {};
  for (const [key, value] of Object.entries(env)) {
    const match = /^MODEL_ROLLOUT_EVALUATOR_([A-Z0-9_-]+)_URL$/.exec(key);
    if (!match || !value) continue;
    const token = env[`MODEL_ROLLOUT_EVALUATOR_${match[1]}_TOKEN`];
    services[match[1].toLowerCase()] = {
      url: value,
      headers: token ? { authorization: `Bearer ${token}` } : undefined,
    };
  }
  return services;
}

/**
 * The evaluators of a rollout and how they combine. With an explicit list: all of them, weighted. Without
 * one (the default): reference, then feedback, then the judge when there is one (else the heuristic); the
 * first that applies decides.
 */
export function evaluatorsFor(
  configs: readonly EvaluatorConfig[] | undefined,
  judgeTarget: Target | undefined,
  deps: EvaluatorDeps,
): { evaluators: Evaluator[]; mode: CombineMode } {
  if (configs && configs.length > 0) {
    const evaluators = configs.map((c, i) => {
      try {
        return createEvaluator(c, deps);
      } catch (err) {
        if (!(err instanceof InvalidEvaluatorError)) throw err;
        throw new InvalidEvaluatorError(`evaluation.evaluators.${i}.${err.field}`, err.reason);
      }
    });
    return { evaluators, mode: 'weighted' };
  }
  const last: Evaluator =
    judgeTarget && deps.chain
      ? judge.create({ kind: 'judge', target: judgeTarget, weight: 1 }, deps)
      : heuristicEvaluator();
  return {
    evaluators: [
      reference.create({ kind: 'reference', weight: 1 }, deps),
      feedback.create({ kind: 'feedback', weight: 1 }, deps),
      last,
    ],
    mode: 'first',
  };
}

/** Runs the evaluators on one answer: lazily in order for `first`, all at once for `weighted`. */
export async function runEvaluators(
  evaluators: readonly Evaluator[],
  mode: CombineMode,
  item: EvaluationItem,
  signal: AbortSignal,
): Promise<EvaluatorOutcome[]> {
  const one = async (e: Evaluator): Promise<EvaluatorOutcome> => {
    try {
      const result = await e.evaluate(item, signal);
      return result === null
        ? { name: e.name, weight: e.weight, notApplicable: true }
        : { name: e.name, weight: e.weight, score: result.score, costUsd: result.costUsd };
    } catch (err) {
      return { name: e.name, weight: e.weight, error: failureReason(err) };
    }
  };
  if (mode === 'weighted') return Promise.all(evaluators.map(one));
  const outcomes: EvaluatorOutcome[] = [];
  for (const e of evaluators) {
    const outcome = await one(e);
    outcomes.push(outcome);
    if (!('notApplicable' in outcome)) break;
  }
  return outcomes;
}

function failureReason(err: unknown): string {
  if (err instanceof EvaluatorError) return err.reason;
  if (err instanceof ChainExhaustedError || err instanceof ProviderError)
    return (err as { errorClass?: string }).errorClass ?? 'provider error';
  if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) return 'timeout';
  return 'error';
}

/** Only in the default list without a judge: a weak signal that catches plainly broken answers. */
function heuristicEvaluator(): Evaluator {
  return {
    name: 'heuristic',
    weight: 1,
    async evaluate(item) {
      const json = /\bjson\b/i.test(JSON.stringify(item.messages ?? ''));
      return { score: fromOneToFive(heuristicScore(item.answer, json)) };
    },
  };
}
