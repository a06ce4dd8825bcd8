/**
 * Terminal output helpers for the CLI: aligned tables, shares in basis points, a progress bar, relative
 * times, ANSI colours (only on a TTY, never with NO_COLOR) and the Temporal UI link. No dependencies.
 */
import os from 'node:os';

const useColor = () => !!process.stdout.isTTY && !process.env.NO_COLOR && process.env.TERM !== 'dumb';

const paint = (code: number) => (text: string) => (useColor() ? `\x1b[${code}m${text}\x1b[0m` : text);
export const bold = paint(1);
export const dim = paint(2);
export const red = paint(31);
export const green = paint(32);
export const yellow = paint(33);
export const cyan = paint(36);

/** Clears the screen and moves the cursor home (for `--watch` redraws). */
export const CLEAR_SCREEN = '\x1b[H\x1b[2J';

// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;]*m/g;
const visibleLength = (text: string) => text.replace(ANSI, '').length;

/** Left-aligned columns separated by two spaces; `header` is printed first (dimmed on a TTY). */
export function table(rows: string[][], header?: string[]): string {
  const all = header ? [header, ...rows] : rows;
  const widths: number[] = [];
  for (const row of all)
    row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, visibleLength(cell))));
  const line = (row: string[]) =>
    row
      .map((cell, i) => (i === row.length - 1 ? cell : cell + ' '.repeat(widths[i] - visibleLength(cell))))
      .join('  ')
      .trimEnd();
  const out = rows.map(line);
  if (header) out.unshift(dim(line(header)));
  return out.join('\n');
}

/** `label  value` pairs, labels padded to the longest. */
export function keyValues(pairs: Array<[string, string]>): string {
  const width = Math.max(...pairs.map(([k]) => k.length));
  return pairs.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n');
}

/** Basis points as a percentage: 500 → "5%", 1250 → "12.5%". */
export function share(bps: number | null | undefined): string {
  if (bps === null || bps === undefined || !Number.isFinite(bps)) return '-';
  return `${Number((bps / 100).toFixed(2))}%`;
}

/** `[#####...............]  5%` for a share in basis points. */
export function progressBar(bps: number, width = 30): string {
  const clamped = Math.min(Math.max(bps, 0), 10_000);
  const filled = Math.round((clamped / 10_000) * width);
  const paintIf = (f: (t: string) => string, t: string) => (t ? f(t) : t);
  return `[${paintIf(green, '#'.repeat(filled))}${paintIf(dim, '.'.repeat(width - filled))}] ${share(bps)}`;
}

/** A fraction (0..1) as a percentage with up to two decimals. */
export function percent(fraction: number): string {
  return `${Number((fraction * 100).toFixed(2))}%`;
}

/** "3m ago", "2h ago", "in 5s". */
export function ago(when: Date | string | undefined, now = Date.now()): string {
  if (!when) return '-';
  const ms = now - new Date(when).getTime();
  if (!Number.isFinite(ms)) return '-';
  const abs = Math.abs(ms);
  const text =
    abs < 60_000
      ? `${Math.round(abs / 1000)}s`
      : abs < 3_600_000
        ? `${Math.round(abs / 60_000)}m`
        : abs < 172_800_000
          ? `${Math.round(abs / 3_600_000)}h`
          : `${Math.round(abs / 86_400_000)}d`;
  return ms >= 0 ? `${text} ago` : `in ${text}`;
}

/** `2025-01-31 14:05:09` in local time (what an operator compares with a clock). */
export function timestamp(when: Date | string | undefined): string {
  if (!when) return '-';
  const d = new Date(when);
  if (Number.isNaN(d.getTime())) return '-';
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** Numbers from decision statistics: integers as they are, others with 3 significant decimals. */
export function num(value: number | string | null | undefined): string {
  if (value === null || value === undefined) return '-';
  if (typeof value === 'string') return value;
  if (!Number.isFinite(value)) return '-';
  return Number.isInteger(value) ? String(value) : String(Number(value.toFixed(3)));
}

/** Colours a policy action or phase by what it means. */
export function action(text: string): string {
  if (/rollback|rolled_back|failed|cancel/.test(text)) return red(text);
  if (/promote|completed|baking/.test(text)) return green(text);
  if (/hold|paused|approval/.test(text)) return yellow(text);
  return text;
}

export interface SideBySideRow {
  metric: string;
  stable: number | string | null;
  canary: number | string | null;
}

/**
 * Pairs the `stable`/`canary` numbers of a decision's flat statistics (`stable.mean` with `canary.mean`,
 * `errors.stableRate` with `errors.canaryRate`), so the two sides can be shown next to each other.
 */
export function pairStats(stats: Record<string, number | string | null> | undefined): SideBySideRow[] {
  const rows = new Map<string, SideBySideRow>();
  for (const [key, value] of Object.entries(stats ?? {})) {
    const parts = key.split('.');
    const i = parts.findIndex((p) => /^(stable|canary)/.test(p));
    if (i < 0) continue;
    const side = parts[i].startsWith('stable') ? 'stable' : 'canary';
    const rest = parts[i].slice(side.length);
    const metric =
      [...parts.slice(0, i), rest ? rest[0].toLowerCase() + rest.slice(1) : '', ...parts.slice(i + 1)]
        .filter(Boolean)
        .join(' ') || 'value';
    const row = rows.get(metric) ?? { metric, stable: null, canary: null };
    row[side] = value;
    rows.set(metric, row);
  }
  // Only metrics present on both sides compare anything.
  return [...rows.values()].filter((r) => r.stable !== null && r.canary !== null);
}

/** The Temporal Web UI page of a workflow (TEMPORAL_UI_URL, default the dev server's http://127.0.0.1:8233). */
export function uiLink(workflowId: string, namespace = process.env.TEMPORAL_NAMESPACE ?? 'default'): string {
  const ui = (process.env.TEMPORAL_UI_URL ?? 'http://127.0.0.1:8233').replace(/\/+$/, '');
  return `${ui}/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(workflowId)}`;
}

/** The actor recorded in audit trails for a person at this terminal: `cli:<user>`. */
export function defaultActor(): string {
  let user = process.env.USER ?? process.env.USERNAME;
  if (!user) {
    try {
      user = os.userInfo().username;
    } catch {
      user = 'unknown';
    }
  }
  return `cli:${user}`;
}
