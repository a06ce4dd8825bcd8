import { ApplicationFailure, Context } from '@temporalio/activity';
import {
  loadAlertChannels,
  signatureHeaders,
  type AlertChannel,
  type AlertChannels,
} from '../src/control-plane/alerts/channels';
import type { AlertKind } from '../src/control-plane/alerts/kinds';
import { logger } from '../src/logger';

/** What happened, for people: a rollback, a promotion, a trigger firing, a pause. */
export interface AlertEvent {
  kind: AlertKind;
  route: string;
  workflowId: string;
  title: string;
  details?: Record<string, unknown>;
}

export interface AlertDeps {
  /** The worker's named channels (default: from ALERT_CHANNELS_FILE / ALERT_CHANNELS). */
  channels?: AlertChannels;
  /** Per-attempt timeout; Temporal retries the activity on failure. */
  timeoutMs?: number;
}

export interface AlertDelivery {
  delivered: boolean;
  /** Per channel: the HTTP status, or why it was not delivered. */
  channels?: Record<string, number | string>;
}

/**
 * Sends the alert to the named channels (the workflow passes only names: the URLs and secrets are this
 * worker's) and always writes a log line. A failing channel throws, so Temporal retries the activity (the
 * channels that answered already are not sent again); an unknown channel name fails without retrying. The
 * workflow sends alerts only after the routing change they announce, so a dead webhook never delays one.
 * Error messages name the channel, never its URL: they are stored in the workflow history. Anything but a
 * list of channel names (a URL that a Temporal client wrote into a workflow's input, say) is refused: this
 * worker posts only to the channels it was configured with.
 */
export function createAlertActivities(deps: AlertDeps = {}) {
  const channels = deps.channels ?? loadAlertChannels();
  const timeoutMs = deps.timeoutMs ?? 5_000;
  /** Channels that answered per workflow alert, so a retry after a partial failure does not repeat them. */
  const delivered = new Map<string, number>();

  async function post(name: string, channel: AlertChannel, event: AlertEvent): Promise<number> {
    const body = JSON.stringify(channel.type === 'slack' ? slackBody(event) : { event });
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (channel.type === 'webhook') Object.assign(headers, signatureHeaders(channel.secret, body));
    let res: Response;
    try {
      res = await fetch(channel.url, {
        method: 'POST',
        headers,
        body,
        // A redirect is not followed: the body would go to a host nobody configured (and a Slack webhook's
        // body is the alert, its URL a credential). It counts as a failed delivery, so it is retried and logged.
        redirect: 'manual',
        signal: AbortSignal.timeout(timeoutMs),
      });
      await res.arrayBuffer();
    } catch (err) {
      // fetch's own messages and causes name the host: keep only the kind of failure.
      const e = err as Error & { cause?: { code?: string } };
      throw new Error(
        `alert channel "${name}" unreachable (${e.name === 'TimeoutError' ? 'timeout' : (e.cause?.code ?? e.name)})`,
      );
    }
    if (!res.ok) throw new Error(`alert channel "${name}" answered ${res.status}`);
    return res.status;
  }

  return {
    async sendAlert(target: string[], event: AlertEvent): Promise<AlertDelivery> {
      logger.warn(
        { alert: event.kind, route: event.route, workflowId: event.workflowId, details: event.details },
        event.title,
      );
      if (!Array.isArray(target) || target.some((name) => typeof name !== 'string'))
        throw ApplicationFailure.nonRetryable(
          'alerts go to channel names configured on this worker (ALERT_CHANNELS_FILE); nothing else is taken',
          'InvalidAlertTarget',
        );
      if (target.length === 0) return { delivered: false };
      const unknown = target.filter((name) => !channels.has(name));
      if (unknown.length > 0) {
        // A name that looks like a URL is not repeated: the error goes into the workflow's history.
        const named = unknown.map((n) => (/[:/]/.test(n) ? '(a URL, not a channel name)' : `"${n}"`));
        throw ApplicationFailure.nonRetryable(
          `unknown alert channel(s) ${named.join(', ')}: this worker has ` +
            (channels.size ? [...channels.keys()].map((n) => `"${n}"`).join(', ') : 'none configured') +
            ' (ALERT_CHANNELS_FILE)',
          'UnknownAlertChannel',
        );
      }
      // Retries of one activity share its id: the channels that answered on an earlier attempt are skipped.
      const attempt = activityKey();
      const results: Record<string, number> = {};
      const failures: string[] = [];
      await Promise.all(
        target.map(async (name) => {
          const key = `${attempt}\u0000${name}`;
          const before = delivered.get(key);
          if (before !== undefined) return void (results[name] = before);
          try {
            results[name] = await post(name, channels.get(name)!, event);
            delivered.set(key, results[name]);
            if (delivered.size > 10_000) delivered.delete(delivered.keys().next().value!);
          } catch (err) {
            failures.push((err as Error).message);
          }
        }),
      );
      if (failures.length > 0) {
        logger.warn({ alert: event.kind, route: event.route, failures }, 'alert not delivered everywhere');
        throw new Error(failures.join('; '));
      }
      return { delivered: true, channels: results };
    },
  };
}

function activityKey(): string {
  try {
    const { info } = Context.current();
    return `${info.workflowExecution?.runId ?? info.activityId}/${info.activityId}`;
  } catch {
    return `direct-${Math.random()}`; // called outside an activity (a script): nothing to retry
  }
}

function slackBody(event: AlertEvent) {
  return {
    text: `[model-rollout] ${event.title}`,
    blocks: [
      {
        type: 'section',
        text: {
          type: 'mrkdwn',
          text: `*${event.title}*\nroute \`${event.route}\` · rollout \`${event.workflowId}\``,
        },
      },
    ],
    event,
  };
}
