/**
 * eval: the dataset against the candidate and the stable model, before the steps that follow. A candidate
 * that may be worse than stable by more than the margin is rolled back; placed before the first share, no
 * user request ever reaches it.
 */
import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../../activities';
import { evalGate, type EvalStep } from '../../src/decision/config/steps/eval';
import { RollbackRequested } from '../run/run';
import { defineStepExecutor } from './executor';

const acts = proxyActivities<Activities>({
  // A dataset of hundreds of items at a few seconds each; the heartbeat shows a stuck attempt within a minute,
  // and a retry resumes from the last heartbeat.
  startToCloseTimeout: '2 hours',
  heartbeatTimeout: '1 minute',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
});

export const evalStep = defineStepExecutor<EvalStep>(evalGate, async (r, e) => {
  const result = await acts.runEvalGate({
    route: r.route,
    items: e.items,
    candidate: r.spec.candidate,
    stable: r.claim.stable,
    judge: r.spec.evaluation.judge,
    margin: e.margin,
    confidence: e.confidence,
    concurrency: e.concurrency,
    timeoutMs: e.timeout,
  });
  const { comparison } = result;
  const failedText = result.failed
    .slice(0, 5)
    .map((f) => `${f.item} (${f.failures.join('; ')})`)
    .join(', ');
  const evidence = {
    'eval.items': comparison.items,
    'eval.candidatePassed': comparison.candidatePassed,
    'eval.stablePassed': comparison.stablePassed,
    'eval.gained': comparison.gained,
    'eval.lost': comparison.lost,
    'eval.lowerBound': comparison.lowerBound,
    'eval.margin': comparison.margin,
  };
  if (!comparison.pass)
    throw new RollbackRequested(
      `eval gate: ${comparison.summary}${failedText ? `; candidate failed ${failedText}` : ''}`,
      'policy',
      evidence,
    );
  await r.record({
    action: 'promote-step',
    policy: 'eval-gate',
    reasons: [`eval gate passed: ${comparison.summary}`],
    stats: evidence,
  });
});
