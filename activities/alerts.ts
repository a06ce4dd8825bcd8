import { logger } from '../src/logger';

/** What happened, for people: a rollback, a promotion, a trigger firing, a pause. */
export interface AlertEvent {
  kind: 'rollback' | 'promotion' | 'trigger' | 'pause' | 'resume' | 'completed' | 'approval-needed' | 'hold';
  route: string;
  workflowId: string;
  title: string;
  details?: Record<string, unknown>;
}

export interface AlertDeps {
  /** Per-attempt timeout; Temporal retries the activity on failure. */
  timeoutMs?: number;
}

/**
 * Posts the alert to a webhook as a Slack-compatible JSON body (`text`, plus the structured event for
 * other receivers) and always writes a log line. A failing webhook throws, so Temporal retries it; the
 * workflow sends alerts only after the routing change they announce, so a dead webhook never delays one.
 */
export function createAlertActivities(deps: AlertDeps = {}) {
  return {
    async sendAlert(
      webhookUrl: string | undefined,
      event: AlertEvent,
    ): Promise<{ delivered: boolean; status?: number }> {
      logger.warn(
        { alert: event.kind, route: event.route, workflowId: event.workflowId, details: event.details },
        event.title,
      );
      if (!webhookUrl) return { delivered: false };
      const body = {
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
      const res = await fetch(webhookUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(deps.timeoutMs ?? 5_000),
      });
      await res.arrayBuffer();
      if (!res.ok) throw new Error(`alert webhook answered ${res.status}`);
      return { delivered: true, status: res.status };
    },
  };
}
