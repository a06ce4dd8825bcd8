/** `status`'s webhook and analysis sections: what the rollout waits for, and each metric check's latest. */
import type { RolloutStatus } from '../../../workflows/messages';
import { action, ago, bold, dim, table, timestamp } from '../format';

export function renderGates(s: RolloutStatus, now = Date.now()): string[] {
  const lines: string[] = [];
  const g = s.gate;
  if (g && g.state !== 'passed' && s.step?.kind === 'webhook' && !s.outcome) {
    const last =
      g.lastStatus !== undefined
        ? `answered ${g.lastStatus}${g.lastAnswer ? `: ${g.lastAnswer}` : ''}`
        : g.lastAnswer;
    lines.push(
      '',
      `${bold('webhook')}  ${action(g.state === 'asking' ? 'waiting' : 'held')} for '${g.hook}' (${g.type}) since ${timestamp(g.since)} (${ago(g.since, now)}); asked ${g.asked}x`,
    );
    if (last) lines.push(`  last: ${last}`);
    lines.push(
      `  ${dim(g.onRefusal === 'hold' ? 'a refusal holds: it is asked again; promote or roll back by hand' : 'a refusal rolls back')}`,
    );
  }
  const checks = [...(s.analysis?.step ?? []), ...(s.analysis?.background ?? [])];
  if (checks.length) {
    lines.push('', bold('analysis'));
    lines.push(
      table(
        checks.map((c) => [
          `  ${c.name}`,
          action(c.verdict === 'failed' ? 'rollback' : c.verdict),
          `${c.successes} ok / ${c.failures} failed / ${c.inconclusive} inconclusive`,
          c.last?.reason ?? 'not measured yet',
        ]),
      ),
    );
    for (const c of checks) if (c.last?.query) lines.push(dim(`  ${c.name}: ${c.last.query}`));
  }
  return lines;
}
