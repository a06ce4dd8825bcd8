/**
 * `{ "webhook": { "hook": "load-test", "onRefusal": "hold" } }`: a gate at this place in the list, in the
 * manner of Flagger's webhooks. The rollout POSTs its state to the hook (a named endpoint configured on
 * the worker, WEBHOOK_GATES_FILE; never a URL in the spec), signed like the alerts; a 2xx answer lets it go
 * on, a refusal (another status, or no answer after the retries) holds it, asking again every `interval`,
 * or rolls it back, as `onRefusal` says. Each attempt has `timeout`; Temporal retries a hook that does not
 * answer, is busy (408, 429) or fails (5xx) up to `retries` times. A rollback by a person never waits for
 * a hook; a person's promote passes a held gate. The spec's `webhooks` place `pre-rollout` and
 * `confirm-promotion` hooks as steps of this kind (../hooks.ts).
 */
import { z } from 'zod';
import { formatDuration } from '../duration';
import { durationSchema } from '../duration-schema';
import { defineStepKind } from './kind';

export const HOOK_NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;
export const hookNameSchema = z
  .string()
  .regex(HOOK_NAME, 'a webhook configured on the worker (WEBHOOK_GATES_FILE), by name, not a URL');

/** How a hook is called: per attempt, how often, and how often it is asked again while it refuses. */
export const hookCallSchema = z.strictObject({
  hook: hookNameSchema,
  timeout: durationSchema('10s').refine((ms) => ms > 0 && ms <= 300_000, 'between 1ms and 5m'),
  retries: z.number().int().min(0).max(10).default(2),
});

export const webhookSchema = hookCallSchema.extend({
  /** Why it is there: a gate of the list, or a lifecycle hook the spec's `webhooks` placed. */
  type: z.enum(['gate', 'pre-rollout', 'confirm-promotion']).default('gate'),
  onRefusal: z.enum(['hold', 'rollback']).default('hold'),
  /** While it refuses and holds: ask again this often. */
  interval: durationSchema('1m').refine((ms) => ms > 0, 'must be longer than 0'),
});

export type WebhookStep = z.output<typeof webhookSchema>;

export const webhook = defineStepKind<WebhookStep>({
  kind: 'webhook',
  schema: webhookSchema,
  describe: (w) =>
    `${w.type === 'gate' ? 'webhook' : w.type} '${w.hook}' (a refusal ${w.onRefusal === 'hold' ? `holds, asked every ${formatDuration(w.interval)}` : 'rolls back'})`,
  phase: (w) => (w.type === 'pre-rollout' ? 'pre-rollout' : 'awaiting-webhook'),
  gate: true,
});
