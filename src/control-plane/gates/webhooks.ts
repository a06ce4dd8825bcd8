/**
 * Webhook gates, configured by name on the worker only (a hook's URL may carry a token, and its secret
 * signs what the rollout sends):
 *
 *   WEBHOOK_GATES_FILE=/etc/model-rollout/webhook-gates.json   (or WEBHOOK_GATES='<the same JSON>')
 *   { "release-gate": { "url": "https://ci.example.com/hooks/confirm", "secret": "at-least-16-chars..." } }
 *
 * Every POST is signed as the alert webhooks are (HMAC-SHA256 over `<timestamp>.<body>`,
 * x-model-rollout-signature / x-model-rollout-timestamp; `verifySignature` in ../alerts/channels.ts).
 */
import { z } from 'zod';
import { ENDPOINT_NAME, loadNamedConfig, parseNamedConfig } from './named-config';

const hookSchema = z.strictObject({
  url: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }),
  secret: z.string().min(16, 'the HMAC secret must be at least 16 characters'),
});

const hooksSchema = z.record(
  z.string().regex(ENDPOINT_NAME, 'a hook name is lower-case letters, digits, ".", "_" or "-"'),
  hookSchema,
);

export type WebhookGate = z.output<typeof hookSchema>;
export type WebhookGates = ReadonlyMap<string, WebhookGate>;

export function loadWebhookGates(env: NodeJS.ProcessEnv = process.env): WebhookGates {
  return loadNamedConfig({ file: 'WEBHOOK_GATES_FILE', json: 'WEBHOOK_GATES' }, hooksSchema, env);
}

export function parseWebhookGates(text: string, source = 'webhook gates'): WebhookGates {
  return parseNamedConfig(text, hooksSchema, source);
}
