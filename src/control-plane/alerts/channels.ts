/**
 * Alert channels, configured by name on the worker only. A webhook URL is a credential (whoever holds a Slack
 * webhook URL can post to the channel), so specs, workflow histories and activity inputs carry the channel's
 * name and never its URL; the URL and the signing secret stay in this process.
 *
 *   ALERT_CHANNELS_FILE=/etc/model-rollout/alert-channels.json   (or ALERT_CHANNELS='<the same JSON>')
 *   {
 *     "ops-slack": { "type": "slack", "url": "https://hooks.slack.com/services/..." },
 *     "pager":     { "type": "webhook", "url": "https://alerts.example.com/in", "secret": "..." }
 *   }
 *
 * `slack`: a Slack-compatible body (`text`, `blocks`, and the structured `event`). `webhook`: the event as
 * JSON, signed with HMAC-SHA256 (see `signatureHeaders`).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { z } from 'zod';

export const CHANNEL_NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;

const url = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' });

const channelSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('slack'), url }),
  z.strictObject({
    type: z.literal('webhook'),
    url,
    secret: z.string().min(16, 'the HMAC secret must be at least 16 characters'),
  }),
]);

const channelsSchema = z.record(
  z.string().regex(CHANNEL_NAME, 'a channel name is lower-case letters, digits, ".", "_" or "-"'),
  channelSchema,
);

export type AlertChannel = z.output<typeof channelSchema>;
export type AlertChannels = ReadonlyMap<string, AlertChannel>;

export class AlertChannelsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AlertChannelsError';
  }
}

/**
 * The channels from `ALERT_CHANNELS_FILE` or `ALERT_CHANNELS` (none when neither is set). Errors name the
 * source and the field, never a URL or a secret.
 */
export function loadAlertChannels(env: NodeJS.ProcessEnv = process.env): AlertChannels {
  const file = env.ALERT_CHANNELS_FILE;
  let source: string;
  let text: string | undefined;
  if (file) {
    source = `ALERT_CHANNELS_FILE (${file})`;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      throw new AlertChannelsError(`${source}: cannot read it: ${(err as NodeJS.ErrnoException).code}`);
    }
  } else {
    source = 'ALERT_CHANNELS';
    text = env.ALERT_CHANNELS;
  }
  if (text === undefined || text.trim() === '') return new Map();
  return parseAlertChannels(text, source);
}

export function parseAlertChannels(text: string, source = 'alert channels'): AlertChannels {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new AlertChannelsError(`${source}: not valid JSON`);
  }
  const parsed = channelsSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue.path.map(String).join('.') || '(root)';
    throw new AlertChannelsError(`${source}: ${field}: ${issue.message}`);
  }
  return new Map(Object.entries(parsed.data));
}

export const SIGNATURE_HEADER = 'x-model-rollout-signature';
export const TIMESTAMP_HEADER = 'x-model-rollout-timestamp';

/**
 * HMAC-SHA256 over `<timestamp>.<body>` with the channel's secret, as `sha256=<hex>`; the timestamp (unix
 * seconds) is signed too, so a receiver can refuse replays of old deliveries.
 */
export function signatureHeaders(secret: string, body: string, nowMs = Date.now()): Record<string, string> {
  const timestamp = String(Math.floor(nowMs / 1000));
  return {
    [TIMESTAMP_HEADER]: timestamp,
    [SIGNATURE_HEADER]: `sha256=${sign(secret, timestamp, body)}`,
  };
}

/** For receivers: whether `signature` is this body's, in constant time. */
export function verifySignature(secret: string, timestamp: string, body: string, signature: string): boolean {
  const expected = Buffer.from(`sha256=${sign(secret, timestamp, body)}`);
  const given = Buffer.from(signature);
  return given.length === expected.length && crypto.timingSafeEqual(given, expected);
}

function sign(secret: string, timestamp: string, body: string): string {
  return crypto.createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
}
