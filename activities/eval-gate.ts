import { ApplicationFailure, Context } from '@temporalio/activity';
import type { FallbackChain } from '../src/data-plane/providers/fallback-chain';
import { parseTarget } from '../src/decision/config/target';
import type { TargetWithFallbacks } from '../src/decision/config/target';
import { compareArms, type EvalComparison } from '../src/decision/eval/compare';
import type { DatasetItem } from '../src/decision/eval/dataset';
import { runEval, type ItemResult } from '../src/control-plane/eval/runner';

export interface EvalGateRequest {
  route: string;
  items: Array<Omit<DatasetItem, 'line'>>;
  candidate: TargetWithFallbacks;
  /** The stable model as the route names it (`provider:model`). */
  stable: string;
  judge?: TargetWithFallbacks['target'];
  margin: number;
  confidence: number;
  concurrency: number;
  timeoutMs: number;
}

export interface EvalGateResult {
  comparison: EvalComparison;
  /** Items the candidate failed, with why (the first 20), for the decision, the status and the alert. */
  failed: Array<{ item: string; failures: string[] }>;
  /** Items answered by an earlier attempt of this activity and not asked again. */
  resumed: number;
}

/** Heartbeat details: what is done so far, without the answers (they can be long). */
type Progress = Array<Omit<ItemResult, 'answer'>>;

export function createEvalGateActivities(deps: { chain?: FallbackChain }) {
  return {
    /**
     * Runs the eval step's dataset against both arms. Heartbeats after every answer with the results so far,
     * so an attempt that a worker's death cut short resumes where it was: finished items are not asked again.
     */
    async runEvalGate(req: EvalGateRequest): Promise<EvalGateResult> {
      if (!deps.chain)
        throw ApplicationFailure.nonRetryable(
          'this worker has no providers configured for eval steps',
          'EvalGate',
        );
      const ctx = Context.current();
      const done = ((ctx.info.heartbeatDetails as Progress | undefined) ?? []).map((r) => ({
        ...r,
        answer: '',
      }));
      const progress: Progress = done.map(({ answer: _answer, ...r }) => r);
      const items = req.items.map((item, i) => ({ ...item, line: i + 1 }));
      ctx.heartbeat(progress);
      const results = await runEval({
        chain: deps.chain,
        items,
        arms: {
          candidate: [req.candidate.target, ...req.candidate.fallbacks],
          stable: [parseTarget(req.stable)],
        },
        judge: req.judge,
        concurrency: req.concurrency,
        timeoutMs: req.timeoutMs,
        done,
        onResult: ({ answer: _answer, ...r }) => {
          progress.push(r);
          ctx.heartbeat(progress);
        },
      });
      const comparison = compareArms(
        items.map((item) => ({
          candidate: results.find((r) => r.item === item.id && r.arm === 'candidate')!.pass,
          stable: results.find((r) => r.item === item.id && r.arm === 'stable')!.pass,
        })),
        { margin: req.margin, confidence: req.confidence },
      );
      const failed = results
        .filter((r) => r.arm === 'candidate' && !r.pass)
        .slice(0, 20)
        .map((r) => ({ item: r.item, failures: r.failures }));
      return { comparison, failed, resumed: done.length };
    },
  };
}
