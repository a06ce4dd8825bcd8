/**
 * setShare: route the step's share to the candidate, then check stable against canary every
 * `evaluation.interval` until the canary policy promotes the step (or a person does), under the triggers
 * and the progress deadlines. A share of 100% is the promotion itself.
 */
import { setShare } from '../../src/decision/config/steps/set-share';
import { sharesOf } from '../../src/decision/config/steps';
import { decide, estimate } from '../../src/decision/policy';
import { evidenceReasons } from '../../src/decision/scoring/evidence';
import { DURABLE } from '../activity-options';
import { acts } from '../run/activities';
import { analysisReasons, backgroundAnalysis } from '../run/analysis';
import { checkDeadlines } from '../run/deadlines';
import { noteHold } from '../run/hold';
import { bpsText } from '../run/publish';
import { RollbackRequested, type RolloutRun } from '../run/run';
import { tickWhileScoring } from '../run/scoring';
import { defineStepExecutor } from './executor';

/** What a continued run needs to go on checking this step. */
interface SetShareState {
  stepFromMs: number;
}

export const setShareStep = defineStepExecutor<number, SetShareState>(
  setShare,
  async (r, bps, { resume }) => {
    if (bps >= 10_000) return r.promote();
    const state = resume ?? { stepFromMs: 0 };
    if (!resume) {
      await beginCanary(r);
      await r.setShare(bps);
      r.canary!.stepVersions.push(r.status.routingVersion);
      state.stepFromMs = Date.now();
    }
    const canary = r.canary!;
    const ladder = sharesOf(r.steps);
    const context = {
      shareBps: bps,
      stepIndex: ladder.indexOf(bps),
      steps: ladder,
      isFinalStep: ladder[ladder.indexOf(bps) + 1] === 10_000,
    };
    for (;;) {
      await r.maybeContinue(state);
      const batch = await tickWhileScoring(r, canary.fromMs, `evaluate canary at ${bpsText(bps)}`);
      await r.checkTriggers();
      const analysis = await backgroundAnalysis(r, 'canary'); // 'none' without the spec's analysis
      if (r.takePromote()) {
        await batch.settle();
        return;
      }
      const scored = await batch.result();
      const stats = await acts.canaryStats.executeWithOptions(
        { ...DURABLE, summary: 'stable vs canary statistics' },
        [
          {
            route: r.route,
            fromMs: canary.fromMs,
            slowThresholdMs: canary.baselineMs,
            candidateOwnEvidence: true,
            stepVersions: [...canary.stepVersions],
          },
        ],
      );
      const input = { ...stats, context, policy: r.policy };
      const decision = decide(input);
      decision.reasons.push(...evidenceReasons(r.status.scoring!, scored, stats.fallbacks, r.candidateName));
      if (analysis !== 'none') {
        // The team's own metrics are evidence of the decision; an inconclusive check is never a go.
        if (analysis === 'inconclusive' && decision.action === 'promote-step') {
          decision.action = 'hold';
          decision.reasons.unshift('analysis not passing: the step waits for a successful measurement');
        }
        decision.reasons.push(...analysisReasons(r));
      }
      noteHold(r, decision, () =>
        estimate({
          ...input,
          stepElapsedMs: Date.now() - state.stepFromMs,
          canaryElapsedMs: Date.now() - canary.fromMs,
          checkIntervalMs: r.spec.evaluation.interval,
        }),
      );
      await r.record(decision);
      if (decision.action === 'rollback') {
        throw new RollbackRequested(
          `canary policy (${decision.policy}): ${decision.reasons[0] ?? 'quality drop'}`,
          'policy',
          decision.stats,
        );
      }
      if (decision.action === 'promote-step' && !r.status.paused) return;
      await checkDeadlines(r);
    }
  },
);

/** The first share of the list: the latency baseline, and the triggers watch the canary from here on. */
async function beginCanary(r: RolloutRun): Promise<void> {
  if (r.canary) return;
  const now = Date.now();
  const baselineMs = await acts.baselineP95({ route: r.route, fromMs: r.startedMs - 15 * 60_000, toMs: now });
  r.canary = { fromMs: now, baselineMs, stepVersions: [] };
  r.watch = { tag: 'canary', sinceMs: now };
}
