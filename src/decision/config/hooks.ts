/**
 * The spec's lifecycle webhooks, in the manner of Flagger's:
 *
 *   "webhooks": [
 *     { "type": "pre-rollout", "hook": "load-test" },
 *     { "type": "confirm-promotion", "hook": "release-gate", "at": "promotion" },
 *     { "type": "post-rollout", "hook": "cleanup" },
 *     { "type": "rollback", "hook": "kill-switch" },
 *     { "type": "event", "hook": "audit-log" }
 *   ]
 *
 * The gates become `webhook` steps of the list (./steps/webhook.ts), so status, the plan, continue-as-new
 * and `promote --full` treat them as any step: `pre-rollout` before the first step (a refusal rolls back
 * unless `onRefusal` says hold), `confirm-promotion` before the promotion (`at: "promotion"`, the default)
 * or before every increase of the share (`at: "each-step"`; a refusal holds unless it says rollback). The
 * others stay here: `post-rollout` is told the outcome once the rollout ended (its answer changes
 * nothing), `rollback` is asked at each check while the rollout runs and a 2xx answer rolls it back (as in
 * Flagger: silence or a refusal means no), `event` gets every decision, step and outcome (fire and forget).
 * A parsed spec keeps only those three in `webhooks`, so it parses again to itself.
 */
import { z } from 'zod';
import type { Step } from './steps';
import { hookCallSchema, webhookSchema, type WebhookStep } from './steps/webhook';

/** A gate's default onRefusal depends on its type (see placeHooks). */
const gateHook = webhookSchema
  .omit({ type: true })
  .extend({ onRefusal: z.enum(['hold', 'rollback']).optional() });

export const webhookConfigSchema = z.discriminatedUnion(
  'type',
  [
    gateHook.extend({ type: z.literal('pre-rollout') }),
    gateHook.extend({
      type: z.literal('confirm-promotion'),
      at: z.enum(['promotion', 'each-step']).default('promotion'),
    }),
    hookCallSchema.extend({ type: z.literal('post-rollout') }),
    hookCallSchema.extend({ type: z.literal('rollback') }),
    hookCallSchema.extend({ type: z.literal('event') }),
  ],
  { error: "type is 'pre-rollout', 'confirm-promotion', 'post-rollout', 'rollback' or 'event'" },
);

export const webhooksSchema = z.array(webhookConfigSchema).max(20, 'at most 20 webhooks').default([]);

export type WebhookConfig = z.output<typeof webhookConfigSchema>;
/** What a parsed spec keeps in `webhooks`: the hooks that are not steps. */
export type LifecycleHook = Extract<WebhookConfig, { type: 'post-rollout' | 'rollback' | 'event' }>;

/** The list with the gate hooks placed as `webhook` steps, and the hooks that stay in `webhooks`. */
export function placeHooks(
  steps: readonly Step[],
  hooks: readonly WebhookConfig[],
): { steps: Step[]; webhooks: LifecycleHook[] } {
  const before = new Map<number, Step[]>();
  const put = (index: number, step: WebhookStep) =>
    before.set(index, [...(before.get(index) ?? []), { webhook: step }]);
  const shares = steps.map((s) => {
    const v = (s as { setShare?: number }).setShare;
    return typeof v === 'number' ? v : undefined;
  });
  const firstShare = shares.findIndex((s) => s !== undefined);
  for (const h of hooks) {
    if (h.type === 'pre-rollout') {
      const { type, onRefusal, ...call } = h;
      put(0, { ...call, type, onRefusal: onRefusal ?? 'rollback' });
    } else if (h.type === 'confirm-promotion') {
      const { type, onRefusal, at, ...call } = h;
      const step: WebhookStep = { ...call, type, onRefusal: onRefusal ?? 'hold' };
      shares.forEach((s, i) => {
        if (s === undefined) return;
        if (at === 'promotion' ? s >= 10_000 : i !== firstShare) put(i, step);
      });
    }
  }
  const placed = steps.flatMap((s, i) => [...(before.get(i) ?? []), s]);
  const webhooks = hooks.filter(
    (h): h is LifecycleHook => !['pre-rollout', 'confirm-promotion'].includes(h.type),
  );
  return { steps: placed, webhooks };
}
