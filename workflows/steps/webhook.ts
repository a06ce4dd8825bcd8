/**
 * webhook: ask a hook (a named endpoint on the worker) and go on when it answers 2xx. A refusal (another
 * status, or no answer after Temporal's retries) rolls back or holds, as the step says; while it holds the
 * hook is asked again every `interval`, the triggers keep watching, and `status` and the UI say what the
 * rollout waits for. A person's promote passes the gate; a rollback never waits for the hook.
 */
import { formatDuration } from '../../src/decision/config/duration';
import { webhook, type WebhookStep } from '../../src/decision/config/steps/webhook';
import type { GateStatus } from '../messages';
import { askHook } from '../run/gates';
import { bpsText } from '../run/publish';
import { RollbackRequested } from '../run/run';
import { defineStepExecutor } from './executor';

interface WebhookState {
  sinceMs: number;
  asked: number;
  /** The refusal was recorded and alerted (once per step). */
  refused: boolean;
}

export const webhookStep = defineStepExecutor<WebhookStep, WebhookState>(
  webhook,
  async (r, w, { resume }) => {
    const state = resume ?? { sinceMs: Date.now(), asked: 0, refused: false };
    const gate: GateStatus = (r.status.gate = {
      hook: w.hook,
      type: w.type,
      since: new Date(state.sinceMs).toISOString(),
      state: 'asking',
      onRefusal: w.onRefusal,
      asked: state.asked,
      ...(resume ? { lastStatus: r.status.gate?.lastStatus, lastAnswer: r.status.gate?.lastAnswer } : {}),
    });
    const passedBy = (actor: string) => {
      gate.state = 'passed';
      gate.passedBy = actor;
      r.publish();
    };
    for (;;) {
      await r.maybeContinue(state);
      if (r.status.paused) {
        // Paused by a person: the gate is neither asked nor passed until they resume, promote or roll back.
        await r.tick(r.spec.triggers.interval, `paused at webhook '${w.hook}'`, () => !r.status.paused);
        const promote = r.takePromote();
        if (promote) return passedBy(promote.actor);
        await r.checkTriggers();
        continue;
      }
      gate.state = 'asking';
      r.publish();
      const result = await askHook(r, w, w.type, () => r.promoteRequest !== undefined);
      if (r.rollbackRequest) throw r.rollbackRequest;
      const promote = r.takePromote();
      if (promote) return passedBy(promote.actor);
      state.asked += 1;
      gate.asked = state.asked;
      if ('answer' in result) {
        gate.lastStatus = result.answer.status;
        gate.lastAnswer = result.answer.answer;
        if (result.answer.ok) {
          gate.state = 'passed';
          await r.record({
            action: 'promote-step',
            policy: 'webhook',
            reasons: [`${w.type} webhook '${w.hook}' answered ${result.answer.status}`],
            stats: { status: result.answer.status, asked: state.asked },
          });
          return;
        }
      } else if ('failure' in result) {
        gate.lastStatus = undefined;
        gate.lastAnswer = result.failure;
      }
      gate.state = 'refused';
      const why =
        'answer' in result
          ? `${w.type} webhook '${w.hook}' answered ${result.answer.status}${result.answer.answer ? `: ${result.answer.answer}` : ''}`
          : `${w.type} ${gate.lastAnswer}`;
      if (w.onRefusal === 'rollback') {
        await r.record({
          action: 'rollback',
          policy: 'webhook',
          reasons: [why],
          stats: { status: gate.lastStatus ?? null, asked: state.asked },
        });
        throw new RollbackRequested(why, 'webhook', {
          hook: w.hook,
          type: w.type,
          status: gate.lastStatus ?? null,
          answer: gate.lastAnswer ?? null,
        });
      }
      if (!state.refused) {
        state.refused = true;
        await r.record({
          action: 'hold',
          policy: 'webhook',
          reasons: [why],
          stats: { status: gate.lastStatus ?? null, asked: state.asked },
        });
        void r.alert(
          'webhook',
          `Rollout of ${r.candidateName} on ${r.route} held at ${bpsText(r.status.shareBps)}: ${why}. ` +
            `Asked again every ${formatDuration(w.interval)}; promote or roll back by hand (model-rollout promote|rollback ${r.route})`,
          { hook: w.hook, type: w.type, status: gate.lastStatus ?? null },
        );
      }
      r.publish();
      await r.tick(w.interval, `wait for webhook '${w.hook}'`);
      const later = r.takePromote();
      if (later) return passedBy(later.actor);
      await r.checkTriggers();
    }
  },
);
